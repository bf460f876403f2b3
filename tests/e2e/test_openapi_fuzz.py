"""The OpenAPI document served by real gunicorn validates, and a bounded schemathesis run finds no 5xx."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode

from tests.e2e.conftest import TOKEN_HEADER
from tests.support.fuzz import (
    MAX_OFFSET,
    OFFSET_EXTREMES,
    expected_output_status,
    offset_verdict,
    seed_jobs,
    sse_complete,
    stream_refused,
)
from tests.support.http import get, request
from tests.support.servers import GatewayServer

TOKEN_HEADER_NAME = next(iter(TOKEN_HEADER))

# Operations that answer without a CLI call (builtins, validation failures, cached or static
# answers); each CLI call costs seconds, and daemons must not be started by a fuzzer.
CHEAP = [
    "rest_api_plugin_version_get",
    "rest_api_plugin_version_post",
    "list_daemons_get",
    "stop_daemon_get",
    "stop_daemon_post",
    "deploy_dag_post",
    "openapi",
    "healthz",
    "readyz",
    "metrics",
    # random job ids are 404s, listing reads the store (real ids: test_job_endpoints_on_real_jobs)
    "jobs_list",
    "job_get",
    "job_cancel",
    "job_output",
]
JOB_OPERATIONS = ["jobs_list", "job_get", "job_cancel", "job_output"]
CREDENTIAL_HEADERS = {TOKEN_HEADER_NAME.lower(), "authorization", "x-gateway-authorization"}


def test_served_document_validates(gateway3: GatewayServer) -> None:
    """/admin/rest_api/openapi.json is a valid OpenAPI 3.1 document: every route, scheme and envelope key."""
    reply = get(f"{gateway3.url}/admin/rest_api/openapi.json")
    assert reply.status == 200 and reply.content_type == "application/json"
    doc = reply.json
    validate(doc)
    assert {
        "/admin/rest_api/api/deploy_dag",
        "/metrics",
        "/readyz",
        "/healthz",
        "/admin/rest_api/jobs",
    } <= set(doc["paths"])
    schemes = doc["components"]["securitySchemes"]
    assert {"pluginToken", "namedToken", "jwt", "gatewayHeader", "metricsToken"} <= set(schemes)
    assert schemes["pluginToken"]["name"] == TOKEN_HEADER_NAME
    envelope = doc["components"]["schemas"]["Envelope"]["properties"]
    assert {"policy", "daemon", "file", "dag_ids", "data", "error", "output_truncated", "job"} <= set(
        envelope
    )
    assert {"401", "403", "413", "415", "503", "504"} <= set(
        doc["paths"]["/admin/rest_api/api/pause"]["post"]["responses"]
    )


@pytest.fixture(scope="module")
def api_schema(gateway3: GatewayServer) -> schemathesis.BaseSchema:
    """The gateway's own document, loaded by schemathesis from the running server."""
    return schemathesis.openapi.from_url(f"{gateway3.url}/admin/rest_api/openapi.json")


# /metrics answers the Prometheus text format; everything else answers JSON.
TEXT_OPERATIONS = {"metrics"}
# Invalid input must be refused before any CLI call: these get schema-violating data only.
NEGATIVE = ["pause_post", "deploy_dag_post", "stop_daemon_get"]
REFUSED = {400, 401, 403, 404, 405, 413, 415}


def _invalid_arguments(case: schemathesis.Case) -> bool:
    """Whether the case breaks the call's arguments (query, path, body), not only credential headers.

    Schemathesis also mutates the security schemes' headers; the valid plugin token sent with
    every case wins over them, so such a case is a valid call that would run the CLI.
    """
    components = case.meta.components if case.meta is not None else {}
    return any(
        info.mode is GenerationMode.NEGATIVE for where, info in components.items() if where.value != "header"
    )


