"""The gunicorn worker: ``gthread``, reading request heads in its event loop, and with a
thread that stays briefly on a busy keep-alive connection.

**Request heads are read by the poller, not by threads.**  Stock ``gthread`` hands a
connection to a thread as soon as its first byte arrives, and the thread then blocks
reading the head with no deadline: a few dozen clients sending one byte every few
seconds (slowloris) held every thread, and ``/healthz`` stopped answering.  Here the
worker's main loop reads each head non-blockingly into a buffer; only a complete head
(up to its blank line) goes to a thread, with the bytes pushed back into gunicorn's
parser.  A head that is not complete ``head_timeout_s`` after the connection was
accepted, or after the first byte of a next request on a kept-alive connection, is
answered ``408`` and closed (setting ``server.head_timeout``, 10 s by
default; ``0`` is stock ``gthread``).  TLS served by gunicorn itself and HTTP/2
prior-knowledge peers keep the stock path (their first bytes are a handshake or a
preface, read in a thread).  Request *bodies* are still read by the thread serving the
request.

**Keep-alive linger.**  In stock ``gthread`` every request on a kept-alive connection
travels from the poller to the thread pool and back: two thread wake-ups, two epoll
registrations and a pipe write, each taken with the GIL.  Here the thread that has just
answered waits briefly on the same connection instead, and serves the next request if
its whole head is already there, which saves those hand-offs (figures in docs/proxy.md,
"The worker, measured apart from that noise").  The wait never comes at another
connection's expense:

* a thread lingers only while no other connection is waiting for a thread, and checks
  again before each further request, so a busy connection cannot keep its thread while
  others queue;
* it lingers at most ``linger_s`` (setting ``server.keepalive_linger_ms``, 2 ms by default);
* ``linger_s = 0`` turns it off.

**Retired by a reload, it lets its jobs end.**  After the requests in flight are done, a
worker that a reload (``SIGHUP``) replaced calls its app's ``drain`` with a heartbeat, so
jobs running in it go on to their end while new workers serve; a stopping server does
not wait (see gateway/http/retirement.py).

It relies on gthread internals of gunicorn 27 (``accept``, ``on_client_socket_readable``,
``finish_request``, ``murder_pending`` called from the main loop, ``handle`` returning
``True`` for a kept connection, ``enqueue_req``, ``TConn``, the parser's unreader);
pyproject.toml pins the major version and tests/unit/test_worker.py checks each of them
against the installed gunicorn, failing loudly when one changes.
"""

from __future__ import annotations

import errno
import os
import select
import selectors
import signal
import socket
import threading
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

from gateway.http.retirement import GENERATIONS, RETIRING

_READ_SIZE = 65536
_TIMEOUT_REPLY = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TOO_LARGE_REPLY = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)


def _readable_within(sock: Any, timeout_s: float) -> bool:
    """Whether ``sock`` has bytes to read (TLS: already decrypted ones count) within ``timeout_s``."""
    pending = getattr(sock, "pending", None)  # ssl.SSLSocket keeps decrypted bytes the fd no longer shows
    if pending is not None and pending() > 0:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout_s * 1000))


def head_end(data: bytes | bytearray, start: int = 0) -> int:
    """The index just past the blank line ending a request head in ``data``, or -1.

    ``start``: where to begin looking (the caller has already looked before it).
    """
    for terminator in (b"\r\n\r\n", b"\n\n"):
        found = data.find(terminator, max(start - len(terminator) + 1, 0))
        if found >= 0:
            return found + len(terminator)
    return -1


class _HeadState:
    """A connection's request head being read by the poller."""

    __slots__ = ("buffer", "deadline")

    def __init__(self, data: bytes, deadline: float) -> None:
        self.buffer = bytearray(data)
        self.deadline = deadline


class KeepAliveThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's ``gthread`` worker whose poller reads request heads (with a deadline) and
    whose threads briefly stay on a kept-alive connection.

    Use: ``worker_class = "gateway.http.worker.KeepAliveThreadWorker"`` (gunicorn.conf.py sets
    :attr:`linger_s` and :attr:`head_timeout_s` per worker in its ``post_worker_init`` hook).
    """

    linger_s: float = 0.002
    head_timeout_s: float = 10.0

    def init_process(self) -> None:
        self.generation = GENERATIONS.current
        super().init_process()

    def init_signals(self) -> None:
        super().init_signals()
        # A reload is the master's business.  A container's init (dumb-init, tini -g) forwards
        # SIGHUP to the whole process group, and its default action would kill the worker
        # with its requests and jobs.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def handle_exit(self, sig: int, frame: Any) -> None:
        RETIRING.set()
        super().handle_exit(sig, frame)

    def run(self) -> None:
        """Serve; then, when a reload retired this worker, let its jobs end (see retirement.py)."""
        super().run()
        drain = getattr(self.wsgi, "drain", None)
        if drain is None or GENERATIONS.current == self.generation or GENERATIONS.stopping:
            return
        drain(self._keep_draining)

    def _keep_draining(self) -> bool:
        """The retired worker's heartbeat; False once the server stops or the master is gone."""
        self.notify()
        return not GENERATIONS.stopping and self.ppid == os.getppid()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting = 0  # connections handed to the pool and not yet picked up by a thread
        self._waiting_lock = threading.Lock()
        self._heads: deque[tuple[float, Any]] = deque()  # (deadline, conn), in deadline order
        self._max_head = (
            self.cfg.limit_request_line
            + self.cfg.limit_request_fields * (self.cfg.limit_request_field_size + 2)
            + 4
        )

    # --- request heads, read in the main loop ---

    def _reads_heads(self, conn: Any) -> bool:
        return (
            self.head_timeout_s > 0
            and not self.cfg.is_ssl
            and not conn.is_http2
            and not negotiation.prior_knowledge_allowed(self.cfg, conn.client)
        )

    def accept(self, listener: Any) -> None:
        """Accept a connection; its head is read by :meth:`_on_head_readable`, not a thread."""
        if self.head_timeout_s <= 0 or self.cfg.is_ssl:
            return super().accept(listener)  # type: ignore[no-any-return]
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return None
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())
        if self._reads_heads(conn):
            self._await_head(conn, b"")
        else:
            client_sock.setblocking(True)
            self.enqueue_req(conn)
        return None

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection's next request has begun: read its head here too."""
        if not self._reads_heads(conn):
            return super().on_client_socket_readable(conn, client)  # type: ignore[no-any-return]
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_head(conn, b"", readable=True)
        return None

    def finish_request(self, conn: Any, fs: Any) -> None:
        """As gthread's, except that bytes a body drain read ahead wait here for a whole head."""
        keep = not fs.cancelled() and fs.exception() is None and fs.result() is True
        if keep and self._reads_heads(conn) and conn.parser is not None:
            ahead = conn.parser.unreader.take_buffered()
            if ahead:
                conn.sock.setblocking(False)
                self._await_head(conn, ahead, readable=True)
                return None
        return super().finish_request(conn, fs)  # type: ignore[no-any-return]

    def _await_head(self, conn: Any, data: bytes, *, readable: bool = False) -> None:
        """Read ``conn``'s head in the event loop; ``readable``: bytes are waiting, read them now
        (a whole head then goes to a thread without another turn of the loop)."""
        if head_end(data) >= 0:
            self._hand_over(conn, data)
            return
        state = conn.gateway_head = _HeadState(data, time.monotonic() + self.head_timeout_s)
        conn.sock.setblocking(False)
        if readable and self._settle(conn, state, self._read_head(conn, state), registered=False):
            return
        self._heads.append((state.deadline, conn))
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))

    def _on_head_readable(self, conn: Any, client: Any) -> None:
        state: _HeadState | None = getattr(conn, "gateway_head", None)
        if state is not None:
            self._settle(conn, state, self._read_head(conn, state), registered=True)

    @staticmethod
    def _read_head(conn: Any, state: _HeadState) -> str:
        """One non-blocking read: ``wait`` for more, or ``complete``, ``closed``, ``too_large``."""
        try:
            data = conn.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return "wait"
        except OSError:
            data = b""
        if not data:  # the client went away
            return "closed"
        seen = len(state.buffer)
        state.buffer += data
        if head_end(state.buffer, seen) >= 0:
            return "complete"
        return "wait"

    def _settle(self, conn: Any, state: _HeadState, outcome: str, *, registered: bool) -> bool:
        """Act on a read's outcome; whether the connection has left head reading."""
        if outcome == "wait" and len(state.buffer) <= self._max_head:
            return False
        if registered:
            self.poller.unregister(conn.sock)
        conn.gateway_head = None
        if outcome == "complete":
            self._hand_over(conn, bytes(state.buffer))
        else:
            self._close(conn, _TOO_LARGE_REPLY if outcome == "wait" else b"")
        return True

    def _hand_over(self, conn: Any, head: bytes) -> None:
        """A complete head: into gunicorn's parser, and the connection to a thread."""
        if conn.parser is None:
            conn.init()  # plain HTTP/1.x only (see _reads_heads): creates the parser, no I/O
        conn.parser.unreader.unread(head)
        conn.data_ready = True
        conn.sock.setblocking(True)
        self.enqueue_req(conn)

    def _close(self, conn: Any, reply: bytes = b"") -> None:
        """Close a connection whose head is not coming (no longer registered with the poller)."""
        if reply:
            try:
                conn.sock.send(reply)  # non-blocking, best effort
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """gthread's sweep (called from the main loop about once a second), plus late heads."""
        super().murder_pending()
        now = time.monotonic()
        while self._heads and self._heads[0][0] <= now:
            deadline, conn = self._heads.popleft()
            state = getattr(conn, "gateway_head", None)
            if state is not None and state.deadline == deadline:
                conn.gateway_head = None
                try:
                    self.poller.unregister(conn.sock)
                except (KeyError, ValueError, OSError):
                    pass
                self._close(conn, _TIMEOUT_REPLY if state.buffer else b"")

    # --- keep-alive linger, in the threads ---

    def enqueue_req(self, conn: Any) -> None:
        with self._waiting_lock:
            self._waiting += 1
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        """Serve requests on ``conn`` while its next one arrives within ``linger_s`` and no
        other connection waits; then return as gthread does (the poller takes it back)."""
        with self._waiting_lock:
            self._waiting -= 1
        while True:
            keep = super().handle(conn)
            if keep is not True or not self.alive or conn.is_http2 or self.linger_s <= 0 or self._waiting:
                return keep
            # A request already read ahead is served at once, like gthread's own re-queue.
            ahead = conn.parser.unreader.buf.getvalue()
            if not ahead and not _readable_within(conn.sock, self.linger_s):
                return keep
            if self._reads_heads(conn) and not self._whole_head_waiting(conn, ahead):
                return keep  # the poller reads the rest (finish_request, on_client_socket_readable)

    @staticmethod
    def _whole_head_waiting(conn: Any, ahead: bytes) -> bool:
        """Whether the next request's head is complete in what is read ahead and on the socket."""
        if head_end(ahead) >= 0:
            return True
        try:
            peeked = conn.sock.recv(_READ_SIZE, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:
            return False
        return head_end(ahead + peeked) >= 0
