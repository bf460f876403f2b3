"""Request bodies of the CLI API through real gunicorn (issue 13 finding 6, issue 15 item 5).

Before: werkzeug never applied the form limit to urlencoded bodies (an 8 MiB field was
parsed, echoed and audited whole), a chunked body past the body limit was cut and
processed (400, not 413), and other body types were silently ignored.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlencode, urlsplit

from tests.reliability.conftest import TOKEN
from tests.support.http import request
from tests.support.servers import GatewayServer

AUTH = {"rest_api_plugin_http_token": TOKEN}
MIB = 1024 * 1024


def _api(server: GatewayServer) -> str:
    return f"{server.url}/admin/rest_api/api"


def test_an_oversize_urlencoded_field_is_refused_413(gateway: GatewayServer) -> None:
    body = urlencode({"api": "rest_api_plugin_version", "x": "a" * (2 * MIB)}).encode()
    headers = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    reply = request("POST", _api(gateway), headers=headers, body=body, timeout=60)
    assert reply.status == 413, reply.body[:300]
    assert "limits.max_form_memory_bytes" in reply.json["output"]
    assert b"aaaaaaaa" not in reply.body


def test_an_oversize_chunked_body_is_refused_413(gateway: GatewayServer) -> None:
    """20 MiB, chunked (no Content-Length), past limits.max_body_bytes (16 MiB) and the form limit."""
    parts = urlsplit(gateway.url)
    head = (
        f"POST /admin/rest_api/api HTTP/1.1\r\nHost: x\r\nrest_api_plugin_http_token: {TOKEN}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    chunk = b"%x\r\n%s\r\n" % (MIB, b"x=" + b"a" * (MIB - 2))
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.sendall(head + b"4\r\napi=\r\n")
        try:
            for _ in range(20):
                sock.sendall(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the gateway answered and closed without reading it all
        reply = b""
        try:
            while data := sock.recv(65536):
                reply += data
        except OSError:
            pass
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:300]


def test_a_json_body_is_taken_like_form_fields(gateway: GatewayServer) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    body = json.dumps({"api": "rest_api_plugin_version"}).encode()
    reply = request("POST", _api(gateway), headers=headers, body=body, timeout=60)
    assert reply.status == 200, reply.body[:500]
    assert reply.json["post_arguments"] == {"api": "rest_api_plugin_version"}


def test_a_json_body_that_is_not_an_object_of_scalars_is_400(gateway: GatewayServer) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    for body in (b"[1, 2]", b'{"api": {"nested": 1}}', b"{not json"):
        reply = request("POST", _api(gateway), headers=headers, body=body, timeout=60)
        assert reply.status == 400, (body, reply.body[:300])
        assert reply.json["status"] == "ERROR"


def test_another_body_type_is_415(gateway: GatewayServer) -> None:
    headers = {**AUTH, "Content-Type": "text/plain"}
    reply = request("POST", _api(gateway) + "?api=rest_api_plugin_version", headers=headers, body=b"api=x")
    assert reply.status == 415, reply.body[:300]
    assert "application/json" in reply.json["output"]


def test_a_deeply_nested_json_body_is_400_not_500(gateway: GatewayServer) -> None:
    """The JSON parser recurses per level: 100000 levels used to end in an uncaught RecursionError."""
    headers = {**AUTH, "Content-Type": "application/json"}
    for body in (b'{"api": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b"[" * 1000 + b"]" * 1000):
        reply = request("POST", _api(gateway), headers=headers, body=body, timeout=60)
        assert reply.status == 400, reply.body[:300]
        assert reply.json["status"] == "ERROR" and "nested too deeply" in reply.json["output"]


def test_an_argument_given_twice_is_400_whatever_its_name_or_form(gateway: GatewayServer) -> None:
    """api and mode given twice were taken from their first value, a JSON key from its last."""
    json_headers = {**AUTH, "Content-Type": "application/json"}
    asked = [
        ("GET", "?api=rest_api_plugin_version&api=version", None, "api"),
        ("GET", "?api=version&mode=sync&mode=job", None, "mode"),
        ("GET", "?api=version&api=", None, "api"),
        ("POST", "", b'{"api": "version", "api": "rest_api_plugin_version"}', "api"),
        ("POST", "", b'{"api": "pause", "dag_id": "a", "dag_id": "b"}', "dag_id"),
    ]
    for method, query, body, name in asked:
        headers = json_headers if body is not None else AUTH
        reply = request(method, _api(gateway) + query, headers=headers, body=body, timeout=60)
        assert reply.status == 400, (query, body, reply.body[:300])
        assert f"'{name}' is given more than once" in reply.json["output"], reply.json