# gunicorn answers these itself, in HTML, before the gateway sees the request
# (limit_request_line / limit_request_field_size): the only non-JSON answers allowed.
GUNICORN_LIMITS = {414, 431}


@pytest.mark.parametrize(
    ("operation_id", "mode"),
    [pytest.param(op, GenerationMode.POSITIVE, id=f"{op}-positive") for op in CHEAP]
    + [pytest.param(op, GenerationMode.NEGATIVE, id=f"{op}-negative") for op in NEGATIVE],
)
def test_no_server_error_and_always_json(
    api_schema: schemathesis.BaseSchema, gateway3: GatewayServer, operation_id: str, mode: GenerationMode
) -> None:
    """Whatever schemathesis sends, the answer is JSON (the envelope for API calls) and never a 5xx."""
    operation = api_schema.find_operation_by_id(operation_id)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=8,
        derandomize=True,  # the same cases every run: a failure is reproducible, CI does not flake
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        if mode is GenerationMode.NEGATIVE:
            assume(_invalid_arguments(case))
        response = case.call(base_url=gateway3.url, headers=dict(TOKEN_HEADER), timeout=60)
        assert response.status_code < 500, response.text[:500]
        if response.status_code in GUNICORN_LIMITS:
            return
        content_type = response.headers.get("content-type", [""])[0]  # schemathesis: lower-case keys, lists
        if operation_id in TEXT_OPERATIONS and response.status_code == 200:
            assert content_type.startswith(("text/plain", "application/openmetrics-text")), content_type
            return
        assert content_type.startswith("application/json"), (response.status_code, response.text[:300])
        body = json.loads(response.text)
        if operation.path.startswith("/admin/rest_api/api"):
            assert body["http_response_code"] == response.status_code
            if mode is GenerationMode.NEGATIVE:
                assert body["status"] == "ERROR" and response.status_code in REFUSED, body

    check()


@pytest.fixture(scope="module")
def job_ids(gateway3: GatewayServer) -> list[str]:
    """Real jobs of the plugin token's principal, ended: a CLI call (cold) and a builtin."""
    return seed_jobs(gateway3, dict(TOKEN_HEADER), ["version", "rest_api_plugin_version"])


def test_output_parameters_are_documented(gateway3: GatewayServer) -> None:
    """offset and Last-Event-ID: integers 0..2^53-1 (what the fuzz below generates from)."""
    operation = get(f"{gateway3.url}/admin/rest_api/openapi.json").json["paths"][
        "/admin/rest_api/jobs/{job_id}/output"
    ]["get"]
    params = {(p["in"], p["name"]): p for p in operation["parameters"]}
    for key in (("query", "offset"), ("header", "Last-Event-ID")):
        assert params[key]["schema"] == {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}, key
        assert "2^53-1" in params[key]["description"]
    assert "400" in operation["responses"]


