"""The gunicorn worker's keep-alive loop, against the installed gunicorn's gthread worker.

gthread's own ``handle`` (one request) is replaced by a stand-in that reads one byte per
"request" from a real socket pair, so the loop's decisions are tested without a server;
tests/e2e/test_proxy_gunicorn.py runs the worker for real.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from gunicorn.workers.gthread import ThreadWorker

from gateway.http import worker as worker_module
from gateway.http.worker import KeepAliveThreadWorker, _readable_within, head_end


@dataclass
class _Unreader:
    buf: io.BytesIO = field(default_factory=io.BytesIO)


@dataclass
class _Parser:
    unreader: _Unreader = field(default_factory=_Unreader)


@dataclass
class _Conn:
    sock: socket.socket
    parser: _Parser = field(default_factory=_Parser)
    is_http2: bool = False


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def _worker(linger_s: float) -> KeepAliveThreadWorker:
    """A worker without gunicorn's arbiter: only what the keep-alive loop reads."""
    w = KeepAliveThreadWorker.__new__(KeepAliveThreadWorker)
    w._waiting = 1  # as enqueue_req leaves it for the connection being handled
    w._waiting_lock = threading.Lock()
    w.alive = True
    w.linger_s = linger_s
    w.head_timeout_s = 0.0  # heads read by the poller: tests/reliability/test_slow_clients.py
    return w


def _requests(monkeypatch: pytest.MonkeyPatch, answers: list[Any]) -> list[int]:
    """gthread's handle replaced: each call consumes one byte (one request) and returns the next answer."""
    calls: list[int] = []

    def handle(self: ThreadWorker, conn: _Conn) -> Any:
        if not conn.parser.unreader.buf.getvalue():
            assert conn.sock.recv(1)
        conn.parser.unreader.buf = io.BytesIO()
        calls.append(threading.get_ident())
        return answers[len(calls) - 1]

    monkeypatch.setattr(ThreadWorker, "handle", handle)
    return calls


def _no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(sock: object, timeout_s: float) -> bool:
        raise AssertionError("the worker waited on the connection")

    monkeypatch.setattr(worker_module, "_readable_within", fail)


