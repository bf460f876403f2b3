"""Slow clients (slowloris) cannot take the front door down (issue 13, finding 2).

Stock gthread gave a thread to a connection at its first byte and parsed the head with no
deadline: a few dozen clients trickling bytes held every thread.  The worker now reads
heads in its event loop and closes a connection whose head is late.
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from tests.reliability.conftest import HEAD_TIMEOUT_S
from tests.support.http import get
from tests.support.servers import GatewayServer

SLOW_CONNECTIONS = 240


def _address(server: GatewayServer) -> tuple[str, int]:
    parts = urlsplit(server.url)
    assert parts.hostname == "127.0.0.1"
    return parts.hostname, int(parts.port or 80)


def _latencies(server: GatewayServer, count: int) -> list[float]:
    """Seconds per ``/healthz`` (a new connection each, as a load balancer's probe)."""
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        assert get(f"{server.url}/healthz", timeout=10).status == 200
        out.append(time.perf_counter() - t0)
    return out


@contextmanager
def _slow_clients(server: GatewayServer, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that have sent the start of a request head and stop there."""
    socks = []
    try:
        for i in range(count):
            sock = socket.create_connection(_address(server), timeout=5)
            sock.sendall(f"GET /healthz?slow={i} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode())
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_slow_heads_hold_no_thread(gateway: GatewayServer) -> None:
    """240 trickling connections (more than all workers' threads) leave /healthz as fast as idle."""
    _latencies(gateway, 10)  # warm up both workers
    idle = statistics.median(_latencies(gateway, 40))
    with _slow_clients(gateway, SLOW_CONNECTIONS) as socks:
        loaded: list[float] = []
        for _ in range(2):  # keep trickling: one byte per connection, then probe
            for sock in socks:
                sock.sendall(b"a")
            loaded += _latencies(gateway, 20)
    assert statistics.median(loaded) < 2 * idle + 0.002, (idle, sorted(loaded))


def test_a_late_head_is_answered_408_and_closed(gateway: GatewayServer) -> None:
    """A head still incomplete after GATEWAY_HEAD_TIMEOUT: 408 and the connection closed."""
    with (
        socket.create_connection(_address(gateway), timeout=HEAD_TIMEOUT_S + 10) as partial,
        socket.create_connection(_address(gateway), timeout=HEAD_TIMEOUT_S + 10) as silent,
    ):
        t0 = time.monotonic()
        partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        reply = b""
        while chunk := partial.recv(4096):
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 408 ")
        assert silent.recv(4096) == b""  # nothing sent at all: closed without a word
        assert time.monotonic() - t0 < HEAD_TIMEOUT_S + 3


def test_keep_alive_and_pipelined_requests_still_work(gateway: GatewayServer) -> None:
    """Heads split across reads, two requests in one write, and a kept-alive connection."""
    with socket.create_connection(_address(gateway), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        time.sleep(0.2)
        sock.sendall(b"st: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.count(b"HTTP/1.1 200 ") == 3


def test_a_head_larger_than_gunicorn_allows_is_431(gateway: GatewayServer) -> None:
    """A head that never ends is not buffered without bound: past gunicorn's header limits, 431."""
    with socket.create_connection(_address(gateway), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        reply = b""
        try:
            for _ in range(128):  # 1 MiB of headers, more than 100 fields of 8190 bytes
                sock.sendall(b"X-Big: " + b"a" * 8183 + b"\r\n")
        except OSError:
            pass  # closed on us, as it should
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except OSError:
            pass
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