def _sent(value: Any) -> str | None:
    """A generated query or header value as it goes on the wire (the first of a list)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else json.dumps(value)


@pytest.mark.parametrize(
    ("operation_id", "mode"),
    [
        pytest.param(op, mode, id=f"{op}-{mode.value}")
        for op in JOB_OPERATIONS
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ],
)
def test_job_endpoints_on_real_jobs(
    api_schema: schemathesis.BaseSchema,
    gateway3: GatewayServer,
    job_ids: list[str],
    run_report: Callable[[str], None],
    operation_id: str,
    mode: GenerationMode,
) -> None:
    """Schemathesis on the job endpoints, aimed at jobs that exist, with valid credentials.

    Most cases get a real job id (unless the id itself is the broken part), so offsets and
    Last-Event-ID reach the output code: an invalid one is a 400, a valid one a 200 (an event
    stream closed by its ``end`` event), never a 5xx.
    """
    operation = api_schema.find_operation_by_id(operation_id)
    seen: Counter[str] = Counter()

    @given(case=operation.as_strategy(generation_mode=mode), pick=st.integers(0, len(job_ids)))
    @settings(
        max_examples=100,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the assertion names the values
        report_multiple_bugs=False,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: schemathesis.Case, pick: int) -> None:
        _check_job_case(
            case, gateway3.url, operation_id, job_ids[pick] if pick < len(job_ids) else None, seen
        )

    check()
    run_report(f"schemathesis {operation_id} ({mode.value}, real job ids): {dict(sorted(seen.items()))}")
    if operation_id != "jobs_list":
        assert seen["real job"] >= 10, seen
    if operation_id == "job_output":
        # The generator did reach both parameters, at their bounds or past them.
        kinds = ("valid", "invalid") if mode is GenerationMode.NEGATIVE else ("valid",)
        for name in ("Last-Event-ID", "offset"):
            assert any(seen[f"{name} {kind}"] for kind in kinds), seen
        if mode is GenerationMode.NEGATIVE:
            assert seen["Last-Event-ID invalid"] and seen["offset invalid"], seen


def _check_job_case(
    case: schemathesis.Case, base_url: str, operation_id: str, job_id: str | None, seen: Counter[str]
) -> None:
    """Send a job endpoint case aimed at ``job_id`` (unless its path is the broken part) and judge it.

    Never a 5xx or a cut stream; JSON answers; on a real job: get is 200, cancel 409 (it has
    ended), and the output is 200 or 400 as its offsets say (the stream closed by ``end``).
    """
    negative = case.meta is not None and case.meta.generation.mode is GenerationMode.NEGATIVE
    components = case.meta.components if case.meta is not None else {}
    path_broken = any(
        where.value == "path" and info.mode is GenerationMode.NEGATIVE for where, info in components.items()
    )
    real = None
    if case.path_parameters and "job_id" in case.path_parameters and not path_broken and job_id is not None:
        real = case.path_parameters["job_id"] = job_id
    # Generated credentials (the security schemes' headers) go: the plugin token is sent.
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in CREDENTIAL_HEADERS}
    sent = (case.method, case.path_parameters, case.query, case.headers)
    try:
        response = _send(case, base_url)
    except requests.RequestException as exc:  # e.g. an event stream cut short
        raise AssertionError(f"no complete answer to {sent}: {exc}") from exc
    seen["requests"] += 1
    assert response.status_code < 500, (sent, response.text[:500])
    content_type = response.headers.get("Content-Type", "")
    if response.status_code in GUNICORN_LIMITS:
        return
    if real is None or operation_id != "job_output" or case.method != "GET":
        assert content_type.startswith("application/json"), (sent, response.status_code, response.text[:300])
    if real is None:
        return
    seen["real job"] += 1
    if operation_id == "job_get" and not negative:
        assert response.status_code == 200 and json.loads(response.text)["job_id"] == real
    if operation_id == "job_cancel" and not negative:
        assert response.status_code == 409, response.text[:300]  # it has ended
    if operation_id != "job_output" or case.method != "GET":
        return
    header = _sent((case.headers or {}).get("Last-Event-ID"))
    offset = _sent((case.query or {}).get("offset"))
    for name, value in (("Last-Event-ID", header), ("offset", offset)):
        if value is not None:
            seen[f"{name} {offset_verdict(value)}"] += 1
    expected = expected_output_status(header, offset)
    if 200 in expected and stream_refused(response.status_code, response.headers.get("Retry-After")):
        return
    assert response.status_code in expected, (sent, response.status_code, response.text[:300])
    if response.status_code == 200 and content_type.startswith("text/event-stream"):
        seen["event streams"] += 1
        assert sse_complete(response.text), (sent, response.text[-300:])


@pytest.mark.parametrize("operation_id", JOB_OPERATIONS)
def test_job_endpoints_coverage_phase(
    api_schema: schemathesis.BaseSchema,
    gateway3: GatewayServer,
    job_ids: list[str],
    run_report: Callable[[str], None],
    operation_id: str,
) -> None:
    """Schemathesis' coverage phase on the job endpoints: every documented bound and one past it.

    Deterministic boundary cases, positive and negative: offset and Last-Event-ID at 0, 2^53-1,
    -1 and 2^53, non-integers, repeated parameters, unexpected methods.  Each case is sent
    once per real job and once with its generated id.
    """
    operation = api_schema.find_operation_by_id(operation_id)
    config = api_schema.config.generation_for(operation=operation)
    seen: Counter[str] = Counter()
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    for case in api_schema.iter_coverage_cases(operation, generation_modes=modes, generation_config=config):
        for job_id in [*job_ids, None]:
            _check_job_case(case.derive(), gateway3.url, operation_id, job_id, seen)
    run_report(f"schemathesis coverage phase {operation_id} (real job ids): {dict(sorted(seen.items()))}")
    assert seen["requests"] >= 10, seen
    if operation_id == "job_output":
        for name in ("Last-Event-ID", "offset"):
            assert seen[f"{name} valid"] and seen[f"{name} invalid"], seen


def _send(case: schemathesis.Case, base_url: str) -> requests.Response:
    """Send the case with the plugin token, which is added last: schemathesis drops a header whose
    removal is the case's negative part, and a security header's removal would skip the endpoint."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    kwargs["headers"] = {**kwargs["headers"], **TOKEN_HEADER}
    return requests.request(**kwargs, timeout=60)