def test_the_next_request_on_the_connection_is_served_by_the_same_thread(
    monkeypatch: pytest.MonkeyPatch, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair
    calls = _requests(monkeypatch, [True, True, False])
    client.sendall(b"a")
    threading.Timer(0.05, client.sendall, args=(b"b",)).start()
    threading.Timer(0.10, client.sendall, args=(b"c",)).start()
    assert _worker(linger_s=10).handle(_Conn(server)) is False
    assert len(calls) == 3 and len(set(calls)) == 1


def test_an_idle_connection_goes_back_to_the_poller_after_the_linger(
    monkeypatch: pytest.MonkeyPatch, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair
    calls = _requests(monkeypatch, [True])
    client.sendall(b"a")
    assert _worker(linger_s=0.05).handle(_Conn(server)) is True
    assert len(calls) == 1


def test_no_linger_while_another_connection_waits_for_a_thread(
    monkeypatch: pytest.MonkeyPatch, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair
    calls = _requests(monkeypatch, [True])
    _no_wait(monkeypatch)
    w = _worker(linger_s=10)
    w._waiting = 2  # this connection and one more queued
    client.sendall(b"ab")  # even a request already on the wire waits its turn in the pool
    assert w.handle(_Conn(server)) is True
    assert len(calls) == 1 and w._waiting == 1


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(lambda w, c: setattr(w, "alive", False), id="worker-stopping"),
        pytest.param(lambda w, c: setattr(w, "linger_s", 0.0), id="linger-off"),
        pytest.param(lambda w, c: setattr(c, "is_http2", True), id="http2"),
    ],
)
def test_plain_gthread_behaviour_when_lingering_is_not_wanted(
    monkeypatch: pytest.MonkeyPatch, pair: tuple[socket.socket, socket.socket], setup: Any
) -> None:
    server, client = pair
    calls = _requests(monkeypatch, [True])
    _no_wait(monkeypatch)
    w, conn = _worker(linger_s=10), _Conn(server)
    setup(w, conn)
    client.sendall(b"a")
    assert w.handle(conn) is True
    assert len(calls) == 1


def test_a_request_already_read_ahead_is_served_without_waiting(
    monkeypatch: pytest.MonkeyPatch, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair
    calls = _requests(monkeypatch, [True, False])
    _no_wait(monkeypatch)
    one_request = ThreadWorker.handle  # the stand-in _requests installed

    def and_read_ahead(self: ThreadWorker, conn: _Conn) -> Any:
        answer = one_request(self, conn)
        if answer is True:  # the body drain read the start of the next request
            conn.parser.unreader.buf = io.BytesIO(b"GET / HTTP/1.1\r\n")
        return answer

    monkeypatch.setattr(ThreadWorker, "handle", and_read_ahead)
    client.sendall(b"a")
    assert _worker(linger_s=10).handle(_Conn(server)) is False
    assert len(calls) == 2


def test_enqueued_connections_are_counted_until_a_thread_takes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ThreadWorker, "enqueue_req", lambda self, conn: None)
    monkeypatch.setattr(ThreadWorker, "handle", lambda self, conn: False)
    w = _worker(linger_s=1)
    w._waiting = 0
    w.enqueue_req(object())
    w.enqueue_req(object())
    assert w._waiting == 2
    w.handle(object())
    assert w._waiting == 1


def test_decrypted_tls_bytes_count_as_readable() -> None:
    class _Tls:
        def pending(self) -> int:
            return 5

        def fileno(self) -> int:  # pragma: no cover - never polled
            raise AssertionError("polled although bytes were pending")

    assert _readable_within(_Tls(), 10) is True


def test_head_end_finds_the_blank_line_across_reads() -> None:
    assert head_end(b"GET / HTTP/1.1\r\nHost: x\r\n") == -1
    data = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"
    assert head_end(data) == len(data) - 4
    assert head_end(data, start=len(data) - 5) == len(data) - 4  # the terminator straddles the start
    assert head_end(b"GET / HTTP/1.0\n\n") == 16


def test_the_gthread_internals_the_worker_relies_on_are_there() -> None:
    """Fails loudly when a gunicorn upgrade renames or reshapes what gateway/http/worker.py overrides."""
    import inspect

    from gunicorn.http.unreader import Unreader
    from gunicorn.workers.gthread import TConn

    expected = {
        "accept": ["self", "listener"],
        "on_client_socket_readable": ["self", "conn", "client"],
        "finish_request": ["self", "conn", "fs"],
        "murder_pending": ["self"],
        "enqueue_req": ["self", "conn"],
        "handle": ["self", "conn"],
    }
    for name, params in expected.items():
        assert list(inspect.signature(getattr(ThreadWorker, name)).parameters) == params, name
    run = inspect.getsource(ThreadWorker.run)
    assert "self.murder_pending()" in run and "self.accept" in inspect.getsource(
        ThreadWorker.set_accept_enabled
    )
    assert "self.keepalived_conns.remove(conn)" in inspect.getsource(ThreadWorker.on_client_socket_readable)
    assert "data_ready" in inspect.getsource(ThreadWorker.handle)
    assert list(inspect.signature(TConn.__init__).parameters) == ["self", "cfg", "sock", "client", "server"]
    assert {"unread", "take_buffered"} <= set(vars(Unreader)) and "buf" in inspect.getsource(
        Unreader.__init__
    )


def test_the_arbiter_internals_the_reload_relies_on_are_there() -> None:
    """gateway/http/retirement.py wraps ``Arbiter.stop`` and ``Arbiter.reload`` and relies on
    their order: ``on_reload`` runs with the reloaded settings before the new workers fork, and
    the wait for the old ones reads ``graceful_timeout`` after that."""
    import inspect

    from gunicorn.arbiter import Arbiter

    reload = inspect.getsource(Arbiter.reload)
    order = [reload.index(s) for s in ("self.setup(self.app)", "self.cfg.on_reload(self)",
                                       "self.spawn_worker()", "self.cfg.graceful_timeout")]  # fmt: skip
    assert order == sorted(order)
    assert "self.reload()" in inspect.getsource(Arbiter.handle_hup)
    assert "self.stop()" in inspect.getsource(Arbiter.halt)
    assert "self.kill_workers(sig)" in inspect.getsource(Arbiter.stop)
    assert "post_fork(self, worker)" in inspect.getsource(Arbiter.spawn_worker)


def test_the_reload_wait_is_skipped_and_the_real_graceful_timeout_restored() -> None:
    from types import SimpleNamespace

    from gateway.http import retirement

    def arbiter() -> Any:
        return SimpleNamespace(cfg=SimpleNamespace(settings={"graceful_timeout": SimpleNamespace(value=30)}))

    master, seen = arbiter(), {}

    def reload() -> None:  # what gunicorn's reload does, in order
        master.cfg = arbiter().cfg  # a new Config, from the settings file
        retirement.during_reload(master)  # the on_reload hook
        child = SimpleNamespace(cfg=SimpleNamespace(settings={"graceful_timeout": SimpleNamespace(value=0)}))
        retirement.after_fork(child)  # a new worker, forked
        seen["child"] = child.cfg.settings["graceful_timeout"].value
        seen["wait"] = master.cfg.settings["graceful_timeout"].value  # the wait for the old workers

    master.reload, master.stop = reload, lambda graceful=True: None
    retirement.adapt_arbiter(master)
    master.reload()
    assert seen == {"child": 30, "wait": 0}
    assert master.cfg.settings["graceful_timeout"].value == 30  # back once reload returned
