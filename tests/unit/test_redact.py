"""Redaction table: every secret form, sent every way, appears in no output at all."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import structlog
from werkzeug.test import Client

from gateway.core.redact import MASK, Redactor
from gateway.execution.subprocess_runner import NO_OPTIONS, CallOptions, CliResult
from tests.unit.gateway_app import TOKEN, FakeRunner, unit_gateway

AUTH = {"rest_api_plugin_http_token": TOKEN}
# Airflow's DEFAULT_SENSITIVE_FIELDS, as variable keys.
AIRFLOW_SENSITIVE_KEYS = [
    "db_password", "client_secret", "passwd", "authorization", "api_key", "apikey", "access_token",
    "private_key", "passphrase", "keyfile_dict", "service_account", "slack_token",
]  # fmt: skip


class ExplodingRunner(FakeRunner):
    """Fails with the argv in the exception message and in a local variable (traceback forms)."""

    def run(self, argv: Sequence[str], *, timeout_s: float, options: CallOptions = NO_OPTIONS) -> CliResult:
        secret_argv = list(argv)  # a local: must not be rendered
        raise RuntimeError(f"could not start {' '.join(secret_argv)}")


CASES = [
    pytest.param(
        {"api": "connections", "add": "true", "conn_id": "c1", "conn_uri": "postgres://user:UriPw-Secret1@db:5432/x"},
        ["UriPw-Secret1"], {}, id="conn_uri-password",
    ),
    pytest.param(
        {"api": "connections", "add": "true", "conn_id": "c1", "conn_uri": "mysql://u:p%40ss-Secret2@db/x"},
        ["p%40ss-Secret2", "p@ss-Secret2"], {}, id="conn_uri-encoded-password",
    ),
    pytest.param(
        {"api": "connections", "add": "true", "conn_id": "c1", "conn_uri": "http://host/?token=QueryTok-Secret3"},
        ["QueryTok-Secret3"], {}, id="conn_uri-query-token",
    ),
    pytest.param(
        {"api": "connections", "add": "true", "conn_id": "c1", "conn_type": "http",
         "conn_extra": json.dumps({"api_key": "ExtraKey-Secret4", "deep": {"password": "ExtraPw-Secret5"}})},
        ["ExtraKey-Secret4", "ExtraPw-Secret5"], {}, id="conn_extra",
    ),
    *[
        pytest.param(
            {"api": "variables", "set": key, "set_value": f"Value-of-{key}-Secret6"},
            [f"Value-of-{key}-Secret6"], {}, id=f"variable-{key}",
        )
        for key in AIRFLOW_SENSITIVE_KEYS
    ],
    pytest.param(
        {"api": "variables", "set": "my_pin_code", "set_value": "PinValue-Secret7"},
        ["PinValue-Secret7"], {"AUDIT__SENSITIVE_NAMES": "pin_code,other"}, id="variable-configured-name",
    ),
]  # fmt: skip


def _outputs(reply_body: bytes, captured: str) -> str:
    return reply_body.decode("utf-8", "replace") + "\n" + captured


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("runner", [FakeRunner, ExplodingRunner], ids=["runs", "crashes"])
@pytest.mark.parametrize(("args", "secrets", "settings"), CASES)
def test_secret_arguments_appear_nowhere(
    tmp_path: Path,
    args: dict[str, str],
    secrets: list[str],
    settings: dict[str, str],
    runner: type[FakeRunner],
    method: str,
) -> None:
    """A secret in the query or form reaches no answer, audit event, argv, log line or traceback."""
    with unit_gateway(tmp_path, runner=runner(), settings=settings) as gw:
        client = Client(gw.app)
        if method == "GET":
            reply = client.get(f"/admin/rest_api/api?{urlencode(args)}", headers=AUTH, buffered=True)
        else:
            reply = client.post("/admin/rest_api/api", data=args, headers=AUTH, buffered=True)
        captured = gw.out.getvalue()
        [event] = gw.events()
    assert reply.status_code in {200, 500}, reply.text
    text = _outputs(reply.data, captured)
    assert [s for s in secrets if s in text] == []
    assert event["argv"] is not None and MASK in json.dumps(event["argv"])  # it was planned, and masked
    if runner is ExplodingRunner:
        assert "could not start" in captured and "secret_argv = " not in captured  # no locals


@pytest.mark.parametrize(
    ("headers", "secrets"),
    [
        pytest.param({"rest_api_plugin_http_token": TOKEN}, [TOKEN], id="plugin-token"),
        pytest.param(
            {"rest_api_plugin_http_token": "WrongTok-Secret8"}, ["WrongTok-Secret8"], id="wrong-token"
        ),
        pytest.param(
            {"Authorization": "Bearer Bearer-Secret9"}, ["Bearer-Secret9"], id="authorization-bearer"
        ),
        pytest.param(
            {"Authorization": "Basic QmFzaWMtU2VjcmV0MTA="},
            ["QmFzaWMtU2VjcmV0MTA="],
            id="authorization-basic",
        ),
        pytest.param({"Cookie": "session=Cookie-Secret11; theme=dark"}, ["Cookie-Secret11"], id="cookie"),
        pytest.param({"X-Api-Key": "HeaderKey-Secret12"}, ["HeaderKey-Secret12"], id="api-key-header"),
    ],
)
def test_secret_headers_appear_nowhere(tmp_path: Path, headers: dict[str, str], secrets: list[str]) -> None:
    """Credentials in headers are masked even when logged whole, in an event or in a traceback."""
    with unit_gateway(tmp_path, runner=ExplodingRunner()) as gw:
        reply = Client(gw.app).get("/admin/rest_api/api?api=version", headers=headers, buffered=True)
        structlog.get_logger().info("headers seen", headers=headers)
        logging.getLogger("gateway").warning("headers seen: %s", headers)
        try:
            raise ValueError(f"bad request headers {headers}")
        except ValueError:
            structlog.get_logger().exception("request failed")
            logging.getLogger("gateway").exception("request failed")
        captured = gw.out.getvalue()
    text = _outputs(reply.data, captured)
    assert [s for s in secrets if s in text] == []
    assert text.count("headers seen") == 2 and text.count("request failed") == 2


def test_tracebacks_render_without_locals(tmp_path: Path) -> None:
    """Exception rendering never includes local variables (structlog's dict tracebacks would)."""

    def fail() -> None:
        token_in_local = "LocalVar-Secret13"  # noqa: F841 - the point of the test
        raise KeyError("missing")

    with unit_gateway(tmp_path) as gw:
        try:
            fail()
        except KeyError:
            structlog.get_logger().exception("crash")
        [line] = gw.lines()
    assert "LocalVar-Secret13" not in json.dumps(line)
    assert "KeyError: 'missing'" in line["exception"]
    assert "LocalVar-Secret13" not in gw.out.getvalue()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        pytest.param("connect to postgres://u:Pw-Secret14@h:5432/db failed", "Pw-Secret14", id="uri"),
        pytest.param(
            "GET /admin/rest_api/api?api=x&password=Pw-Secret15 HTTP/1.1", "Pw-Secret15", id="query"
        ),
        pytest.param('{"api_key": "Key-Secret16", "x": 1}', "Key-Secret16", id="json"),
        pytest.param("Authorization: Bearer Tok-Secret17", "Tok-Secret17", id="bearer"),
        pytest.param("client_secret=Sec-Secret18 rest", "Sec-Secret18", id="key-value"),
    ],
)
def test_free_text_forms(text: str, secret: str) -> None:
    """Free text (messages, request lines, JSON) is scrubbed by structure alone."""
    masked = Redactor().text(text)
    assert secret not in masked and MASK in masked


