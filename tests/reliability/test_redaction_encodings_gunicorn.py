"""Secrets in every encoding, through real gunicorn and real Airflow 3, reach no output
(issue 22, findings 6 and 7): not the audit file, stdout, the gateway log, the response,
a job's answer or the job store (``jobs.sqlite3``, read cell by cell and byte by byte).

Before, a connection URI sent percent-encoded was recorded whole in the audit ``query``,
and ``variables export`` run as a job kept every exported value in the job store.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from secrets import choice

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.support import secrets as gen
from tests.support.airflow import AirflowHome
from tests.support.http import Reply, get, request
from tests.support.servers import GatewayServer, start_gateway, wait_warm

TOKEN = "encodings-token"
AUTH = {"rest_api_plugin_http_token": TOKEN}
DONE = {"succeeded", "failed", "timed_out", "cancelled"}
AUDIT_FILES: dict[str, Path] = {}  # per gateway URL


@pytest.fixture(scope="module")
def secret_gateway(
    airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    """Airflow 3 behind gunicorn, with an audit file and the SQLite job store in its state dir."""
    tmp = tmp_path_factory.mktemp("gw-encodings")
    server = start_gateway(
        airflow3,
        tmp,
        settings={
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
            "AUDIT__FILE": str(tmp / "audit" / "audit.log"),
        },
    )
    AUDIT_FILES[server.url] = tmp / "audit" / "audit.log"
    wait_warm(server, AUTH)
    yield server
    server.stop()


def _send(gw: GatewayServer, sent: gen.Request) -> Reply:
    headers = {**AUTH, **({"Content-Type": sent.content_type} if sent.content_type else {})}
    url = f"{gw.url}/admin/rest_api/api" + (f"?{sent.query}" if sent.query else "")
    return request(sent.method, url, headers=headers, body=sent.body, timeout=120)


def _job_answer(gw: GatewayServer, reply: Reply) -> str:
    """A job's finished answer (the 202's job), as the client reads it."""
    job_id = reply.json["output"]["job_id"]
    deadline = time.monotonic() + 300  # a job is a cold Airflow process: slow on a loaded machine
    while time.monotonic() < deadline:
        answer = get(f"{gw.url}/admin/rest_api/jobs/{job_id}", headers=AUTH, timeout=30)
        if answer.status == 200 and answer.json["state"] in DONE:
            return answer.body.decode("utf-8", "replace")
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not end")


def _audit_text(gw: GatewayServer, request_id: str) -> str:
    """The audit file, once the request's event is in it (written when the response closed)."""
    path = AUDIT_FILES[gw.url]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = path.read_text("utf-8", "replace")
        if request_id in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"no audit event for {request_id}")


def _outputs(gw: GatewayServer, reply: Reply, answers: list[str]) -> dict[str, str]:
    request_id = reply.headers["X-Request-ID"]
    return {
        "audit file": _audit_text(gw, request_id),
        "gateway stdout and log": gw.log_text(),
        "response": reply.body.decode("utf-8", "replace"),
        **{f"job answer {n}": text for n, text in enumerate(answers)},
        "job store": gen.job_store_text(gw.state_dir / "jobs.sqlite3"),
    }


def test_generated_secrets_reach_no_output(secret_gateway: GatewayServer) -> None:
    """Each generated call is checked at once; the jobs it started, together once all ended
    (they run side by side: a job is a cold Airflow process, seconds each)."""
    gw = secret_gateway
    jobs: list[tuple[str, Reply]] = []

    @settings(
        max_examples=6,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate),  # each example is a real call: no shrinking runs
        suppress_health_check=list(HealthCheck),
    )
    @given(
        secret=gen.secrets(),
        kind=st.sampled_from(gen.KINDS),
        encoding=st.sampled_from(gen.ENCODINGS),
        lower=st.booleans(),
        ascii_json=st.booleans(),
        job=st.sampled_from([False, False, True]),  # a job is a cold Airflow process
    )
    @example(
        secret="JQ@Xé:Z/K#V+ W%ß",
        kind="conn_uri",
        encoding="query-upper",
        lower=False,
        ascii_json=True,
        job=False,
    )
    @example(
        secret="Q%4X漢:ZJ@@KWVX",
        kind="conn_uri",
        encoding="query-lower",
        lower=True,
        ascii_json=True,
        job=True,
    )
    @example(
        secret="Z+ XJ%QK:V/W#é", kind="variable", encoding="split", lower=False, ascii_json=False, job=True
    )
    def one_call(secret: str, kind: str, encoding: str, lower: bool, ascii_json: bool, job: bool) -> None:
        carrier = gen.carrier(kind, secret, uuid.uuid4().hex[:12], lower=lower, ascii_json=ascii_json)
        reply = _send(gw, gen.request(carrier.args, encoding, (("mode", "job"),) if job else ()))
        assert reply.status in {200, 202, 400}, reply.body[:2000]
        if reply.status == 202:
            jobs.append((carrier.secret, reply))
        found = gen.leaks(carrier.secret, _outputs(gw, reply, []))
        assert not found, (carrier, encoding, job, found)

    one_call()
    assert jobs  # the explicit examples run two
    answers = [_job_answer(gw, reply) for _, reply in jobs]
    for (secret, reply), answer in zip(jobs, answers, strict=True):
        found = gen.leaks(secret, _outputs(gw, reply, [answer]))
        assert not found, (secret, found)


def test_an_exported_variables_job_keeps_no_secret_in_the_job_store(secret_gateway: GatewayServer) -> None:
    """Finding 7: the export's data, stored for ``jobs.retention``, had every value."""
    gw = secret_gateway
    secret = "".join(choice(gen.MARKERS) + choice(gen.BREAKERS) for _ in range(8))
    carrier = gen.carrier("variable", secret, "export")
    assert _send(gw, gen.request(carrier.args, "form")).status == 200
    reply = _send(
        gw, gen.request((("api", "variables"), ("export", "export.json")), "query-upper", (("mode", "job"),))
    )
    assert reply.status == 202, reply.body[:2000]
    answer = _job_answer(gw, reply)
    assert '"db_password": "***"' in answer  # the export ran, and its sensitive value is masked
    found = gen.leaks(carrier.secret, _outputs(gw, reply, [answer]))
    assert not found, found
