"""The job store (SQLite), the output buffer and the SSE stream, each on its own."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.cli.apis import CATALOGUE
from gateway.execution.proctree import process_start
from gateway.identity.principal import Principal
from gateway.jobs import sse
from gateway.jobs.output_recorder import OutputBuffer
from gateway.jobs.store import Chunk, JobRow, JobStore
from gateway.policy.engine import PolicyEngine
from gateway.policy.jobs import may
from gateway.policy.loader import load_policies


def row(job_id: str, **changes: object) -> JobRow:
    base = JobRow(
        id=job_id, principal="alice", auth_method="token", api="test", dag_id="d", state="running",
        reason=None, instance="host:1", owner_pid=1, owner_start="1", request_id="r", airflow_cmd="airflow",
        created_at=1.0,
    )  # fmt: skip
    for name, value in changes.items():
        setattr(base, name, value)
    return base


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(sqlite_path=tmp_path / "jobs.sqlite3")


def test_records_transitions_and_listing(store: JobStore) -> None:
    store.create(row("a"))
    store.create(row("b", principal="bob", created_at=2.0, state="queued"))
    assert store.get("a") == row("a") and store.get("nope") is None
    assert [r.id for r in store.list_jobs()] == ["b", "a"]
    assert [r.id for r in store.list_jobs(owner=("alice", "token"))] == ["a"]
    assert [r.id for r in store.list_jobs(state="queued")] == ["b"]
    assert store.request_cancel("a") and store.cancel_flags(["a", "b"]) == ["a"]
    assert store.transition("a", ("running",), state="cancelled", finished_at=5.0)
    assert not store.transition("a", ("running",), state="failed")  # ended: no second end
    assert not store.request_cancel("a")
    assert [r.id for r in store.active_of("host:1")] == ["b"]
    assert store.expire(finished_before=6.0) == 1 and store.get("a") is None and store.get("b")


def test_output_is_read_back_from_any_offset(store: JobStore) -> None:
    store.create(row("a"))
    chunks = [Chunk(0, "stdout", "one\n"), Chunk(4, "stderr", "two\n"), Chunk(8, "stdout", "three\n")]
    store.append_output("a", chunks, total=14, truncated=False)
    assert store.read_output("a") == chunks
    assert store.read_output("a", 4) == chunks[1:] and store.read_output("a", 14) == []
    assert store.get("a").output_bytes == 14  # type: ignore[union-attr]


def test_two_connections_write_at_once(tmp_path: Path) -> None:
    """WAL and the busy timeout: concurrent writers (as two gunicorn workers) all succeed."""
    path = tmp_path / "jobs.sqlite3"
    JobStore(sqlite_path=path)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            own = JobStore(sqlite_path=path)
            for i in range(20):
                own.create(row(f"{n}-{i}"))
                own.append_output(f"{n}-{i}", [Chunk(0, "stdout", "x" * 100)], total=100, truncated=False)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(JobStore(sqlite_path=path).list_jobs(limit=500)) == 80


def test_buffer_numbers_chunks_keeps_utf8_whole_and_caps() -> None:
    written: list[Chunk] = []
    buffer = OutputBuffer(cap=12)
    euro = "€".encode()
    buffer.add("stdout", b"ab" + euro[:1])  # a character split across two reads
    buffer.add("stdout", euro[1:] + b"\n")
    buffer.add("stderr", b"err\n")
    buffer.flush(lambda chunks, total, truncated: written.extend(chunks))
    assert written == [Chunk(0, "stdout", "ab€\n"), Chunk(4, "stderr", "err\n")]
    buffer.add("stdout", b"0123456789")
    flushed: list[tuple[int, bool]] = []
    buffer.flush(
        lambda chunks, total, truncated: (written.extend(chunks), flushed.append((total, truncated)))
    )
    assert written[-1] == Chunk(8, "stdout", "0123") and flushed == [(12, True)]


def test_sse_resumes_exactly_and_ends(store: JobStore) -> None:
    store.create(row("a"))
    store.append_output(
        "a", [Chunk(0, "stdout", "l1\n"), Chunk(3, "stdout", "l2\n")], total=6, truncated=False
    )
    store.transition("a", ("running",), state="succeeded", exit_code=0, finished_at=2.0)
    events = b"".join(sse.stream(store, "a", 3, max_s=5)).decode()
    assert events.startswith("retry: 1000\n")
    blocks = [b for b in events.split("\n\n") if b.startswith("id:")]
    assert json.loads(blocks[0].split("data: ", 1)[1]) == {"stream": "stdout", "text": "l2\n", "offset": 3}
    assert blocks[0].startswith("id: 6\nevent: output") and "event: end" in blocks[1]


def test_sse_response_is_bounded_while_the_job_runs(store: JobStore) -> None:
    store.create(row("a"))
    events = b"".join(sse.stream(store, "a", 0, max_s=0.3)).decode()
    assert "event: end" not in events and events.endswith(": reconnect to continue\n\n")


def test_job_actions_need_ownership_or_a_policy(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(
        '[[rule]]\nid = "admins"\neffect = "allow"\ngroups = ["admins"]\napis = ["job_read_any"]\n'
        '[[rule]]\nid = "team"\neffect = "allow"\ngroups = ["team"]\napis = ["job_cancel_any"]\n'
        'dag_ids = ["t_*"]\n'
    )
    engine = PolicyEngine(load_policies(tmp_path, CATALOGUE))
    alice, admin = Principal("alice", "token"), Principal("root", "token", frozenset({"admins"}))
    team = Principal("tina", "jwt", frozenset({"team"}))
    owner = ("alice", "token")
    assert may(None, alice, "job_cancel_any", owner=owner, dag_id=None, address=None)
    assert not may(None, Principal("alice", "jwt"), "job_read_any", owner=owner, dag_id=None, address=None)
    assert may(engine, admin, "job_read_any", owner=owner, dag_id="x", address=None)
    assert may(engine, admin, "job_read_any", owner=None, dag_id=None, address=None)
    assert not may(engine, admin, "job_cancel_any", owner=owner, dag_id="x", address=None)
    assert may(engine, team, "job_cancel_any", owner=owner, dag_id="t_1", address=None)
    assert not may(engine, team, "job_cancel_any", owner=owner, dag_id="other", address=None)


def test_process_start_tells_a_live_process() -> None:
    assert process_start(os.getpid()) and process_start(2**22 + 12345) is None


def test_a_zombie_owner_counts_as_gone() -> None:
    """A SIGKILLed worker whose parent died stays a zombie until reaped: its jobs are lost all the same."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert process_start(child.pid) is None
    finally:
        child.wait()


def test_a_worker_opening_the_store_while_another_creates_it_waits(tmp_path: Path) -> None:
    """Two gunicorn workers open a new store at once (CI, 2026-12-01: a worker failed to boot).

    SQLite refuses ``PRAGMA journal_mode=WAL`` at once, without its busy timeout, while another
    connection writes to a database still in rollback-journal mode.
    """
    path = tmp_path / "jobs.sqlite3"
    creating = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    creating.execute("BEGIN IMMEDIATE")
    creating.execute("CREATE TABLE other_worker_schema (x)")
    threading.Timer(0.5, lambda: creating.execute("COMMIT")).start()
    store = JobStore(sqlite_path=path)  # raised "database is locked" before the fix
    assert store._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
