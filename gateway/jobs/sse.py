"""A job's output as Server-Sent Events, resumable by offset.

Each ``output`` event's id is the offset just past its text, so a client reconnecting
with ``Last-Event-ID`` (browsers do it themselves) gets exactly what follows.  A response
lasts at most ``jobs.stream_max_seconds``: it then ends, and the ``retry:`` line tells the
client to reconnect within a second.  So a watcher never holds a gunicorn thread for
longer than that.  The stream also ends, with an ``end`` event, once the job has ended and
all its output is sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from gateway.jobs.store import JobStore

POLL_S = 0.25
HEARTBEAT_S = 10.0
RETRY_MS = 1000


def event(name: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    """One SSE event; the data is one JSON line (lossless for any text, carriage returns included)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def stream(
    store: JobStore,
    job_id: str,
    offset: int,
    *,
    max_s: float,
    stopping: Callable[[], bool] = lambda: False,
) -> Iterator[bytes]:
    """Events from ``offset`` until the job ends, ``max_s`` passes or the worker stops."""
    yield f"retry: {RETRY_MS}\n: job {job_id} from offset {offset}\n\n".encode()
    deadline = time.monotonic() + max_s
    last_sent = time.monotonic()
    while True:
        chunks = store.read_output(job_id, offset)
        for chunk in chunks:
            yield event(
                "output", {"stream": chunk.stream, "text": chunk.text, "offset": chunk.offset}, chunk.end
            )
            offset = chunk.end
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
            data = {"job_id": job_id, "state": row.state, "exit_code": row.exit_code, "reason": row.reason,
                    "output_truncated": bool(row.output_truncated)}  # fmt: skip
            yield event("end", data, offset)
            return
        now = time.monotonic()
        if now >= deadline or stopping():
            yield b": reconnect to continue\n\n"
            return
        if now - last_sent >= HEARTBEAT_S:
            yield b": keep-alive\n\n"
            last_sent = now
        time.sleep(POLL_S)
