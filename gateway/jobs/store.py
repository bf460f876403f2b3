"""The job store: job records and their output, in SQLite (default) or PostgreSQL.

One small SQL layer serves both: statements use ``?`` placeholders (rewritten to ``%s``
for psycopg) and only types both databases share.  Every thread gets its own connection.
SQLite runs in WAL mode with a busy timeout, so two gunicorn workers (or two gateway
processes on one state directory) read and write it at once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

STATES = ("queued", "running", "succeeded", "failed", "timed_out", "cancelled")
ACTIVE = ("queued", "running")
BUSY_TIMEOUT_S = 30.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS gateway_jobs (
        id TEXT PRIMARY KEY,
        principal TEXT NOT NULL,
        auth_method TEXT NOT NULL,
        api TEXT NOT NULL,
        dag_id TEXT,
        state TEXT NOT NULL,
        reason TEXT,
        instance TEXT NOT NULL,
        owner_pid BIGINT NOT NULL,
        owner_start TEXT NOT NULL,
        request_id TEXT NOT NULL,
        airflow_cmd TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        started_at DOUBLE PRECISION,
        finished_at DOUBLE PRECISION,
        exit_code BIGINT,
        cancel_requested BIGINT NOT NULL DEFAULT 0,
        output_bytes BIGINT NOT NULL DEFAULT 0,
        output_truncated BIGINT NOT NULL DEFAULT 0,
        envelope TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS gateway_jobs_state ON gateway_jobs (state, instance)",
    "CREATE INDEX IF NOT EXISTS gateway_jobs_principal ON gateway_jobs (principal, created_at)",
    """CREATE TABLE IF NOT EXISTS gateway_job_output (
        job_id TEXT NOT NULL,
        start_offset BIGINT NOT NULL,
        stream TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (job_id, start_offset)
    )""",
)


@dataclass(slots=True)
class JobRow:
    """One job record, as stored."""

    id: str
    principal: str
    auth_method: str
    api: str
    dag_id: str | None
    state: str
    reason: str | None
    instance: str
    owner_pid: int
    owner_start: str
    request_id: str
    airflow_cmd: str | None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    cancel_requested: int = 0
    output_bytes: int = 0
    output_truncated: int = 0
    envelope: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


_COLUMNS = tuple(f.name for f in fields(JobRow))


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of one stream's output; ``offset`` counts characters over both streams."""

    offset: int
    stream: str
    text: str

    @property
    def end(self) -> int:
        return self.offset + len(self.text)