def test_gunicorn_logconfig_renders_json_and_redacts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """gunicorn's loggers, configured by logconfig_dict, write redacted JSON lines to stdout."""
    import logging.config

    from gateway.config.loader import load_config
    from gateway.observability.logging import gunicorn_logconfig

    config = load_config(
        {"AIRFLOW_GATEWAY__REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "Conf-Secret19"}
    )
    error_log = logging.getLogger("gunicorn.error")
    access_log = logging.getLogger("gunicorn.access")
    saved = {lg: (lg.handlers[:], lg.propagate, lg.level) for lg in (error_log, access_log)}
    try:
        logging.config.dictConfig(gunicorn_logconfig(config))
        error_log.info("Booting worker with pid: %s", 42)
        access_log.info(
            '%(h)s "%(r)s" %(s)s', {"h": "10.0.0.1", "r": "GET /x?token=Tok-Secret20 HTTP/1.1", "s": 200}
        )
        error_log.error("seen Conf-Secret19 in a message")
    finally:
        for lg, (handlers, propagate, level) in saved.items():
            lg.handlers[:] = handlers
            lg.propagate, lg.level = propagate, level
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [(x["logger"], x["level"]) for x in lines] == [
        ("gunicorn.error", "info"), ("gunicorn.access", "info"), ("gunicorn.error", "error"),
    ]  # fmt: skip
    assert lines[0]["event"] == "Booting worker with pid: 42" and lines[0]["time"].endswith("Z")
    assert "Tok-Secret20" not in lines[1]["event"] and "Conf-Secret19" not in lines[2]["event"]


def test_arguments_keep_what_is_not_secret() -> None:
    """Redaction masks secrets only: ordinary arguments stay readable for the audit."""
    args: dict[str, Any] = {"api": ["variables"], "set": ["dag_owner"], "set_value": ["alice"]}
    assert Redactor().arguments(args) == args
    assert Redactor().argv(["airflow", "variables", "set", "--", "dag_owner", "alice"]) == [
        "airflow", "variables", "set", "--", "dag_owner", "alice",
    ]  # fmt: skip
