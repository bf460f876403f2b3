"""How many job output streams may be open at once, in all and per principal.

An SSE response holds a gunicorn thread for as long as it lasts (up to
``jobs.stream_max_seconds``), and a browser's ``EventSource`` reconnects by itself.
Without a bound, a few dozen streams from one principal held every thread of a worker:
``/healthz``, proxied requests and API calls all timed out.  So each worker process
admits at most ``jobs.max_streams`` streams, and one principal at most
``jobs.max_streams_per_principal`` of them; gunicorn is given that many threads on top
of the ones the CLI may hold and the ones the proxy needs (``gateway/entry/gunicorn_conf.py``).
Beyond a cap the answer is immediate: 429 (this principal's cap) or 503 (the worker's),
both with ``Retry-After``.  ``EventSource`` does not reconnect after an error status, so a
refused browser stops instead of hammering.

The caps are per worker process because the threads they protect are.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from gateway.core.errors import Busy, TooManyRequests

#: Seconds a refused client is told to wait: about the time a stream needs to end.
RETRY_AFTER_S = 5


class StreamLimits:
    """Counts open streams; :meth:`acquire` admits one or refuses at once."""

    def __init__(self, total: int, per_principal: int) -> None:
        self.total = total
        self.per_principal = per_principal
        self._lock = threading.Lock()
        self._open: Counter[tuple[str, str]] = Counter()

    def acquire(self, owner: tuple[str, str]) -> Callable[[], None]:
        """Admit a stream of ``owner`` (principal, auth method); returns its release.

        :raises TooManyRequests: ``owner`` has its share of streams open (429).
        :raises Busy: the worker has every stream slot taken (503).
        """
        with self._lock:
            if self._open[owner] >= self.per_principal:
                raise TooManyRequests(
                    f"You have {self.per_principal} job output streams open on this gateway worker "
                    f"(jobs.max_streams_per_principal); close one, or poll with format=json",
                    retry_after_s=RETRY_AFTER_S,
                )
            if sum(self._open.values()) >= self.total:
                raise Busy(
                    f"Every job output stream slot of this gateway worker is taken (jobs.max_streams = "
                    f"{self.total}); retry later, or poll with format=json",
                    retry_after_s=RETRY_AFTER_S,
                )
            self._open[owner] += 1
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                self._open[owner] -= 1
                if self._open[owner] <= 0:
                    del self._open[owner]

        return release