def _wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting as the busy timeout would.

    SQLite answers "database is locked" at once, without its busy handler, while another
    connection writes to a database still in rollback-journal mode: two gunicorn workers
    opening a new store together.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class JobStore:
    """Job records and output in SQLite at ``sqlite_path``, or PostgreSQL at ``url``."""

    def __init__(self, *, sqlite_path: Path | None = None, url: str | None = None) -> None:
        if (sqlite_path is None) == (url is None):
            raise ValueError("give exactly one of sqlite_path and url")
        self.sqlite_path = sqlite_path
        self.url = url
        self.kind = "postgresql" if url else "sqlite"
        self._local = threading.local()
        self._init_schema()

    # --- connections -----------------------------------------------------------------

    def _connect(self) -> Any:
        if self.url is not None:
            import psycopg
            from psycopg.rows import dict_row

            return psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=10)
        assert self.sqlite_path is not None  # noqa: S101
        self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.sqlite_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        _wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(conn, "closed", False):
            conn = self._local.conn = self._connect()
        return conn

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.url is not None else sql

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self._conn().execute(self._sql(sql), tuple(params))
        except Exception:
            self._drop()  # a broken connection is replaced on the next call
            raise

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: S110 - it is being discarded anyway
                pass

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        conn = self._conn()
        if self.url is not None:
            with conn.transaction():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _init_schema(self) -> None:
        with self._transaction():
            if self.url is not None:  # concurrent CREATE ... IF NOT EXISTS can collide in PostgreSQL
                self._run("SELECT pg_advisory_xact_lock(4715001)")
            for statement in _SCHEMA:
                self._run(statement)

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop()

    # --- records ---------------------------------------------------------------------

    def create(self, row: JobRow) -> None:
        names = ", ".join(_COLUMNS)
        marks = ", ".join("?" for _ in _COLUMNS)
        self._run(f"INSERT INTO gateway_jobs ({names}) VALUES ({marks})", [getattr(row, c) for c in _COLUMNS])  # noqa: S608

    def get(self, job_id: str) -> JobRow | None:
        found = self._run("SELECT * FROM gateway_jobs WHERE id = ?", (job_id,)).fetchone()
        return _row(found) if found is not None else None

    def list_jobs(
        self,
        *,
        owner: tuple[str, str] | None = None,
        state: str | None = None,
        api: str | None = None,
        limit: int = 100,
    ) -> list[JobRow]:
        """Newest first; ``owner`` is (principal, auth method)."""
        where, params = ["1 = 1"], []
        if owner is not None:
            where.append("principal = ? AND auth_method = ?")
            params += list(owner)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if api is not None:
            where.append("api = ?")
            params.append(api)
        sql = f"SELECT * FROM gateway_jobs WHERE {' AND '.join(where)} ORDER BY created_at DESC LIMIT ?"  # noqa: S608
        return [_row(r) for r in self._run(sql, [*params, limit]).fetchall()]

    def transition(self, job_id: str, from_states: Sequence[str], **changes: Any) -> bool:
        """Apply ``changes`` only while the job is in one of ``from_states``; True if it was."""
        sets = ", ".join(f"{name} = ?" for name in changes if name in _COLUMNS)
        marks = ", ".join("?" for _ in from_states)
        cursor = self._run(
            f"UPDATE gateway_jobs SET {sets} WHERE id = ? AND state IN ({marks})",  # noqa: S608
            [*changes.values(), job_id, *from_states],
        )
        return bool(cursor.rowcount)

    def request_cancel(self, job_id: str) -> bool:
        """Flag an active job for its owner to cancel; False when it already ended."""
        return self.transition(job_id, ACTIVE, cancel_requested=1)

    def cancel_flags(self, job_ids: Sequence[str]) -> list[str]:
        """Which of ``job_ids`` have a cancel request."""
        if not job_ids:
            return []
        marks = ", ".join("?" for _ in job_ids)
        sql = f"SELECT id FROM gateway_jobs WHERE cancel_requested = 1 AND id IN ({marks})"  # noqa: S608
        return [r["id"] for r in self._run(sql, list(job_ids)).fetchall()]

    def active_of(self, instance: str) -> list[JobRow]:
        """Queued and running jobs owned by processes of ``instance``."""
        sql = "SELECT * FROM gateway_jobs WHERE instance = ? AND state IN ('queued', 'running')"
        return [_row(r) for r in self._run(sql, (instance,)).fetchall()]

    def expire(self, finished_before: float) -> int:
        """Delete jobs (and their output) that finished before the given time."""
        with self._transaction():
            ids = [
                r["id"]
                for r in self._run(
                    "SELECT id FROM gateway_jobs WHERE finished_at IS NOT NULL AND finished_at < ?",
                    (finished_before,),
                ).fetchall()
            ]
            for job_id in ids:
                self._run("DELETE FROM gateway_job_output WHERE job_id = ?", (job_id,))
                self._run("DELETE FROM gateway_jobs WHERE id = ?", (job_id,))
        return len(ids)

    # --- output ----------------------------------------------------------------------

    def append_output(self, job_id: str, chunks: Sequence[Chunk], *, total: int, truncated: bool) -> None:
        """Store chunks (offsets assigned by the one writer, the owning process)."""
        with self._transaction():
            for chunk in chunks:
                self._run(
                    "INSERT INTO gateway_job_output (job_id, start_offset, stream, data) VALUES (?, ?, ?, ?)",
                    (job_id, chunk.offset, chunk.stream, chunk.text),
                )
            self._run(
                "UPDATE gateway_jobs SET output_bytes = ?, output_truncated = ? WHERE id = ?",
                (total, int(truncated), job_id),
            )

    def read_output(self, job_id: str, offset: int = 0, limit: int = 200) -> list[Chunk]:
        """Chunks starting at or after ``offset``, in order."""
        rows = self._run(
            "SELECT start_offset, stream, data FROM gateway_job_output"
            " WHERE job_id = ? AND start_offset >= ? ORDER BY start_offset LIMIT ?",
            (job_id, offset, limit),
        ).fetchall()
        return [Chunk(int(r["start_offset"]), r["stream"], r["data"]) for r in rows]


def _row(found: Any) -> JobRow:
    data = {name: found[name] for name in _COLUMNS}
    return JobRow(**data)
