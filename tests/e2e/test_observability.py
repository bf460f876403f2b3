"""Audit trail and Prometheus metrics through real gunicorn (2 workers), real Airflow 3 and a real Prometheus.

One gateway serves the whole module; the ``scenario`` fixture sends every request once
(each CLI call costs seconds of CPU), and the tests assert on what it produced.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from tests.support.airflow import AirflowHome
from tests.support.http import Reply, get, post_form, request
from tests.support.servers import GatewayServer, free_port, start_gateway, stop_group
from tests.support.upstreams import EchoUpstream

ROOT = Path(__file__).resolve().parent.parent.parent
TOKEN = "changeme-obs-T0ken"
METRICS_TOKEN = "scrape-Metr1csToken"
AUTH = {"rest_api_plugin_http_token": TOKEN}
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}
# Every secret the scenario sends; none may appear in any log line, audit line or answer.
SECRETS = {
    "plugin token": TOKEN,
    "metrics token": METRICS_TOKEN,
    "wrong token": "WrongT0kenValue",
    "variable value": "S3cr3tVarValue",
    "uri password": "UriPassw0rd",
    "conn_extra key": "ExtraK3yValue",
    "bearer header": "HeaderB3arerTok",
    "cookie": "C00kieSecretVal",
    "query token": "QueryT0kenValue",
}


@dataclass
class Scenario:
    server: GatewayServer
    audit_file: Path
    replies: dict[str, Reply] = field(default_factory=dict)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_file.read_text().splitlines() if line.strip()]

    def event(self, request_id: str) -> dict[str, Any]:
        # The event is written when gunicorn closes the response, which can be just after
        # the client has read the whole body: allow it a moment to land.
        deadline = time.monotonic() + 10
        while True:
            found = [e for e in self.events() if e["request_id"] == request_id]
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(found) == 1, f"{len(found)} audit events for {request_id}"
        return found[0]


def _metrics(server: GatewayServer) -> str:
    reply = get(f"{server.url}/metrics", headers=SCRAPE)
    assert reply.status == 200, reply.body
    return reply.body.decode()


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in the text exposition (labels must match exactly)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        match = re.match(r"^([^{ ]+)(?:\{(.*)\})? (\S+)$", line)
        assert match, line
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if match.group(1) == name and found == labels:
            return float(match.group(3))
    return None


@pytest.fixture(scope="module")
def scenario(airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """The gateway (2 workers, audit file, metrics token, a 0.01 s timeout on list_dags) after the scenario.

    Proxied paths go through the real proxy to a loopback upstream that streams slowly.
    """
    tmp = tmp_path_factory.mktemp("observe")
    upstream = EchoUpstream()
    audit_file = tmp / "audit" / "audit.jsonl"
    server = start_gateway(
        airflow3,
        tmp,
        settings={
            "PROXY__UPSTREAM": upstream.url,
            "PROXY__READ_TIMEOUT": "1.5",
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
            "AUDIT__FILE": str(audit_file),
            "METRICS__TOKEN": METRICS_TOKEN,
            # Shorter than any CLI call, warm ones (~0.1 s) included.
            "CLI__TIMEOUTS__LIST_DAGS": "0.01",
        },
        extra_env={"GATEWAY_ACCESS_LOG": "-"},  # gunicorn's access log too: it must be JSON and redacted
    )
    s = Scenario(server, audit_file)
    api = f"{server.url}/admin/rest_api/api"

    def rid(name: str) -> dict[str, str]:
        return {"X-Request-ID": f"obs-{name}-0001"}

    s.replies["allowed"] = get(f"{api}?api=version", headers={**AUTH, **rid("allowed")})
    s.replies["missing"] = get(f"{api}?api=version", headers=rid("missing"))
    s.replies["bad"] = get(
        f"{api}?api=version", headers={"rest_api_plugin_http_token": SECRETS["wrong token"], **rid("bad")}
    )
    s.replies["failed"] = get(f"{api}?api=variables&get=no_such_var_obs", headers={**AUTH, **rid("failed")})
    s.replies["timeout"] = get(f"{api}?api=list_dags", headers={**AUTH, **rid("timeout")})
    s.replies["stream"] = request(
        "POST",
        f"{server.url}/_slow?chunks=5&delay=0.2&token={SECRETS['query token']}",
        headers={
            **rid("stream"),
            "Authorization": f"Bearer {SECRETS['bearer header']}",
            "Cookie": f"session={SECRETS['cookie']}",
            "Content-Type": "application/octet-stream",
        },
        body=b"x" * 1000,
    )
    s.replies["broken"] = get(f"{server.url}/_stall/5", headers=rid("broken"))  # over the read timeout
    s.replies["variable"] = post_form(
        api,
        {"api": "variables", "set": "my_api_key", "set_value": SECRETS["variable value"]},
        headers={**AUTH, **rid("variable")},
    )
    uri = f"postgres://user:{SECRETS['uri password']}@db.invalid:5432/x"
    extra = json.dumps({"api_key": SECRETS["conn_extra key"]})
    s.replies["connection"] = get(
        f"{api}?"
        + urlencode(
            {"api": "connections", "add": "true", "conn_id": "obs_conn", "conn_uri": uri, "conn_extra": extra}
        ),
        headers={**AUTH, **rid("connection")},
    )
    s.replies["malformed-id"] = get(
        f"{server.url}/_slow?chunks=1&delay=0", headers={"X-Request-ID": "bad id!"}
    )
    yield s
    server.stop()
    upstream.stop()


def test_allowed_cli_call_is_audited_field_by_field(scenario: Scenario) -> None:
    """An allowed CLI call: who, what (argv), decision, statuses, exit code, duration and bytes."""
    reply = scenario.replies["allowed"]
    assert reply.status == 200
    event = scenario.event("obs-allowed-0001")
    assert event["event"] == "gateway.request" and event["level"] == "info"
    assert datetime.fromisoformat(event["time"]).utcoffset().total_seconds() == 0
    assert event["principal"] == "rest_api_plugin" and event["auth_method"] == "plugin-token"
    assert event["remote_addr"] == "127.0.0.1"
    assert (event["method"], event["path"], event["route"], event["api"]) == (
        "GET", "/admin/rest_api/api", "api", "version",
    )  # fmt: skip
    assert event["arguments"] == {"api": ["version"]}
    assert event["argv"][1:] == ["version"] and event["argv"][0].endswith("airflow")
    assert event["decision"] == "allow" and event["rule_id"] is None
    assert (event["http_status"], event["envelope_status"], event["exit_code"]) == (200, "OK", 0)
    assert event["cli_outcome"] == "ok" and event["cli_duration_s"] > 0
    assert event["duration_s"] >= event["cli_duration_s"]
    assert event["bytes_out"] == len(reply.body) and event["bytes_in"] == 0
    assert event["upstream_status"] is None and event["auth_failure_reason"] is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param("missing", "missing_token", id="missing-token"),
        pytest.param("bad", "bad_token", id="bad-token"),
    ],
)
def test_authentication_failures_are_audited(scenario: Scenario, name: str, reason: str) -> None:
    """A refused call is audited with its reason, and never runs the CLI."""
    assert scenario.replies[name].status == 403
    event = scenario.event(f"obs-{name}-0001")
    assert event["auth_failure_reason"] == reason
    assert (event["http_status"], event["envelope_status"]) == (403, "ERROR")
    assert event["principal"] is None and event["argv"] is None and event["exit_code"] is None
    assert event["cli_outcome"] is None


def test_failed_command_is_audited(scenario: Scenario) -> None:
    """A command Airflow fails: exit code, ERROR envelope and outcome 'failed'."""
    reply = scenario.replies["failed"]
    assert reply.status >= 400
    event = scenario.event("obs-failed-0001")
    assert event["api"] == "variables" and event["argv"][1:3] == ["variables", "get"]
    assert event["argv"][-1] == "no_such_var_obs" and event["arguments"]["get"] == ["no_such_var_obs"]
    assert event["http_status"] == reply.status and event["envelope_status"] == "ERROR"
    assert event["exit_code"] == reply.json["exit_code"] and event["exit_code"] not in (0, None)
    assert event["cli_outcome"] == "failed"


def test_timed_out_command_is_audited(scenario: Scenario) -> None:
    """A command killed at its timeout: 504, no exit code, outcome 'timeout'."""
    assert scenario.replies["timeout"].status == 504
    event = scenario.event("obs-timeout-0001")
    assert (event["http_status"], event["envelope_status"], event["exit_code"]) == (504, "ERROR", None)
    assert event["cli_outcome"] == "timeout" and 0.01 <= event["cli_duration_s"] < 10


def test_streamed_proxied_body_is_audited_after_it_finished(scenario: Scenario) -> None:
    """The event of a streamed (proxied) response comes after the last chunk and counts every byte."""
    reply = scenario.replies["stream"]
    assert reply.status == 200 and reply.body == b"s" * 5 * 1024
    event = scenario.event("obs-stream-0001")
    assert (event["route"], event["method"], event["path"]) == ("proxy", "POST", "/_slow")
    assert event["bytes_out"] == len(reply.body) and event["bytes_in"] == 1000
    assert event["duration_s"] >= 5 * 0.2  # the body took a second to stream
    assert event["upstream_status"] == 200 and event["upstream_duration_s"] is not None
    assert "token=***" in event["query"]
    broken = scenario.event("obs-broken-0001")
    assert (broken["http_status"], broken["upstream_error"]) == (504, "timeout")


def test_request_ids_are_accepted_returned_and_forwarded(scenario: Scenario) -> None:
    """A well-formed X-Request-ID is echoed, put in the envelope and forwarded; a bad one is replaced."""
    allowed = scenario.replies["allowed"]
    assert allowed.headers["X-Request-ID"] == "obs-allowed-0001" == allowed.json["request_id"]
    assert scenario.replies["missing"].json["request_id"] == "obs-missing-0001"
    stream = scenario.replies["stream"]
    assert stream.headers["X-Request-ID"] == stream.headers["X-Seen-Request-ID"] == "obs-stream-0001"
    bad = scenario.replies["malformed-id"]
    generated = bad.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated) and bad.headers["X-Seen-Request-ID"] == generated
    scenario.event(generated)


def test_no_secret_reaches_any_output(scenario: Scenario) -> None:
    """Tokens, header credentials, URI password, conn_extra and a sensitive variable appear nowhere."""
    outputs = {
        "server log (stdout/stderr)": scenario.server.log_text(),
        "audit file": scenario.audit_file.read_text(),
        **{f"answer {k}": r.body.decode("utf-8", "replace") for k, r in scenario.replies.items()},
    }
    leaks = [
        (what, where) for what, secret in SECRETS.items() for where, text in outputs.items() if secret in text
    ]
    assert leaks == []
    variable = scenario.event("obs-variable-0001")
    assert variable["arguments"]["set_value"] == ["***"] and "***" in variable["argv"]
    assert variable["api"] == "variables" and variable["cli_outcome"] == "ok"
    connection = scenario.event("obs-connection-0001")
    assert connection["arguments"]["conn_extra"] == ["***"]
    assert "postgres://user:***@db.invalid:5432/x" in connection["arguments"]["conn_uri"]


def test_every_log_line_is_json(scenario: Scenario) -> None:
    """gunicorn's own logs (error and access) and the gateway's are JSON lines with time and level."""
    lines = [line for line in scenario.server.log_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    assert all({"time", "level", "event"} <= p.keys() for p in parsed)
    loggers = {p.get("logger") for p in parsed}
    assert {"gunicorn.error", "gunicorn.access", "gateway.audit"} <= loggers
    assert any("Booting worker" in p["event"] for p in parsed)


def _both_workers_counted(server: GatewayServer) -> set[str]:
    """Spread requests until both workers have written metric files; returns their pids."""
    assert server.multiproc_dir is not None
    for _ in range(50):
        pids = {p.name.split("_")[-1][:-3] for p in server.multiproc_dir.glob("counter_*.db")}
        if len(pids) >= 2:
            return pids
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: get(f"{server.url}/healthz"), range(16)))
    pytest.fail("only one gunicorn worker ever served a request")


def test_n_requests_show_exactly_n_across_workers(scenario: Scenario) -> None:
    """N requests spread over 2 workers show exactly N in /metrics, whichever worker answers the scrape."""
    server = scenario.server
    _both_workers_counted(server)
    labels = {"route": "api", "method": "GET", "code": "200"}
    before = _sample(_metrics(server), "airflow_gateway_requests_total", **labels) or 0.0
    n = 40
    url = f"{server.url}/admin/rest_api/api?api=rest_api_plugin_version"
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: get(url, headers=AUTH).status, range(n)))
    assert statuses == [200] * n
    # Counting happens when the server closes the response, just after the client got it.
    deadline = time.monotonic() + 10
    while _sample(_metrics(server), "airflow_gateway_requests_total", **labels) != before + n:
        assert time.monotonic() < deadline, "the count never reached N"
        time.sleep(0.1)
    scrapes = [_sample(_metrics(server), "airflow_gateway_requests_total", **labels) for _ in range(6)]
    assert scrapes == [before + n] * 6


def test_cli_and_auth_figures_match_what_was_sent(scenario: Scenario) -> None:
    """CLI calls by API/outcome, auth failures by reason, upstream errors and build info are exact."""
    text = _metrics(scenario.server)
    assert _sample(text, "airflow_gateway_cli_calls_total", api="version", outcome="ok") == 1
    assert _sample(text, "airflow_gateway_cli_calls_total", api="variables", outcome="failed") == 1
    assert _sample(text, "airflow_gateway_cli_calls_total", api="list_dags", outcome="timeout") == 1
    assert _sample(text, "airflow_gateway_cli_duration_seconds_count", api="version") == 1
    assert _sample(text, "airflow_gateway_auth_failures_total", reason="missing_token") == 1
    assert _sample(text, "airflow_gateway_auth_failures_total", reason="bad_token") == 1
    assert _sample(text, "airflow_gateway_upstream_errors_total", kind="timeout") == 1
    assert _sample(text, "airflow_gateway_requests_total", route="proxy", method="POST", code="200") == 1
    build = [line for line in text.splitlines() if line.startswith("airflow_gateway_build_info{")]
    assert len(build) == 1 and build[0].endswith(" 1.0") and 'dialect="3"' in build[0]
    assert _sample(text, "airflow_gateway_in_flight_requests") == 1  # the scrape itself


def test_metrics_are_restricted_and_never_proxied(scenario: Scenario) -> None:
    """/metrics needs the metrics token (401 without or wrong) and is answered by the gateway, not proxied."""
    url = f"{scenario.server.url}/metrics"
    missing = get(url)
    assert missing.status == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json["status"] == "ERROR"
    assert get(url, headers={"Authorization": "Bearer nope"}).status == 401
    ok = get(url, headers=SCRAPE)
    assert ok.status == 200 and "X-Seen-Request-ID" not in ok.headers
    assert ok.content_type.startswith("text/plain")
    assert b"# TYPE airflow_gateway_requests_total counter" in ok.body


def test_promtool_check_metrics_is_clean(scenario: Scenario) -> None:
    """promtool (Debian's prometheus package) finds nothing to complain about in /metrics."""
    body = _metrics(scenario.server)
    done = subprocess.run(
        [_tool("promtool"), "check", "metrics"],
        input=body,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def _tool(name: str) -> str:
    """A tool from Debian's prometheus package (scripts/bootstrap.d/30-prometheus.sh)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run the suite with scripts/test (bootstrap installs it)")
    return path


def _prom_query(base: str, expr: str) -> dict[str, Any]:
    reply = get(f"{base}/api/v1/query?query={quote(expr)}", timeout=10)
    assert reply.status == 200, reply.body
    body = reply.json
    assert body["status"] == "success", body
    return body["data"]  # type: ignore[no-any-return]


def test_real_prometheus_scrapes_the_gateway(scenario: Scenario, tmp_path: Path) -> None:
    """A real Prometheus on loopback scrapes the 2-worker gateway; its figures match what was sent."""
    gateway_port = scenario.server.url.rsplit(":", 1)[1]
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: airflow-gateway\n"
        f"    authorization: {{type: Bearer, credentials: {METRICS_TOKEN}}}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{gateway_port}']}}]\n"
    )
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                _tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not result:
            assert proc.poll() is None, log.read_text()
            try:
                result = _prom_query(base, 'airflow_gateway_cli_calls_total{api="version",outcome="ok"}')[
                    "result"
                ]
            except OSError:
                pass
            time.sleep(0.5)
        assert result, f"no gateway series in Prometheus after 60 s:\n{log.read_text()[-3000:]}"
        assert [r["value"][1] for r in result] == ["1"]
        assert result[0]["metric"]["job"] == "airflow-gateway"
        up = _prom_query(base, 'up{job="airflow-gateway"}')["result"]
        assert [r["value"][1] for r in up] == ["1"]
        # The request figure Prometheus stored is the one the gateway counted (no API calls since).
        labels = {"route": "api", "method": "GET", "code": "200"}
        counted = _sample(_metrics(scenario.server), "airflow_gateway_requests_total", **labels)
        selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
        stored = None
        while time.monotonic() < deadline + 30 and stored != counted:
            rows = _prom_query(base, f"sum(airflow_gateway_requests_total{{{selector}}})")["result"]
            stored = float(rows[0]["value"][1]) if rows else None
            time.sleep(0.5)
        assert counted is not None and counted >= 40 and stored == counted
        # Every query of the dashboard is valid PromQL against the real series.
        for expr in _dashboard_queries():
            _prom_query(base, expr.replace("$__rate_interval", "1m"))
    finally:
        stop_group(proc)  # type: ignore[arg-type]


def _dashboard_queries() -> list[str]:
    dashboard = json.loads((ROOT / "dashboards" / "airflow-gateway.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t]


def test_dead_worker_keeps_its_counts_and_drops_its_live_gauge(scenario: Scenario) -> None:
    """A killed worker is marked dead (child_exit): its counts stay, its in-flight gauge file goes."""
    server = scenario.server
    assert server.multiproc_dir is not None
    pids = _both_workers_counted(server)
    victim = sorted(pids)[0]
    labels = {"route": "healthz", "method": "GET", "code": "200"}
    before = _sample(_metrics(server), "airflow_gateway_requests_total", **labels)
    assert (server.multiproc_dir / f"gauge_livesum_{victim}.db").exists()
    os.kill(int(victim), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (server.multiproc_dir / f"gauge_livesum_{victim}.db").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (server.multiproc_dir / f"gauge_livesum_{victim}.db").exists()
    assert (server.multiproc_dir / f"counter_{victim}.db").exists()
    after = _metrics(server)
    assert _sample(after, "airflow_gateway_requests_total", **labels) == before
    assert _sample(after, "airflow_gateway_in_flight_requests") == 1
