"""The job service against store faults, late cancels, dead threads and large outputs.

A real SQLite store and real subprocesses; only the dispatch is the test's own (it stands
for :class:`gateway.calls.service.Dispatcher`, whose CLI calls go through the same job-aware
runner).  The PostgreSQL restart under running jobs is in tests/e2e/test_job_hardening.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.calls.service import CallContext
from gateway.cli.apis import CATALOGUE
from gateway.cli.interpreter import BuiltinCall
from gateway.config.loader import JobsConfig
from gateway.core.envelope import Envelope
from gateway.core.errors import TooManyRequests
from gateway.execution.job_routing import CURRENT_JOB, JobAwareRunner
from gateway.execution.subprocess_runner import Admission, AuxiliaryCalls, SubprocessRunner
from gateway.identity.principal import Principal
from gateway.jobs import store as store_module
from gateway.jobs.output_recorder import OutputBuffer
from gateway.jobs.service import LATE_CANCEL, JobService, job_view
from gateway.jobs.store import Chunk, JobRow, JobStore
from gateway.observability.audit import AuditRecord

ALICE = Principal("alice", "token")
Dispatch = Callable[[Any, CallContext], None]


def config(**over: Any) -> JobsConfig:
    values: dict[str, Any] = {
        "database_url": None, "max_running": 1, "max_queued": 10, "timeout": 60.0,
        "max_output_bytes": 1 << 20, "retention": 3600.0, "stream_max_seconds": 3.0,
    }  # fmt: skip
    values.update(over)
    return JobsConfig(**values)


def context(principal: Principal = ALICE) -> CallContext:
    envelope = Envelope(call_time=time.time(), request_id="req-1")
    return CallContext(
        envelope, AuditRecord("req-1", "GET", "/admin/rest_api/api", "127.0.0.1"), principal, None
    )


def call() -> BuiltinCall:
    return BuiltinCall(api=CATALOGUE["version"], handler="test", values={})


def runner(tmp_path: Path) -> JobAwareRunner:
    real = SubprocessRunner(
        env=dict(os.environ), cwd=tmp_path, max_output_bytes=1 << 20, admission=Admission(4)
    )
    return JobAwareRunner(real, real)


def run_argv(jobs: JobAwareRunner, argv: list[str]) -> Dispatch:
    """A dispatch that runs ``argv`` as a job's CLI call and fills the envelope as the CLI service does."""

    def dispatch(planned: Any, ctx: CallContext) -> None:
        result = jobs.run(argv, timeout_s=30)
        ctx.envelope.exit_code = result.returncode
        ctx.envelope.output = {"stdout": result.stdout, "stderr": result.stderr, "stdin": ""}
        if result.returncode != 0:
            ctx.envelope.fail(500, ctx.envelope.output)

    return dispatch


@pytest.fixture
def started() -> Iterator[list[JobService]]:
    services: list[JobService] = []
    yield services
    for service in services:
        service.stop()


def start(services: list[JobService], store: JobStore, dispatch: Dispatch, **over: Any) -> JobService:
    service = JobService(store, config(**over), dispatch=dispatch, instance="test:0", audit=lambda e, f: None)
    service.start()
    services.append(service)
    return service


