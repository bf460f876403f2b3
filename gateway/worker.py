"""The gunicorn worker: ``gthread``, with a thread that stays on a busy keep-alive connection.

In stock ``gthread`` every request on a kept-alive connection travels from the worker's
poller to the thread pool and back: two thread wake-ups, two epoll registrations and a
pipe write, each taken with the GIL.  Clients that send their next request at once (API
clients, a load balancer's pooled connections, a browser fetching assets) pay that on
every request.  Here the thread that has just answered waits briefly on the same
connection instead; measured with wrk against a fast upstream, the gateway's CPU per
proxied request fell by a fifth and its throughput rose by a quarter (docs/proxy.md).

The wait never comes at another connection's expense:

* a thread lingers only while no other connection is waiting for a thread, and checks
  again before each further request, so a busy connection cannot keep its thread while
  others queue;
* it lingers at most ``linger_s`` (gunicorn.conf.py: ``GATEWAY_KEEPALIVE_LINGER_MS``,
  2 ms by default), so a connection that becomes ready meanwhile waits at most that long;
* ``linger_s = 0`` is stock ``gthread``.

It relies on gthread internals of gunicorn 27 (``handle`` returning ``True`` for a kept
connection, ``enqueue_req``, the parser's read-ahead buffer); pyproject.toml pins the
major version and tests/unit/test_worker.py runs against the installed gunicorn.
"""

from __future__ import annotations

import select
import threading
from typing import Any

from gunicorn.workers.gthread import ThreadWorker


def _readable_within(sock: Any, timeout_s: float) -> bool:
    """Whether ``sock`` has bytes to read (TLS: already decrypted ones count) within ``timeout_s``."""
    pending = getattr(sock, "pending", None)  # ssl.SSLSocket keeps decrypted bytes the fd no longer shows
    if pending is not None and pending() > 0:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout_s * 1000))


class KeepAliveThreadWorker(ThreadWorker):
    """gunicorn's ``gthread`` worker whose threads briefly stay on a kept-alive connection.

    Use: ``worker_class = "gateway.worker.KeepAliveThreadWorker"`` (gunicorn.conf.py sets
    :attr:`linger_s` per worker in its ``post_worker_init`` hook).
    """

    linger_s: float = 0.002

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting = 0  # connections handed to the pool and not yet picked up by a thread
        self._waiting_lock = threading.Lock()

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
            if not conn.parser.unreader.buf.getvalue() and not _readable_within(conn.sock, self.linger_s):
                return keep
