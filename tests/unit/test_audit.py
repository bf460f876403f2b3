"""The audit layer in-process: one event per request, field by field, emitted on close."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, EnvironBuilder, TestResponse

from gateway.core.errors import Forbidden
from gateway.execution.subprocess_runner import CliResult
from gateway.observability.audit import AuditRecord
from gateway.request.lifecycle import request_id_of
from gateway.request.scope import RequestScope
from tests.unit.gateway_app import AIRFLOW, TOKEN, FakeRunner, UnitGateway, unit_gateway

AUTH = {"rest_api_plugin_http_token": TOKEN}


def _get(gw: UnitGateway, *args: Any, **kwargs: Any) -> TestResponse:
    """A buffered request: the test client consumes and closes the body, as a server does."""
    return Client(gw.app).get(*args, buffered=True, **kwargs)


def test_allowed_call_event(tmp_path: Path) -> None:
    """An allowed CLI call is one event with who, what, decision, exit code, duration and bytes."""
    with unit_gateway(tmp_path) as gw:
        reply = _get(
            gw,
            "/admin/rest_api/api?api=version",
            headers={**AUTH, "X-Request-ID": "unit-allowed-01"},
            environ_overrides={"REMOTE_ADDR": "203.0.113.9"},
        )
        assert reply.status_code == 200
        [event] = gw.events()
    assert event == {
        **event,
        "event": "gateway.request",
        "logger": "gateway.audit",
        "level": "info",
        "request_id": "unit-allowed-01",
        "principal": "rest_api_plugin",
        "auth_method": "plugin-token",
        "auth_failure_reason": None,
        "remote_addr": "203.0.113.9",
        "method": "GET",
        "path": "/admin/rest_api/api",
        "query": "api=version",
        "route": "api",
        "api": "version",
        "arguments": {"api": ["version"]},
        "argv": [AIRFLOW, "version"],
        "decision": "allow",
        "rule_id": None,
        "http_status": 200,
        "envelope_status": "OK",
        "exit_code": 0,
        "cli_outcome": "ok",
        "cli_duration_s": 0.25,
        "upstream_status": None,
        "bytes_in": 0,
        "bytes_out": len(reply.data),
        "error": None,
    }
    assert event["time"].endswith("Z") and event["start_time"].endswith("+00:00")
    assert event["duration_s"] > 0
    assert gw.sample("airflow_gateway_cli_calls_total", api="version", outcome="ok") == 1
    assert gw.sample("airflow_gateway_cli_duration_seconds_sum", api="version") == 0.25


def test_policy_denial_event(tmp_path: Path) -> None:
    """A call a policy refuses carries the decision and rule id, and counts as a denial; nothing runs."""

    def deny(principal: Any, plan: Any, request: Any) -> None:
        record: AuditRecord = RequestScope.of(request.environ).audit
        record.decision, record.rule_id = "deny", "read-only-users"
        raise Forbidden("Denied by policy")

    with unit_gateway(tmp_path, authorize=deny) as gw:
        reply = _get(gw, "/admin/rest_api/api?api=pause&dag_id=gw_example", headers=AUTH)
        [event] = gw.events()
    assert reply.status_code == 403 and gw.runner.calls == []
    assert (event["decision"], event["rule_id"], event["http_status"]) == ("deny", "read-only-users", 403)
    assert (event["envelope_status"], event["argv"], event["cli_outcome"]) == ("ERROR", None, None)
    assert event["api"] == "pause" and event["arguments"] == {"api": ["pause"], "dag_id": ["gw_example"]}
    assert gw.sample("airflow_gateway_policy_denials_total", api="pause") == 1


def test_refusal_without_policy_fields_is_still_a_deny(tmp_path: Path) -> None:
    """An authorize hook that only raises 403 is recorded as decision 'deny'."""

    def refuse(principal: Any, plan: Any, request: Any) -> None:
        raise Forbidden()

    with unit_gateway(tmp_path, authorize=refuse) as gw:
        _get(gw, "/admin/rest_api/api?api=version", headers=AUTH)
        [event] = gw.events()
    assert (event["decision"], event["rule_id"]) == ("deny", None)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param({}, "missing_token", id="missing"),
        pytest.param({"rest_api_plugin_http_token": "not-the-token"}, "bad_token", id="wrong"),
    ],
)
def test_authentication_failure_event(tmp_path: Path, headers: dict[str, str], reason: str) -> None:
    """A refused token is audited with its reason (never the credential) and counted."""
    with unit_gateway(tmp_path) as gw:
        reply = _get(gw, "/admin/rest_api/api?api=version", headers=headers)
        [event] = gw.events()
        text = gw.out.getvalue()
    assert reply.status_code == 403
    assert (event["auth_failure_reason"], event["principal"], event["envelope_status"]) == (
        reason,
        None,
        "ERROR",
    )
    assert "not-the-token" not in text
    assert gw.sample("airflow_gateway_auth_failures_total", reason=reason) == 1


@pytest.mark.parametrize(
    ("result", "status", "outcome", "exit_code"),
    [
        pytest.param(CliResult(1, "", "Error: boom", False, False, 0.5), 500, "failed", 1, id="failed"),
        pytest.param(CliResult(None, "", "", False, True, 0.5), 504, "timeout", None, id="timed-out"),
    ],
)
def test_failed_and_timed_out_command_events(
    tmp_path: Path, result: CliResult, status: int, outcome: str, exit_code: int | None
) -> None:
    """A failing or killed command is audited with its status, outcome and exit code."""
    with unit_gateway(tmp_path, runner=FakeRunner(result)) as gw:
        reply = _get(gw, "/admin/rest_api/api?api=version", headers=AUTH)
        [event] = gw.events()
    assert reply.status_code == status
    assert (event["http_status"], event["envelope_status"]) == (status, "ERROR")
    assert (event["cli_outcome"], event["exit_code"], event["cli_duration_s"]) == (outcome, exit_code, 0.5)
    assert gw.sample("airflow_gateway_cli_calls_total", api="version", outcome=outcome) == 1


class StreamingUpstream:
    """A proxy stand-in whose body is consumed lazily and whose close() is observable."""

    def __init__(self, chunks: int = 3, fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = False
        self.seen_request_id: str | None = None
        self.body_in = b""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.seen_request_id = environ.get("HTTP_X_REQUEST_ID")
        self.body_in = environ["wsgi.input"].read()
        record = RequestScope.of(environ).audit
        record.upstream_status, record.upstream_duration_s = 201, 0.125
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Request-ID", "upstream-own-id")])
        return self._body()

    def _body(self) -> Iterator[bytes]:
        try:
            for i in range(self.chunks):
                if i == self.fail_at:
                    raise ConnectionResetError("upstream went away")
                yield b"x" * 100
        finally:
            self.closed = True


def test_streamed_body_is_audited_only_after_close(tmp_path: Path) -> None:
    """The event waits for the server's close() (after the last chunk), counts bytes, and is emitted once."""
    upstream = StreamingUpstream()
    with unit_gateway(tmp_path, proxy=upstream) as gw:
        environ = EnvironBuilder("/api/v2/dags", method="PUT", data=b"y" * 42).get_environ()
        statuses: list[str] = []
        headers: list[list[tuple[str, str]]] = []
        body = gw.app(
            environ, lambda s, h, e=None: statuses.append(s) or headers.append(h) or (lambda d: None)
        )
        iterator = iter(body)
        next(iterator)
        assert gw.events() == []  # mid-stream: nothing yet
        list(iterator)
        assert gw.events() == []  # body done, but the server has not closed it yet
        body.close()  # type: ignore[attr-defined]
        body.close()  # type: ignore[attr-defined]
        [event] = gw.events()
    assert upstream.closed and statuses == ["201 Created"]
    assert ("X-Request-ID", event["request_id"]) in headers[0] and (
        "X-Request-ID",
        "upstream-own-id",
    ) not in headers[0]
    assert upstream.seen_request_id == event["request_id"] and upstream.body_in == b"y" * 42
    assert (event["route"], event["method"], event["http_status"], event["upstream_status"]) == (
        "proxy",
        "PUT",
        201,
        201,
    )
    assert (event["bytes_in"], event["bytes_out"], event["upstream_duration_s"]) == (42, 300, 0.125)
    assert gw.sample("airflow_gateway_requests_total", route="proxy", method="PUT", code="201") == 1
    assert gw.sample("airflow_gateway_upstream_duration_seconds_count") == 1
    assert gw.sample("airflow_gateway_in_flight_requests") == 0