def wait_for(what: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def state(store: JobStore, job_id: str) -> str:
    row = store.get(job_id)
    assert row is not None
    return row.state


# --- store faults ------------------------------------------------------------------------


def test_a_store_locked_across_a_jobs_end_records_the_end_once_it_is_back(
    tmp_path: Path, started: list[JobService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write lock held while a job ends: the job thread survives, the end is recorded when
    the lock goes, and the next job runs (before: the job stayed running and the thread died)."""
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    store = JobStore(sqlite_path=tmp_path / "jobs.sqlite3")
    release = threading.Event()

    def dispatch(planned: Any, ctx: CallContext) -> None:
        job = CURRENT_JOB.get()
        assert job is not None
        release.wait(30)
        job.on_output("stdout", b"the command's last words\n")
        ctx.envelope.exit_code = 0

    service = start(started, store, dispatch)
    first = service.submit(call(), context())
    wait_for(lambda: state(store, first.id) == "running")
    lock = sqlite3.connect(tmp_path / "jobs.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # what a backup or another writer does
    try:
        release.set()
        time.sleep(3)  # many failed tries, each a 0.2 s busy timeout
        assert state(store, first.id) == "running"  # WAL: readers still read
        assert all(worker.is_alive() for worker in service._workers)
    finally:
        lock.execute("COMMIT")
        lock.close()
    wait_for(lambda: state(store, first.id) == "succeeded", timeout=15)
    chunks = store.read_output(first.id)
    assert "".join(c.text for c in chunks) == "the command's last words\n"
    release.set()
    second = service.submit(call(), context())
    wait_for(lambda: state(store, second.id) == "succeeded", timeout=15)


# The thread's death is the point of the test: pytest would otherwise report it as an error.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_job_thread_is_replaced(tmp_path: Path, started: list[JobService]) -> None:
    """Whatever kills a job thread, the maintenance thread starts a new one and jobs keep running."""
    store = JobStore(sqlite_path=tmp_path / "jobs.sqlite3")
    service = start(started, store, lambda planned, ctx: None)
    original = service._execute
    calls = []

    def dies_once(job: Any) -> None:
        calls.append(job.row.id)
        if len(calls) == 1:
            raise SystemExit("the thread dies")  # not an Exception: _work lets it through
        original(job)

    service._execute = dies_once  # type: ignore[method-assign]
    service.submit(call(), context())
    wait_for(lambda: not service._workers[0].is_alive() or len(calls) > 1, timeout=10)
    second = service.submit(call(), context())
    wait_for(lambda: state(store, second.id) == "succeeded", timeout=15)


def test_output_a_failed_store_write_did_not_take_stays_pending() -> None:
    buffer = OutputBuffer(cap=1000)
    buffer.add("stdout", b"first ")
    stored: list[Chunk] = []

    def broken(chunks: list[Chunk], total: int, truncated: bool) -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError):
        buffer.flush(broken)
    buffer.add("stdout", b"second")
    buffer.flush(lambda chunks, total, truncated: stored.extend(chunks))
    assert "".join(c.text for c in stored) == "first second" and stored[0].offset == 0


# --- the record tells the truth -------------------------------------------------------------


def test_a_cancel_after_the_command_ended_keeps_its_outcome(
    tmp_path: Path, started: list[JobService]
) -> None:
    """The command ran to its end; a cancel that comes then kills nothing and must not say so."""
    store = JobStore(sqlite_path=tmp_path / "jobs.sqlite3")
    command = run_argv(runner(tmp_path), [sys.executable, "-c", "print('cleared 3 task instances')"])

    def dispatch(planned: Any, ctx: CallContext) -> None:
        command(planned, ctx)
        job = CURRENT_JOB.get()
        assert job is not None
        job.cancel.set()  # DELETE arriving after the command's end, before the job's

    service = start(started, store, dispatch)
    row = service.submit(call(), context())
    wait_for(lambda: state(store, row.id) not in ("queued", "running"))
    ended = store.get(row.id)
    assert ended is not None
    view = job_view(ended)
    assert (view["state"], view["exit_code"], view["reason"]) == ("succeeded", 0, LATE_CANCEL)
    assert view["envelope"]["http_response_code"] == 200 and LATE_CANCEL in view["envelope"]["warning"]


def test_a_cancel_during_a_read_back_keeps_the_commands_outcome(
    tmp_path: Path, started: list[JobService]
) -> None:
    """The command ran; its read-back (here a long one) is stopped by the cancel. The job is not
    `cancelled`: the command's outcome stands, with the late-cancel note."""
    store = JobStore(sqlite_path=tmp_path / "jobs.sqlite3")
    jobs = runner(tmp_path)
    command = run_argv(jobs, [sys.executable, "-c", "print('cleared')"])
    read_back = AuxiliaryCalls(jobs)
    cut: list[bool] = []

    def dispatch(planned: Any, ctx: CallContext) -> None:
        command(planned, ctx)
        cut.append(read_back.run(["sleep", "30"], timeout_s=60).cancelled)

    service = start(started, store, dispatch)
    row = service.submit(call(), context())
    wait_for(lambda: state(store, row.id) == "running")
    time.sleep(1.5)  # the command is done, the read-back sleeps
    assert service.cancel(row)[0]
    wait_for(lambda: state(store, row.id) not in ("queued", "running"), timeout=15)
    ended = store.get(row.id)
    assert ended is not None and (ended.state, ended.exit_code, ended.reason) == ("succeeded", 0, LATE_CANCEL)
    assert cut == [True]
    assert "".join(c.text for c in store.read_output(row.id)) == "cleared\n"  # not the read-back's


def test_a_cancel_that_kills_the_command_records_cancelled(tmp_path: Path, started: list[JobService]) -> None:
    store = JobStore(sqlite_path=tmp_path / "jobs.sqlite3")
    service = start(started, store, run_argv(runner(tmp_path), ["sleep", "30"]))
    row = service.submit(call(), context())
    wait_for(lambda: state(store, row.id) == "running")
    time.sleep(0.3)
    accepted, message = service.cancel(row)
    assert accepted and "being killed" in message
    wait_for(lambda: state(store, row.id) == "cancelled", timeout=15)
    ended = store.get(row.id)
    assert ended is not None and json.loads(ended.envelope or "{}")["http_response_code"] == 499


def test_cancelling_a_job_nothing_runs_says_so(tmp_path: Path, started: list[JobService]) -> None:
    """A job row of this very process that no thread runs (as when a job thread died): the
    DELETE answer says nothing runs it and the record ends failed, instead of a 202 for nobody."""
    store = JobStore(sqlite_path=tmp_path / "jobs.sqlite3")
    service = start(started, store, lambda planned, ctx: None)
    orphan = JobRow(
        id="orphan", principal="alice", auth_method="token", api="version", dag_id=None, state="running",
        reason=None, instance=service.instance, owner_pid=service.pid, owner_start=service.pid_start,
        request_id="r", airflow_cmd=None, created_at=time.time(),
    )  # fmt: skip
    store.create(orphan)
    accepted, message = service.cancel(orphan)
    assert not accepted and "nothing runs this job" in message
    assert state(store, "orphan") == "failed"


# --- output stored once, listings, quota ---------------------------------------------------


def test_a_jobs_output_is_stored_once(tmp_path: Path, started: list[JobService]) -> None:
    store = JobStore(sqlite_path=tmp_path / "jobs.sqlite3")
    script = "import sys; sys.stdout.write('y' * 300000)"
    service = start(started, store, run_argv(runner(tmp_path), [sys.executable, "-c", script]))
    row = service.submit(call(), context())
    wait_for(lambda: state(store, row.id) == "succeeded")
    ended = store.get(row.id)
    assert ended is not None and ended.output_bytes == 300000
    envelope = json.loads(ended.envelope or "{}")
    assert envelope["output"] == {
        "location": f"/admin/rest_api/jobs/{row.id}/output",
        "chars": 300000,
        "truncated": False,
    }
    assert len(ended.envelope or "") < 5000  # not a second copy of the output


def test_a_listing_costs_the_same_whatever_the_jobs_printed(tmp_path: Path) -> None:
    """Twenty jobs with 2 MB envelopes each: a listing must not read (or parse) them."""
    store = JobStore(sqlite_path=tmp_path / "jobs.sqlite3")
    big = json.dumps({"output": {"stdout": "z" * 2_000_000}})
    for n in range(20):
        store.create(
            JobRow(
                id=f"job-{n}", principal="alice", auth_method="token", api="test", dag_id=None,
                state="succeeded", reason=None, instance="i", owner_pid=1, owner_start="1",
                request_id="r", airflow_cmd=None, created_at=float(n), envelope=big,
            )
        )  # fmt: skip
    store.list_jobs(limit=1)  # the connection and statement caches, before measuring
    tracemalloc.start()
    try:
        rows = store.list_jobs(owner=("alice", "token"), limit=100)
        _, read_peak = tracemalloc.get_traced_memory()
        assert read_peak < 1_000_000, f"reading the listing held {read_peak} bytes"
        views = [job_view(r, envelope=False) for r in rows]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(views) == 20 and all("envelope" not in v for v in views)
    assert peak < 1_000_000, f"a listing held {peak} bytes"


def test_a_principal_over_its_stored_output_cap_cannot_submit(
    tmp_path: Path, started: list[JobService]
) -> None:
    store = JobStore(sqlite_path=tmp_path / "jobs.sqlite3")
    script = "import sys; sys.stdout.write('q' * 5000)"
    service = start(
        started, store, run_argv(runner(tmp_path), [sys.executable, "-c", script]),
        max_stored_output_per_principal=4000,
    )  # fmt: skip
    first = service.submit(call(), context())
    wait_for(lambda: state(store, first.id) == "succeeded")
    assert store.get(first.id).output_bytes == 5000  # type: ignore[union-attr]  # the running job kept all
    with pytest.raises(TooManyRequests) as refused:
        service.submit(call(), context())
    assert refused.value.code == 429 and "jobs.max_stored_output_per_principal" in str(
        refused.value.description
    )
    assert int(refused.value.extra_headers["Retry-After"]) >= 60  # when the oldest job expires
    other = service.submit(call(), context(Principal("bob", "token")))  # others are not affected
    wait_for(lambda: state(store, other.id) == "succeeded")


def test_a_secret_the_command_echoes_is_masked_in_the_stored_output(
    tmp_path: Path, started: list[JobService]
) -> None:
    """The command prints the request's secret in two writes, a pause apart: the stored output
    (and so every stream of it) has it masked, as the synchronous answer has."""
    store = JobStore(sqlite_path=tmp_path / "jobs.sqlite3")
    secret = "Pa55-w0rd@split-secret"
    script = (
        "import sys, time; sys.stdout.write('uri=postgresql://u:Pa55-w0rd'); sys.stdout.flush(); "
        "time.sleep(0.5); sys.stdout.write('@split-secret@db\\nlast line, no newline')"
    )
    service = start(started, store, run_argv(runner(tmp_path), [sys.executable, "-c", script]))
    ctx = context()
    ctx.record.secrets.add(secret)
    row = service.submit(call(), ctx)
    wait_for(lambda: state(store, row.id) == "succeeded")
    text = "".join(c.text for c in store.read_output(row.id))
    assert "Pa55" not in text and "split-secret" not in text, text
    assert text.endswith("\nlast line, no newline")


# --- files --------------------------------------------------------------------------------


def test_the_sqlite_store_is_private(tmp_path: Path) -> None:
    """0600 files (the -wal and -shm too) in a 0700 directory, also for a store made 0644 before."""
    home = tmp_path / "state"
    home.mkdir(mode=0o755)
    path = home / "jobs.sqlite3"
    path.touch(mode=0o644)
    store = JobStore(sqlite_path=path)
    store.list_jobs()  # opens the connection: the WAL files exist now
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
    fresh = tmp_path / "new" / "jobs.sqlite3"
    JobStore(sqlite_path=fresh).list_jobs()
    for name in ("jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm"):
        assert stat.S_IMODE((fresh.parent / name).stat().st_mode) == 0o600, name
