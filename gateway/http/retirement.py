"""Why a gunicorn worker is asked to stop: a reload, or the server stopping.

On ``SIGHUP`` gunicorn starts new workers and sends ``SIGTERM`` to the old ones (again on
every turn of its loop while they live); on a stop it sends ``SIGTERM`` to all of them and
``SIGKILL`` after ``server.graceful_timeout``.  The signal is the same, the right answer is
not: a worker retired by a reload lets its jobs run to their end (they belong to the
instance; new workers take the new requests), while a stopping server must kill them and
record why before the ``SIGKILL``.

So the master and its workers share a small anonymous mapping, made in the master before
the first fork: a *generation*, advanced by each reload, and a *stopping* flag.  A worker
notes its generation when it starts; asked to stop, it drains its jobs only when a newer
generation exists and the server is not stopping.

:data:`RETIRING` is this process's own flag, set on the first ``SIGTERM``: job output streams
end on it (clients resume from their last event, on a new worker) so that the old worker's
requests finish within the graceful timeout.
"""

from __future__ import annotations

import mmap
import struct
import threading
from typing import Any

_GENERATION = struct.Struct("=Q")
_STOPPING_AT = _GENERATION.size


class Generations:
    """The reload generation and the stopping flag, shared by the master and its workers."""

    def __init__(self) -> None:
        # MAP_SHARED | MAP_ANONYMOUS: forked workers see the master's writes.
        self._shared = mmap.mmap(-1, _GENERATION.size + 1)

    @property
    def current(self) -> int:
        return int(_GENERATION.unpack_from(self._shared, 0)[0])

    def advance(self) -> int:
        """A reload began (master only): workers of older generations are being retired."""
        value = self.current + 1
        _GENERATION.pack_into(self._shared, 0, value)
        return value

    @property
    def stopping(self) -> bool:
        return self._shared[_STOPPING_AT] == 1

    def stop(self) -> None:
        """The server is stopping (master only): no worker waits for its jobs."""
        self._shared[_STOPPING_AT] = 1


#: Made when the master imports this module (gunicorn_conf), so every worker shares it.
GENERATIONS = Generations()
#: This process has been asked to stop serving (first ``SIGTERM``).
RETIRING = threading.Event()
#: gunicorn's graceful_timeout while a reload runs (restored in new workers and after it).
_graceful_during_reload: Any = None


def adapt_arbiter(arbiter: Any) -> None:
    """Wrap gunicorn 27's ``Arbiter.stop`` and ``Arbiter.reload`` for workers that drain jobs
    (gunicorn has no hook at either point; ``when_ready`` calls this in the master).

    * ``stop`` sets the stopping flag before gunicorn signals the workers, so a retired worker
      stops waiting for its jobs and kills them before gunicorn's ``SIGKILL``.
    * ``reload`` starts the new workers and signals the old ones, then waits up to
      ``graceful_timeout`` for the old ones to exit, handling no signal and replacing no dead
      worker meanwhile.  A worker draining jobs outlives that wait, so a ``SIGTERM`` right after
      a reload would be handled only ``graceful_timeout`` later.  The wait is skipped:
      :func:`during_reload` (the ``on_reload`` hook, when the reloaded settings are in place)
      sets ``graceful_timeout`` to 0, new workers get the real value back in :func:`after_fork`,
      the master when ``reload`` returns.  Old workers are reaped by the main loop as usual.
    """
    stop, reload = arbiter.stop, arbiter.reload

    def stop_and_say_so(graceful_shutdown: bool = True) -> None:
        GENERATIONS.stop()
        stop(graceful_shutdown)

    def reload_without_waiting() -> None:
        global _graceful_during_reload
        try:
            reload()
        finally:
            if _graceful_during_reload is not None:
                arbiter.cfg.settings["graceful_timeout"].value = _graceful_during_reload
                _graceful_during_reload = None

    arbiter.stop = stop_and_say_so
    arbiter.reload = reload_without_waiting


def during_reload(arbiter: Any) -> None:
    """In the master's ``on_reload`` hook: no wait for the old workers (see :func:`adapt_arbiter`)."""
    global _graceful_during_reload
    setting = arbiter.cfg.settings["graceful_timeout"]
    _graceful_during_reload = setting.value
    setting.value = 0


def after_fork(arbiter: Any) -> None:
    """In a worker forked during a reload: the real ``graceful_timeout``."""
    if _graceful_during_reload is not None:
        arbiter.cfg.settings["graceful_timeout"].value = _graceful_during_reload
