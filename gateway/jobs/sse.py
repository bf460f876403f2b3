"""A job's output as Server-Sent Events, resumable by offset.

Each ``output`` event's id is the offset just past its text, so a client reconnecting
with ``Last-Event-ID`` (browsers do it themselves) gets exactly what follows.  A response
lasts at most ``jobs.stream_max_seconds``, the sending of stored output included: it then
ends, and the ``retry:`` line tells the client to reconnect within a second.  The stream
also ends, with an ``end`` event, once the job has ended and all its output is sent.

The deadline holds against a slow reader too.  Events carry at most
:data:`EVENT_CHARS` characters, the deadline is checked before each, and a stream waits
for the client's socket to take more only until the deadline (:class:`SocketWriteGuard`):
a reader that takes hours over 8 MiB of backlog gets it over many short responses, each
holding a thread for at most ``stream_max_seconds``.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from gateway.jobs.store import JobStore, StoreError

POLL_S = 0.25
HEARTBEAT_S = 10.0
RETRY_MS = 1000
#: Characters of output per event: small enough that sending one to a slow reader stays
#: within the deadline's grace, large enough that a backlog costs few events.
EVENT_CHARS = 16 * 1024
#: One read of the store: at most this many rows and characters held at once.
READ_CHUNKS = 64
READ_CHARS = 1024 * 1024
#: How long past the deadline a send already under way may take before the socket gives up.
SEND_GRACE_S = 2.0


def event(name: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    """One SSE event; the data is one JSON line (lossless for any text, carriage returns included)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data)}\n\n".encode()


class SocketWriteGuard:
    """Bounds how long the server may block writing to a slow client's socket.

    ``writable(deadline)`` waits until the socket takes more bytes or the deadline passes;
    the socket's own timeout (deadline plus :data:`SEND_GRACE_S`) ends a write that blocks
    anyway.  Without a socket (tests through werkzeug's client) it always says yes.
    """

    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock

    def writable(self, deadline: float) -> bool:
        if self.sock is None:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            self.sock.settimeout(remaining + SEND_GRACE_S)
            poller = select.poll()
            poller.register(self.sock, select.POLLOUT)
            return bool(poller.poll(remaining * 1000))
        except (OSError, ValueError):
            return False

    def client_gone(self) -> bool:
        """Whether the client has closed its end: a watcher that went away frees its slot
        within a poll, not at the deadline, even while the job prints nothing."""
        if self.sock is None:
            return False
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            events = poller.poll(0)
            if not events:
                return False
            if events[0][1] & (select.POLLHUP | select.POLLERR):
                return True
            # Readable: the end of the stream (b""), or bytes of a pipelined request.
            peeked: bytes = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            return peeked == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True

    def release(self) -> None:
        """Back to a blocking socket, as gunicorn expects for the connection's next request."""
        if self.sock is not None:
            try:
                self.sock.settimeout(None)
            except OSError:
                pass


def stream(
    store: JobStore,
    job_id: str,
    offset: int,
    *,
    max_s: float,
    stopping: Callable[[], bool] = lambda: False,
    guard: SocketWriteGuard | None = None,
) -> Iterator[bytes]:
    """Events from ``offset`` until the job ends, ``max_s`` passes or the worker stops.

    If the store fails meanwhile, the response just ends: the client reconnects (``retry:``)
    and resumes from its last event once the store is back.
    """
    guard = guard or SocketWriteGuard(None)
    deadline = time.monotonic() + max_s
    yield f"retry: {RETRY_MS}\n: job {job_id} from offset {offset}\n\n".encode()
    try:
        last_sent = time.monotonic()
        while True:
            chunks = store.read_output(job_id, offset, limit=READ_CHUNKS, max_chars=READ_CHARS)
            for chunk in chunks:
                text, start = chunk.text, chunk.offset
                for i in range(0, len(text), EVENT_CHARS):
                    if time.monotonic() >= deadline or not guard.writable(deadline):
                        return  # the client reconnects (retry:) and resumes from its last event
                    piece = text[i : i + EVENT_CHARS]
                    end = start + i + len(piece)
                    yield event("output", {"stream": chunk.stream, "text": piece, "offset": start + i}, end)
                    offset = end
            if chunks:
                last_sent = time.monotonic()
                continue
            row = store.get(job_id)
            if row is None:
                yield event("end", {"job_id": job_id, "state": "expired"})
                return
            if not row.active:
                # The owner stores all output before the final state: one more read drains it.
                if store.read_output(job_id, offset, limit=1):
                    continue
                data = {
                    "job_id": job_id,
                    "state": row.state,
                    "exit_code": row.exit_code,
                    "reason": row.reason,
                    "output_truncated": bool(row.output_truncated),
                }
                yield event("end", data, offset)
                return
            if guard.client_gone():
                return
            now = time.monotonic()
            if now >= deadline or stopping():
                yield b": reconnect to continue\n\n"
                return
            if now - last_sent >= HEARTBEAT_S:
                yield b": keep-alive\n\n"
                last_sent = now
            time.sleep(POLL_S)
    except StoreError:
        return
