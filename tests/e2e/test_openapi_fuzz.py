"""The OpenAPI document served by real gunicorn validates, and a bounded schemathesis run finds no 5xx."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode

from tests.e2e.conftest import TOKEN_HEADER
from tests.support.http import get
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
    # issue 15: random job ids are 404s, listing reads the store
    "jobs_list",
    "job_get",
    "job_cancel",
    "job_output",
]


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
    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
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
