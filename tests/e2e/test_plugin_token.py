"""The original plugin's token header, through real gunicorn."""

from __future__ import annotations

import subprocess

from tests.e2e.conftest import TOKEN_HEADER
from tests.support.http import get
from tests.support.servers import GatewayServer


def test_readme_curl_line_works_through_gunicorn(gateway: GatewayServer) -> None:
    """The original README's curl command, underscore header and all, gets Airflow's version."""
    done = subprocess.run(
        ["curl", "-sS", "--header", "rest_api_plugin_http_token: changeme", gateway.api("api=version")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    import json

    body = json.loads(done.stdout)
    assert body["status"] == "OK"
    assert body["http_response_code"] == 200
    assert body["output"]["stdout"].strip().split(".")[0] in {"1", "2", "3"}
    assert body["airflow_cmd"] == "airflow version"


def test_missing_token_gets_the_plugins_403(gateway: GatewayServer) -> None:
    """No header: the plugin's 403 envelope with 'Token Authentication Failed'."""
    reply = get(gateway.api("api=version"))
    assert reply.status == 403
    body = reply.json
    assert body["status"] == "ERROR"
    assert body["output"] == "Token Authentication Failed"
    assert body["http_response_code"] == 403
    assert {"call_time", "response_time"} <= body.keys()


def test_wrong_token_and_dash_form(gateway: GatewayServer) -> None:
    """A wrong token is refused; the dash spelling of the header name is accepted too."""
    assert get(gateway.api("api=version"), headers={"rest_api_plugin_http_token": "nope"}).status == 403
    reply = get(
        gateway.api("api=rest_api_plugin_version"), headers={"rest-api-plugin-http-token": "changeme"}
    )
    assert reply.status == 200, reply.body


def test_other_underscore_headers_are_still_dropped(gateway: GatewayServer) -> None:
    """Only the token header is let through with underscores; gunicorn drops the rest."""
    reply = get(
        gateway.api("api=rest_api_plugin_version"),
        headers={**TOKEN_HEADER, "X_Request_ID": "spoofed-request-id-123"},
    )
    assert reply.status == 200
    assert reply.json["request_id"] != "spoofed-request-id-123"