def test_body_failing_mid_stream_is_audited(tmp_path: Path) -> None:
    """An upstream failure during the body is recorded as the event's error, still on close."""
    with unit_gateway(tmp_path, proxy=StreamingUpstream(chunks=3, fail_at=1)) as gw:
        body = gw.app(EnvironBuilder("/x").get_environ(), lambda s, h, e=None: lambda d: None)
        with pytest.raises(ConnectionResetError):
            list(body)
        body.close()  # type: ignore[attr-defined]
        [event] = gw.events()
    assert (event["error"], event["bytes_out"]) == ("ConnectionResetError", 100)


def test_unhandled_error_is_audited_and_logged_without_locals(tmp_path: Path) -> None:
    """An exception in a handler: 500 envelope, the event records it, the log has a traceback, no locals."""
    runner = FakeRunner(error=RuntimeError("runner exploded"))
    with unit_gateway(tmp_path, runner=runner) as gw:
        reply = _get(gw, "/admin/rest_api/api?api=version", headers=AUTH)
        lines = gw.lines()
    assert reply.status_code == 500 and "Traceback" not in reply.text
    [event] = [line for line in lines if line["event"] == "gateway.request"]
    assert (event["error"], event["http_status"], event["envelope_status"]) == ("RuntimeError", 500, "ERROR")
    [crash] = [line for line in lines if line["event"] == "unhandled error"]
    assert crash["logger"] == "gateway" and crash["request_id"] == event["request_id"]
    assert "RuntimeError: runner exploded" in crash["exception"] and "locals" not in crash["exception"]


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        pytest.param("client-id-12345", True, id="well-formed"),
        pytest.param("short", False, id="too-short"),
        pytest.param("has spaces in it", False, id="bad-chars"),
        pytest.param("x" * 129, False, id="too-long"),
    ],
)
def test_request_id_accepted_or_generated(tmp_path: Path, incoming: str, kept: bool) -> None:
    """A well-formed X-Request-ID is kept everywhere; anything else is replaced by a fresh id."""
    with unit_gateway(tmp_path) as gw:
        reply = _get(gw, "/healthz", headers={"X-Request-ID": incoming})
        [event] = gw.events()
    returned = reply.headers["X-Request-ID"]
    assert (returned == incoming) is kept
    assert event["request_id"] == returned and len(returned) >= 8


def test_audit_file_gets_each_event_as_one_line(tmp_path: Path) -> None:
    """With [audit] file set, every event is appended to the file as it is emitted."""
    from gateway.core.redact import Redactor
    from gateway.observability.audit import AuditLog, AuditSink

    path = tmp_path / "audit" / "audit.jsonl"
    sink = AuditSink(stdout=False, file=path)
    log = AuditLog(Redactor(), sink)
    for n in range(3):
        log.emit(AuditRecord(request_id=f"file-test-{n:04d}", method="GET", path="/", remote_addr=None))
        assert len(path.read_text().splitlines()) == n + 1  # on disk at once, no buffering


def test_generated_request_ids_are_unique_across_forked_workers() -> None:
    """Ids come from a per-process random prefix and a counter; a forked child draws its own prefix."""
    ids = [request_id_of({}) for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # a gunicorn worker forked from a master that had already made ids
        os.write(write_end, request_id_of({}).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.close(write_end)
    assert len(child) == 32 and child[:16] != ids[0][:16]
