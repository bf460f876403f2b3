"""The reverse proxy through real gunicorn, in front of loopback echo / stalling / down upstreams."""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import TOKEN, TOKEN_HEADER
from tests.support.airflow import AirflowHome
from tests.support.http import get, request
from tests.support.servers import GatewayServer, start_gateway
from tests.support.upstreams import EchoUpstream, closed_port

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoUpstream]:
    server = EchoUpstream()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxied(
    echo: EchoUpstream, airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    """The gateway under gunicorn with the echo server as its upstream and a 1 s read timeout."""
    server = start_gateway(
        airflow3,
        tmp_path_factory.mktemp("gw-echo"),
        settings={
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
            "PROXY__UPSTREAM": echo.url,
            "PROXY__READ_TIMEOUT": "1",
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def down(airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """The gateway under gunicorn whose upstream refuses connections, behind one trusted proxy."""
    server = start_gateway(
        airflow3,
        tmp_path_factory.mktemp("gw-down"),
        settings={
            "PROXY__UPSTREAM": f"http://127.0.0.1:{closed_port()}",
            "GATEWAY__TRUSTED_PROXY_COUNT": "1",
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def behind_proxy(
    echo: EchoUpstream, airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    """The gateway under gunicorn with one trusted proxy in front of it (trusted_proxy_count = 1)."""
    server = start_gateway(
        airflow3,
        tmp_path_factory.mktemp("gw-trusted"),
        settings={
            "PROXY__UPSTREAM": echo.url,
            "GATEWAY__TRUSTED_PROXY_COUNT": "1",
            "PROXY__HOST_HEADER": "upstream",
        },
    )
    yield server
    server.stop()


def _port(server: GatewayServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _raw(server: GatewayServer, data: bytes, timeout: float = 30) -> bytes:
    """Send raw bytes, read the whole answer (the request must say Connection: close)."""
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=timeout) as sock:
        sock.sendall(data)
        parts = []
        while chunk := sock.recv(65536):
            parts.append(chunk)
    return b"".join(parts)


def _headers(answer: dict[str, object]) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for name, value in answer["headers"]:  # type: ignore[attr-defined]
        seen.setdefault(name.lower(), []).append(value)
    return seen


def test_request_reaches_airflow_exactly(proxied: GatewayServer, echo: EchoUpstream) -> None:
    """Through gunicorn: raw target kept, token stripped, X-Forwarded-* set, spoofed ones replaced."""
    target = "/api/v2/dags/a%2Fb?x=%2f&y=1+2&z&q=%E2%82%AC"
    reply = get(
        proxied.url + target,
        headers={**TOKEN_HEADER, "X-Forwarded-For": "6.6.6.6", "Cookie": "session=abc", "X-Custom": "v"},
    )
    assert reply.status == 200
    answer = reply.json
    assert answer["target"] == target
    seen = _headers(answer)
    assert "rest_api_plugin_http_token" not in seen and "rest-api-plugin-http-token" not in seen
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["host"] == [f"127.0.0.1:{_port(proxied)}"]  # Host policy "client" (the default)
    assert seen["cookie"] == ["session=abc"] and seen["x-custom"] == ["v"]
    assert seen["x-request-id"] == [reply.headers["X-Request-ID"]]  # one id for gateway and Airflow logs


def test_request_id_reaches_airflow_and_the_client(proxied: GatewayServer) -> None:
    """A well-formed client X-Request-ID is kept; Airflow and the client see the same id."""
    given = get(proxied.url + "/x", headers={"X-Request-ID": "client-chosen-id-42"})
    assert _headers(given.json)["x-request-id"] == ["client-chosen-id-42"]
    assert given.headers["X-Request-ID"] == "client-chosen-id-42"


def test_own_endpoints_are_not_proxied(proxied: GatewayServer) -> None:
    """/healthz, /readyz and the CLI API are answered by the gateway itself."""
    assert get(proxied.url + "/healthz").json == {"status": "ok"}
    ready = get(proxied.url + "/readyz")
    assert ready.status == 200, ready.body
    assert ready.json["checks"]["upstream"]["ok"] is True
    assert ready.json["checks"]["cli"]["ok"] is True
    reply = get(proxied.api("api=rest_api_plugin_version"), headers=TOKEN_HEADER)
    assert reply.status == 200 and reply.json["status"] == "OK"


def test_chunked_upload_streams_through(proxied: GatewayServer) -> None:
    """A chunked request body (as gunicorn passes it) reaches Airflow chunked and intact."""
    pieces = [b"a" * 1000, b"b" * 70000, b"c" * 5]
    body = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    head = b"POST /upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    answer = _raw(proxied, head + body)
    status, _, payload = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200")
    import json

    echoed = json.loads(payload if b"Content-Length" in status else _dechunk(payload))
    assert echoed["chunked"] is True
    assert echoed["body_sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()


def _dechunk(data: bytes) -> bytes:
    out = []
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return b"".join(out)
        out.append(data[:size])
        data = data[size + 2 :]


def test_large_upload_and_download_stream(proxied: GatewayServer, echo: EchoUpstream) -> None:
    """A 32 MiB upload arrives intact; 32 MiB downloads arrive intact, sized and chunked."""
    body = bytes(range(256)) * (32 * MIB // 256)
    reply = request(
        "POST", proxied.url + "/upload", body=body, headers={"Content-Type": "application/octet-stream"}
    )
    assert reply.json["body_sha256"] == hashlib.sha256(body).hexdigest()
    for query in ("", "?chunked=1"):
        down = get(f"{proxied.url}/_stream/{32 * MIB}{query}")
        assert down.status == 200 and len(down.body) == 32 * MIB
        assert down.body[:512] == bytes(range(256)) * 2


def test_client_disconnect_releases_the_upstream(proxied: GatewayServer, echo: EchoUpstream) -> None:
    """A client leaving mid-download makes the gateway close its upstream connection."""
    before = len(echo.aborted_streams)
    size = 1024 * MIB
    with socket.create_connection(("127.0.0.1", _port(proxied)), timeout=10) as sock:
        sock.sendall(f"GET /_stream/{size} HTTP/1.1\r\nHost: gw\r\n\r\n".encode())
        received = 0
        while received < 2 * MIB:
            received += len(sock.recv(65536))
    deadline = time.monotonic() + 15
    while len(echo.aborted_streams) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(echo.aborted_streams) > before, "upstream kept streaming after the client left"
    assert echo.aborted_streams[-1] < size


def test_set_cookies_gzip_and_hop_headers_in_the_response(proxied: GatewayServer) -> None:
    """Every Set-Cookie arrives, gzip is untouched, Connection-listed and Keep-Alive headers are dropped."""
    conn = http.client.HTTPConnection("127.0.0.1", _port(proxied), timeout=10)
    conn.request("GET", "/_headers", headers={"Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.headers.get_all("Set-Cookie") == [
        "a=1; Path=/; HttpOnly",
        "b=2; Path=/",
        "c=3; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
    ]
    assert resp.headers["Content-Encoding"] == "gzip" and body[:2] == b"\x1f\x8b"
    assert resp.headers["X-Private-Hop"] is None
    assert resp.headers["X-Kept"] == "yes"
    assert len(resp.headers.get_all("Date") or []) == 1 and len(resp.headers.get_all("Server") or []) == 1


def test_slow_upstream_is_a_fast_504(proxied: GatewayServer) -> None:
    """An upstream slower than the read timeout (1 s) gets a 504 envelope after about 1 s."""
    started = time.monotonic()
    reply = get(proxied.url + "/_stall/5")
    elapsed = time.monotonic() - started
    assert reply.status == 504 and reply.json["http_response_code"] == 504
    assert 0.9 < elapsed < 3


def test_body_stalling_midway_breaks_the_client_connection(proxied: GatewayServer) -> None:
    """An upstream that stalls mid-body is not passed off as a complete answer."""
    conn = http.client.HTTPConnection("127.0.0.1", _port(proxied), timeout=10)
    conn.request("GET", "/_stall_body/3")
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()


def test_websocket_upgrade_is_a_501(proxied: GatewayServer) -> None:
    """A WebSocket handshake through gunicorn gets the documented 501."""
    reply = get(
        proxied.url + "/ws",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        },
    )
    assert reply.status == 501


def test_down_upstream_is_a_fast_502_and_not_ready(down: GatewayServer) -> None:
    """Upstream down: 502 envelope for API clients, HTML for browsers, /readyz 503, /healthz still 200."""
    started = time.monotonic()
    reply = get(down.url + "/home")
    assert reply.status == 502 and reply.json["status"] == "ERROR"
    assert time.monotonic() - started < 1
    page = get(down.url + "/home", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status == 502 and page.content_type.startswith("text/html")
    assert b"502 Bad Gateway" in page.body
    ready = get(down.url + "/readyz")
    assert ready.status == 503 and ready.json["checks"]["upstream"]["ok"] is False
    assert get(down.url + "/healthz").status == 200


def test_trusted_proxy_hop_is_believed_and_no_further(
    behind_proxy: GatewayServer, echo: EchoUpstream
) -> None:
    """One trusted proxy: its X-Forwarded-For/Proto/Host count, earlier hops do not; Host is upstream's."""
    reply = get(
        behind_proxy.url + "/x",
        headers={
            "X-Forwarded-For": "6.6.6.6, 203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "airflow.example.org",
        },
    )
    seen = _headers(reply.json)
    assert seen["x-forwarded-for"] == ["203.0.113.7"]
    assert seen["x-forwarded-proto"] == ["https"]
    assert seen["x-forwarded-host"] == ["airflow.example.org"]
    assert seen["host"] == [f"127.0.0.1:{echo.port}"]


def test_sigterm_lets_in_flight_proxied_requests_finish(
    echo: EchoUpstream, airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Graceful shutdown: on SIGTERM a proxied request already in flight still gets its answer."""
    server = start_gateway(
        airflow3,
        tmp_path_factory.mktemp("gw-graceful"),
        settings={"PROXY__UPSTREAM": echo.url, "PROXY__READ_TIMEOUT": "10"},
        extra_env={"GATEWAY_GRACEFUL_TIMEOUT": "20"},
    )
    try:
        result: dict[str, object] = {}
        slow = server.url + "/_stall/2"
        worker = threading.Thread(target=lambda: result.update(reply=get(slow, timeout=30)))
        worker.start()
        time.sleep(0.7)
        os.kill(server.proc.pid, signal.SIGTERM)
        worker.join(30)
        reply = result.get("reply")
        assert reply is not None and reply.status == 200  # type: ignore[attr-defined]
        assert server.proc.wait(timeout=30) == 0
    finally:
        server.stop()


def test_busy_keep_alive_connections_leave_room_for_a_new_one(
    echo: EchoUpstream, airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A thread stays on its keep-alive connection only while no other connection waits.

    One worker with five threads and a 1 s linger: five clients send back to back on
    kept-alive connections, each holding a thread.  Were a thread to stay on its
    connection regardless, a sixth client would wait for as long as they keep sending.
    """
    server = start_gateway(
        airflow3,
        tmp_path_factory.mktemp("gw-linger"),
        settings={"PROXY__UPSTREAM": echo.url, "CLI__MAX_CONCURRENT": "1"},
        extra_env={"GATEWAY_THREADS": "1", "GATEWAY_KEEPALIVE_LINGER_MS": "1000"},
        workers=1,
    )
    stop = threading.Event()
    served = [0] * 5

    def hammer(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", _port(server), timeout=30)
        while not stop.is_set():
            conn.request("GET", f"/busy/{i}")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
            served[i] += 1
        conn.close()

    clients = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(5)]
    try:
        for client in clients:
            client.start()
        deadline = time.monotonic() + 30
        while min(served) < 20 and time.monotonic() < deadline:  # every client is holding a thread
            time.sleep(0.05)
        assert min(served) >= 20, served
        reply = get(server.url + "/sixth", timeout=10)
        assert reply.status == 200
        assert all(client.is_alive() for client in clients)  # they were still sending throughout
        assert "Using worker: gateway.http.worker.KeepAliveThreadWorker" in server.log.read_text()
    finally:
        stop.set()
        for client in clients:
            client.join(30)
        server.stop()