def _header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable() and value == value.strip()


@pytest.mark.parametrize("fmt", ["json", "sse"])
@pytest.mark.parametrize("where", ["offset", "Last-Event-ID", "both"])
def test_output_offset_extremes(gateway3: GatewayServer, job_ids: list[str], where: str, fmt: str) -> None:
    """Every boundary of offset and Last-Event-ID, in JSON and SSE: 200 or 400 as documented.

    0..2^53-1 is taken; negative numbers, 2^53 and beyond (2^63, 2^64, 4301 digits) and
    non-numbers are 400s with a message, never a 5xx or a stream cut short.  All values are
    tried before the test fails, so the message lists every wrong answer.
    """
    failures = []
    for job_id in job_ids:
        for raw in OFFSET_EXTREMES:
            if where != "offset" and not _header_safe(raw):
                continue
            header = raw if where != "offset" else None
            # "both": a valid query offset beside the header, which is the one used.
            offset = {"offset": raw, "Last-Event-ID": None, "both": "1"}[where]
            query = urlencode({"format": fmt, **({"offset": offset} if offset is not None else {})})
            headers = {**TOKEN_HEADER, "Accept": "application/json" if fmt == "json" else "text/event-stream"}
            if header is not None:
                headers["Last-Event-ID"] = header
            url = f"{gateway3.url}/admin/rest_api/jobs/{job_id}/output?{query}"
            label = f"{where}={raw[:30]!r} format={fmt}"
            try:
                reply = request("GET", url, headers=headers, timeout=60)
            except (http.client.HTTPException, OSError) as exc:
                failures.append(f"{label}: no complete answer ({type(exc).__name__}: the stream was cut)")
                continue
            expected = expected_output_status(header, offset)
            if 200 in expected and stream_refused(reply.status, reply.headers.get("Retry-After")):
                continue
            if reply.status not in expected:
                failures.append(f"{label}: {reply.status}, expected {sorted(expected)}: {reply.body[:200]!r}")
            elif reply.status == 400:
                if "offset" not in reply.json.get("output", "") + reply.json.get("error", ""):
                    failures.append(f"{label}: the 400 does not say what is wrong: {reply.body[:200]!r}")
            elif fmt == "sse" and not sse_complete(reply.body.decode()):
                failures.append(f"{label}: the event stream has no end event: {reply.body[-200:]!r}")
            elif fmt == "json" and "next_offset" not in reply.json:
                failures.append(f"{label}: not the JSON output: {reply.body[:200]!r}")
    assert not failures, "\n".join(failures)
