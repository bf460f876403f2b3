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
