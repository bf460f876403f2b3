"""The job store: job records and their output, in SQLite (default) or PostgreSQL.

The SQL layer (connections, reconnects, transactions, private SQLite files) is
:mod:`gateway.storage.sql`'s.  A job's stored envelope may hold exported data and its output
rows anything the command printed, hence its private files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from gateway.storage.sql import BUSY_TIMEOUT_S, SqlStore, StoreError

__all__ = ["ACTIVE", "BUSY_TIMEOUT_S", "MAX_OFFSET", "STATES", "Chunk", "JobRow", "JobStore", "StoreError"]

STATES = ("queued", "running", "succeeded", "failed", "timed_out", "cancelled")
ACTIVE = ("queued", "running")
#: Largest output offset accepted from a client: exact in JSON (and in a browser's
#: ``Last-Event-ID``) and far inside both databases' 64-bit integers.
MAX_OFFSET = 2**53 - 1

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
    # One row per gateway instance, renewed by its workers while it lives (gateway/jobs/service.py).
    """CREATE TABLE IF NOT EXISTS gateway_job_leases (
        instance TEXT PRIMARY KEY,
        renewed_at DOUBLE PRECISION NOT NULL
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
# A listing never reads envelopes: its cost does not grow with what the jobs printed.
_LIST_COLUMNS = ", ".join(c for c in _COLUMNS if c != "envelope")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of one stream's output; ``offset`` counts characters over both streams."""

    offset: int
    stream: str
    text: str

    @property
    def end(self) -> int:
        return self.offset + len(self.text)


class JobStore(SqlStore):
    """Job records and output in SQLite at ``sqlite_path``, or PostgreSQL at ``url``.

    :param busy_timeout_s: how long a SQLite statement waits for another writer's lock
        (default :data:`BUSY_TIMEOUT_S`).
    """

    SCHEMA = _SCHEMA
    SCHEMA_LOCK = 4715001
    LABEL = "the job store"

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
        """Newest first, without their envelopes; ``owner`` is (principal, auth method)."""
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
        sql = (
            f"SELECT {_LIST_COLUMNS} FROM gateway_jobs WHERE {' AND '.join(where)}"  # noqa: S608
            " ORDER BY created_at DESC LIMIT ?"
        )
        return [_row(r) for r in self._run(sql, [*params, limit]).fetchall()]

    def output_total(self, owner: tuple[str, str]) -> tuple[int, float | None]:
        """Output characters stored for ``owner``'s jobs, and when their oldest ended job ended."""
        found = self._run(
            "SELECT COALESCE(SUM(output_bytes), 0) AS total, MIN(finished_at) AS oldest"
            " FROM gateway_jobs WHERE principal = ? AND auth_method = ?",
            owner,
        ).fetchone()
        oldest = found["oldest"]
        return int(found["total"]), float(oldest) if oldest is not None else None

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
        """Which of ``job_ids`` have a cancel request, or ended in the store meanwhile (another
        instance found their instance's lease expired): either way their process must go."""
        if not job_ids:
            return []
        marks = ", ".join("?" for _ in job_ids)
        ended = "state NOT IN ('queued', 'running')"
        sql = f"SELECT id FROM gateway_jobs WHERE (cancel_requested = 1 OR {ended}) AND id IN ({marks})"  # noqa: S608
        return [r["id"] for r in self._run(sql, list(job_ids)).fetchall()]

    def active_of(self, instance: str) -> list[JobRow]:
        """Queued and running jobs owned by processes of ``instance``."""
        sql = "SELECT * FROM gateway_jobs WHERE instance = ? AND state IN ('queued', 'running')"
        return [_row(r) for r in self._run(sql, (instance,)).fetchall()]

    def renew_lease(self, instance: str, now: float) -> None:
        """Record that ``instance`` is alive at ``now`` (its jobs are its own)."""
        self._run(
            "INSERT INTO gateway_job_leases (instance, renewed_at) VALUES (?, ?)"
            " ON CONFLICT (instance) DO UPDATE SET renewed_at = excluded.renewed_at",
            (instance, now),
        )

    def expired_leases(self, renewed_before: float) -> list[tuple[str, float]]:
        """Instances that stopped renewing before the given time and still own active jobs,
        with when they last renewed."""
        rows = self._run(
            "SELECT instance, renewed_at FROM gateway_job_leases l WHERE renewed_at < ? AND EXISTS (SELECT 1"
            " FROM gateway_jobs j WHERE j.instance = l.instance AND j.state IN ('queued', 'running'))",
            (renewed_before,),
        ).fetchall()
        return [(r["instance"], float(r["renewed_at"])) for r in rows]

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
            # Instances gone for as long, with no job left: their leases go too.
            self._run(
                "DELETE FROM gateway_job_leases WHERE renewed_at < ? AND NOT EXISTS (SELECT 1 FROM"
                " gateway_jobs j WHERE j.instance = gateway_job_leases.instance"
                " AND j.state IN ('queued', 'running'))",
                (finished_before,),
            )
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

    def read_output(
        self, job_id: str, offset: int = 0, limit: int = 200, max_chars: int | None = None
    ) -> list[Chunk]:
        """The output from ``offset`` on, in order: at most ``limit`` stored chunks and
        ``max_chars`` characters, the first chunk cut to begin at ``offset`` when ``offset``
        falls inside it (a stream's events are finer than the stored chunks, so a client may
        resume anywhere).  The character bound is applied in the query too: only chunks that
        start before ``offset + max_chars`` are fetched, whatever their number."""
        offset = min(offset, MAX_OFFSET)
        end = MAX_OFFSET if max_chars is None else min(offset + max_chars, MAX_OFFSET)
        rows = self._run(
            "SELECT start_offset, stream, data FROM gateway_job_output WHERE job_id = ? AND start_offset >="
            " COALESCE((SELECT MAX(start_offset) FROM gateway_job_output"
            " WHERE job_id = ? AND start_offset <= ?), 0) AND start_offset < ? ORDER BY start_offset LIMIT ?",
            (job_id, job_id, offset, end, limit + 1),  # + the chunk ending at offset
        ).fetchall()
        chunks: list[Chunk] = []
        for r in rows:
            start, text = int(r["start_offset"]), r["data"]
            if start < offset:
                text, start = text[offset - start :], offset
            text = text[: max(end - start, 0)]
            if text:
                chunks.append(Chunk(start, r["stream"], text))
        return chunks[:limit]


def _row(found: Any) -> JobRow:
    keys = found.keys()
    data = {name: found[name] for name in _COLUMNS if name in keys}
    return JobRow(**data)
