"""The reverse proxy in-process (werkzeug test client) against a loopback echo upstream."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import Client

from gateway.config.loader import ConfigError, load_config
from gateway.http.forwarded import trust_proxies
from gateway.http.proxy import ReverseProxy, Upstream
from tests.support.upstreams import EchoUpstream, closed_port


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoUpstream]:
    server = EchoUpstream()
    yield server
    server.stop()


_OPEN: list[ReverseProxy] = []


class _Client(Client):
    """Buffered, so the body is read and the proxy's iterable closed (as gunicorn does)."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture(autouse=True)
def _close_proxies() -> Iterator[None]:
    """Close every proxy's pooled connections after each test (no leaked sockets)."""
    yield
    while _OPEN:
        _OPEN.pop()._pool.clear()


def _proxy(url: str, **kwargs: Any) -> ReverseProxy:
    proxy = ReverseProxy(url, **kwargs)
    _OPEN.append(proxy)
    return proxy


def _client(url: str, **kwargs: Any) -> Client:
    return _Client(_proxy(url, **kwargs))


def _headers(answer: dict[str, Any]) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for name, value in answer["headers"]:
        seen.setdefault(name.lower(), []).append(value)
    return seen


def test_path_and_query_pass_byte_for_byte(echo: EchoUpstream) -> None:
    """Percent-encodings (lower-case too), '+' and bare keys reach Airflow untouched."""
    target = "/api/v2/dags/a%2Fb/dagRuns/manual__2024%3a00%2B00?x=%2f&y=1+2&z&%E2%82%AC=%zz"
    answer = _client(echo.url).get(target).get_json()
    assert answer["target"] == target


def test_upstream_prefix_is_prepended(echo: EchoUpstream) -> None:
    """An upstream URL with a path puts every request under that prefix."""
    answer = _client(echo.url + "/airflow/").get("/home?q=1").get_json()
    assert answer["target"] == "/airflow/home?q=1"


def test_hop_by_hop_and_connection_listed_headers_are_dropped(echo: EchoUpstream) -> None:
    """Connection, Keep-Alive, TE, Upgrade and headers named in Connection never reach Airflow."""
    reply = _client(echo.url).get(
        "/x",
        headers={
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Upgrade": "h2c",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "X-Kept": "kept",
        },
    )
    seen = _headers(reply.get_json())
    for name in ("connection", "x-secret-hop", "keep-alive", "te", "upgrade", "proxy-authorization"):
        assert name not in seen, name
    assert seen["x-kept"] == ["kept"]


def test_gateway_credentials_are_stripped(echo: EchoUpstream) -> None:
    """The environ keys given in strip_environ_keys (the plugin token) are not forwarded."""
    client = _client(echo.url, strip_environ_keys=("HTTP_REST_API_PLUGIN_HTTP_TOKEN",))
    seen = _headers(
        client.get(
            "/x", headers={"rest-api-plugin-http-token": "t0k", "Authorization": "Bearer a"}
        ).get_json()
    )
    assert "rest-api-plugin-http-token" not in seen
    assert seen["authorization"] == ["Bearer a"]  # Airflow's own auth passes through


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param("client", "public.example:8443", id="client"),
        pytest.param("upstream", None, id="upstream"),
        pytest.param("airflow.internal:8080", "airflow.internal:8080", id="fixed"),
    ],
)
def test_host_policy(echo: EchoUpstream, policy: str, expected: str | None) -> None:
    """Host follows the configured policy; X-Forwarded-Host always carries the client's Host."""
    seen = _headers(
        _client(echo.url, host_header=policy).get("/x", headers={"Host": "public.example:8443"}).get_json()
    )
    assert seen["host"] == [expected or f"127.0.0.1:{echo.port}"]
    assert seen["x-forwarded-host"] == ["public.example:8443"]


