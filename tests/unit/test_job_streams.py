"""Job output streams: admission caps, resuming anywhere, and the deadline inside a backlog."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.core.errors import Busy, TooManyRequests
from gateway.jobs import sse
from gateway.jobs.store import Chunk, JobRow, JobStore
from gateway.jobs.streams import StreamLimits

ALICE, BOB = ("alice", "token"), ("bob", "token")


def test_caps_per_principal_then_per_worker_and_release_once() -> None:
    limits = StreamLimits(total=3, per_principal=2)
    first, second = limits.acquire(ALICE), limits.acquire(ALICE)
    with pytest.raises(TooManyRequests) as mine:
        limits.acquire(ALICE)
    assert mine.value.code == 429 and mine.value.extra_headers["Retry-After"] == "5"
    third = limits.acquire(BOB)
    with pytest.raises(Busy) as everyone:
        limits.acquire(("carol", "jwt"))
    assert everyone.value.code == 503 and everyone.value.extra_headers["Retry-After"] == "5"
    first()
    first()  # a second release changes nothing: still one free slot, not two
    limits.acquire(ALICE)
    with pytest.raises(Busy):
        limits.acquire(("carol", "jwt"))
    for release in (second, third):
        release()
    limits.acquire(("carol", "jwt"))
    limits.acquire(("dave", "jwt"))  # both released slots are free again
    with pytest.raises(Busy):
        limits.acquire(("erin", "jwt"))


def store_with_output(tmp_path: Path, chunks: list[Chunk], state: str = "succeeded") -> JobStore:
    store = JobStore(sqlite_path=tmp_path / "jobs.sqlite3")
    store.create(
        JobRow(
            id="j", principal="alice", auth_method="token", api="test", dag_id=None, state=state,
            reason=None, instance="i", owner_pid=1, owner_start="1", request_id="r", airflow_cmd=None,
            created_at=0.0,
        )
    )  # fmt: skip
    total = sum(len(c.text) for c in chunks)
    store.append_output("j", chunks, total=total, truncated=False)
    return store


def test_output_resumes_inside_a_stored_chunk(tmp_path: Path) -> None:
    store = store_with_output(tmp_path, [Chunk(0, "stdout", "abcdef"), Chunk(6, "stderr", "ghij")])
    assert store.read_output("j", 3) == [Chunk(3, "stdout", "def"), Chunk(6, "stderr", "ghij")]
    assert store.read_output("j", 6, limit=1) == [Chunk(6, "stderr", "ghij")]
    assert store.read_output("j", 10) == []
    assert store.read_output("j", 2, max_chars=5) == [Chunk(2, "stdout", "cdef"), Chunk(6, "stderr", "g")]


def test_events_are_small_and_their_ids_resume_exactly(tmp_path: Path) -> None:
    text = "".join(chr(0x41 + i % 26) for i in range(3 * sse.EVENT_CHARS + 5))
    store = store_with_output(tmp_path, [Chunk(0, "stdout", text)])
    events = list(sse.stream(store, "j", 0, max_s=30))
    outputs = [e for e in events if b"event: output" in e]
    assert len(outputs) == 4
    resumed = list(sse.stream(store, "j", sse.EVENT_CHARS, max_s=30))
    assert b"id: %d" % (2 * sse.EVENT_CHARS) in resumed[1]


def test_the_deadline_holds_inside_a_backlog(tmp_path: Path) -> None:
    """Before: once sending stored output, a stream went on until all of it was sent."""
    store = store_with_output(tmp_path, [Chunk(i * 1000, "stdout", "x" * 1000) for i in range(50)])
    events = sse.stream(store, "j", 0, max_s=0.5)
    sent = 0
    for _ in events:
        sent += 1
        time.sleep(0.1)  # a slow reader
    assert 3 <= sent <= 10  # the preamble and a few events, not all 50 chunks
