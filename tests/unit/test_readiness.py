"""/readyz's upstream check: one GET through the proxy's HTTP client, on a fresh connection."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from gateway.http.proxy import ReverseProxy
from tests.support.upstreams import closed_port


class _OneShot:
    """Answers each connection's request with ``answer`` (after ``delay_s``), then closes it."""

    def __init__(self, answer: bytes, delay_s: float = 0.0) -> None:
        self.answer, self.delay_s = answer, delay_s
        self.heads: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/base"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data and (piece := conn.recv(65536)):
                    data += piece
                self.heads.append(data.partition(b"\r\n\r\n")[0])
                time.sleep(self.delay_s)
                try:
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def one_shot() -> Iterator[type[_OneShot]]:
    made: list[_OneShot] = []

    def make(answer: bytes, delay_s: float = 0.0) -> _OneShot:
        made.append(_OneShot(answer, delay_s))
        return made[-1]

    yield make  # type: ignore[misc]
    for server in made:
        server.close()


@pytest.mark.parametrize("status", [200, 302, 404])
def test_any_answer_below_500_is_ready(one_shot: type[_OneShot], status: int) -> None:
    server = one_shot(b"HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok" % status)
    ok, detail = ReverseProxy(server.url).probe("/health")
    assert ok and detail.startswith(f"HTTP {status} in ")
    assert server.heads[0].startswith(b"GET /base/health HTTP/1.1\r\nHost: 127.0.0.1:")


def test_a_5xx_answer_is_not_ready(one_shot: type[_OneShot]) -> None:
    server = one_shot(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
    assert ReverseProxy(server.url).probe("/")[0] is False


def test_a_close_delimited_answer_is_read_until_the_close(one_shot: type[_OneShot]) -> None:
    server = one_shot(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 100_000)
    assert ReverseProxy(server.url).probe("/")[0] is True


def test_a_silent_upstream_is_not_ready_within_the_timeout(one_shot: type[_OneShot]) -> None:
    server = one_shot(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", delay_s=3)
    started = time.monotonic()
    assert ReverseProxy(server.url).probe("/", timeout_s=0.5) == (False, "TimeoutError")
    assert time.monotonic() - started < 2


def test_a_down_upstream_or_a_garbled_answer_is_not_ready(one_shot: type[_OneShot]) -> None:
    assert ReverseProxy(f"http://127.0.0.1:{closed_port()}").probe("/") == (False, "ConnectionRefusedError")
    garbled = one_shot(b"ICY 200 OK\r\n\r\n")
    assert ReverseProxy(garbled.url).probe("/") == (False, "UpstreamProtocolError")


def test_the_probe_leaves_the_proxy_pool_alone(one_shot: type[_OneShot]) -> None:
    server = one_shot(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    proxy = ReverseProxy(server.url)
    assert proxy.probe("/")[0]
    assert proxy._pool._idle == []