def test_client_forwarded_headers_are_replaced_without_trusted_proxies(echo: EchoUpstream) -> None:
    """With no trusted proxy, spoofed X-Forwarded-* and Forwarded are replaced by the gateway's view."""
    client = _Client(trust_proxies(_proxy(echo.url), 0))
    reply = client.get(
        "/x",
        headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "Forwarded": "for=6.6.6.6"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    seen = _headers(reply.get_json())
    assert seen["x-forwarded-for"] == ["10.1.2.3"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert "forwarded" not in seen


def test_trusted_proxy_count_believes_that_many_hops(echo: EchoUpstream) -> None:
    """With one trusted proxy, its X-Forwarded-For/Proto/Host become the client's address, scheme, host."""
    client = _Client(trust_proxies(_proxy(echo.url), 1))
    reply = client.get(
        "/x",
        headers={
            "X-Forwarded-For": "6.6.6.6, 203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "af.example",
        },
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    seen = _headers(reply.get_json())
    assert seen["x-forwarded-for"] == ["203.0.113.9"]
    assert seen["x-forwarded-proto"] == ["https"]
    assert seen["host"] == ["af.example"]


def test_response_headers_cookies_and_gzip_pass_through(echo: EchoUpstream) -> None:
    """Every Set-Cookie is kept, gzip is not decoded, hop-by-hop and Connection-listed headers are dropped."""
    reply = _client(echo.url).get("/_headers")
    assert reply.headers.getlist("Set-Cookie") == [
        "a=1; Path=/; HttpOnly",
        "b=2; Path=/",
        "c=3; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
    ]
    assert reply.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(reply.data) == b"hello gzip " * 100
    assert "X-Private-Hop" not in reply.headers
    assert "Keep-Alive" not in reply.headers
    assert reply.headers["X-Kept"] == "yes"


def test_redirects_are_not_followed(echo: EchoUpstream) -> None:
    """A 302 from Airflow reaches the client as it is."""
    reply = _client(echo.url).get("/_redirect")
    assert reply.status_code == 302
    assert reply.headers["Location"] == "http://elsewhere.invalid/next"


def test_post_body_and_status_pass(echo: EchoUpstream) -> None:
    """A form body and an error status from Airflow pass unchanged."""
    reply = _client(echo.url).post("/_status/418", data={"a": "1", "b": "x y"})
    assert reply.status_code == 418
    answer = reply.get_json()
    assert answer["method"] == "POST"
    assert answer["body"] == "a=1&b=x+y"
    assert _headers(answer)["content-type"] == ["application/x-www-form-urlencoded"]


def test_keep_alive_connections_are_reused(echo: EchoUpstream) -> None:
    """Sequential requests reuse one pooled upstream connection."""
    client = _client(echo.url)
    ports = {client.get("/x").get_json()["peer_port"] for _ in range(5)}
    assert len(ports) == 1


def test_long_idle_connections_are_retired(echo: EchoUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pooled connection idle past the limit is closed, not reused (never racing the server's close)."""
    monkeypatch.setattr("gateway.http.proxy._MAX_IDLE_S", 0.5)
    client = _client(echo.url)
    first = client.get("/x").get_json()["peer_port"]
    assert client.get("/x").get_json()["peer_port"] == first
    time.sleep(0.7)
    assert client.get("/x").get_json()["peer_port"] != first


class _OneAnswerPerConnection:
    """An upstream that answers one request per connection, then closes it without saying
    so (no ``Connection: close``), as a server whose keep-alive timeout just fired does."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.bodies: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    self._answer_once(conn)
                except OSError:  # a client that went away: the next connection still gets served
                    pass

    def _answer_once(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv(conn)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            body += self._recv(conn)
        self.bodies.append(body)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    @staticmethod
    def _recv(conn: socket.socket) -> bytes:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionAbortedError("client closed before a whole request")
        return chunk

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_pooled_connection_closed_by_the_upstream_is_not_an_error(method: str) -> None:
    """Replayable requests reuse a fresh pooled connection without a liveness check and are
    sent again when it turns out closed; requests with a body check it first."""
    upstream = _OneAnswerPerConnection()
    try:
        client = _client(upstream.url)
        for i in range(4):
            answer = client.open("/x", method=method, data=b"body-%d" % i if method == "POST" else None)
            assert (answer.status_code, answer.data) == (200, b"ok")
            time.sleep(0.05)  # the upstream's close has arrived: the liveness check can see it
        assert upstream.connections == 4
        if method == "POST":
            assert upstream.bodies == [b"body-%d" % i for i in range(4)]  # each body sent once
    finally:
        upstream.close()


def test_down_upstream_is_a_fast_502_envelope() -> None:
    """A refused connection answers 502 in the envelope, immediately."""
    started = time.monotonic()
    reply = _client(f"http://127.0.0.1:{closed_port()}").get("/x", headers={"Accept": "application/json"})
    assert time.monotonic() - started < 1
    assert reply.status_code == 502
    assert reply.get_json()["status"] == "ERROR"
    assert reply.get_json()["http_response_code"] == 502


def test_slow_upstream_is_a_504_after_the_read_timeout(echo: EchoUpstream) -> None:
    """An upstream slower than read_timeout answers 504; a browser gets a short HTML page."""
    started = time.monotonic()
    reply = _client(echo.url, read_timeout_s=0.5).get("/_stall/3", headers={"Accept": "text/html,*/*;q=0.8"})
    assert time.monotonic() - started < 2
    assert reply.status_code == 504
    assert reply.mimetype == "text/html"
    assert b"504 Gateway Timeout" in reply.data


def test_websocket_upgrade_is_refused_with_501(echo: EchoUpstream) -> None:
    """A WebSocket upgrade gets an explicit 501 instead of a silent downgrade."""
    reply = _client(echo.url).get("/ws", headers={"Connection": "Upgrade", "Upgrade": "websocket"})
    assert reply.status_code == 501
    assert reply.get_json()["output"] == "WebSocket upgrades are not proxied by the gateway"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://x", id="scheme"),
        pytest.param("http://x/?q=1", id="query"),
        pytest.param("http://u:p@x", id="credentials"),
    ],
)
def test_bad_upstream_urls_are_refused_at_construction(url: str) -> None:
    """A proxy cannot be built for an upstream that is not a plain http(s) URL."""
    with pytest.raises(ValueError):
        Upstream.parse(url)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("client", True, id="client"),
        pytest.param("upstream", True, id="upstream"),
        pytest.param("airflow.example:8080", True, id="fixed"),
        pytest.param("bad host", False, id="space"),
        pytest.param("x:notaport", False, id="port"),
        pytest.param("x/path", False, id="path"),
    ],
)
def test_host_header_setting_is_validated(value: str, ok: bool) -> None:
    """proxy.host_header accepts client, upstream or a host[:port], and names itself otherwise."""
    env = {"AIRFLOW_GATEWAY__PROXY__HOST_HEADER": value}
    if ok:
        assert load_config(env).proxy.host_header == value
    else:
        with pytest.raises(ConfigError, match="proxy.host_header"):
            load_config(env)


def test_connect_timeout_is_a_504() -> None:
    """An upstream whose accept queue is full (SYNs dropped) answers 504 after connect_timeout."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):  # fill the accept queue until a connect itself times out
                sock = socket.socket()
                fillers.append(sock)
                sock.settimeout(0.3)
                try:
                    sock.connect(("127.0.0.1", port))
                except TimeoutError:
                    break
            started = time.monotonic()
            reply = _client(f"http://127.0.0.1:{port}", connect_timeout_s=0.5).get("/x")
            elapsed = time.monotonic() - started
        finally:
            for sock in fillers:
                sock.close()
    assert reply.status_code == 504
    assert reply.get_json()["output"] == "Airflow did not accept the connection in time"
    assert 0.4 < elapsed < 2
