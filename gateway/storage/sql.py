"""One small SQL layer over SQLite (default) or PostgreSQL, shared by the gateway's stores.

Statements use ``?`` placeholders (rewritten to ``%s`` for psycopg) and only types both
databases share.  Every thread gets its own connection.  SQLite runs in WAL mode with a
busy timeout, so two gunicorn workers (or two gateway processes on one state directory)
read and write it at once.  A store's records may be sensitive (job output, session
tokens): the SQLite file is created ``0600`` in a ``0700`` directory before SQLite opens it
(SQLite gives its ``-wal`` and ``-shm`` files the database file's mode), and an existing
file is narrowed to ``0600`` on open.

Extracted from the job store so that the session store reuses its connection handling
(reconnect after a PostgreSQL restart, transactions, schema creation under a lock).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_S = 30.0


def _wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Switch to WAL, waiting as the busy timeout would.

    SQLite answers "database is locked" at once, without its busy handler, while another
    connection writes to a database still in rollback-journal mode: two gunicorn workers
    opening a new store together.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _private_files(path: Path) -> None:
    """Create the SQLite file ``0600`` in a ``0700`` directory; narrow existing files to that."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if stat.S_IMODE(name.stat().st_mode) != 0o600:
                name.chmod(0o600)
        except FileNotFoundError:
            pass


class StoreError(Exception):
    """The store could not be reached, or refused a statement; the database's error is the cause."""


def _lost(conn: Any) -> bool:
    """Whether a psycopg connection has died under its last statement."""
    return bool(getattr(conn, "broken", False) or getattr(conn, "closed", False))


class SqlStore:
    """Records in SQLite at ``sqlite_path``, or PostgreSQL at ``url``; subclasses add the statements.

    :param busy_timeout_s: how long a SQLite statement waits for another writer's lock
        (default :data:`BUSY_TIMEOUT_S`).
    """

    #: The ``CREATE ... IF NOT EXISTS`` statements, run once per store at open.
    SCHEMA: tuple[str, ...] = ()
    #: PostgreSQL advisory lock key held while the schema is created (one per store kind).
    SCHEMA_LOCK: int = 0
    #: Names the store in :class:`StoreError` messages.
    LABEL = "the store"

    def __init__(
        self,
        *,
        sqlite_path: Path | None = None,
        url: str | None = None,
        busy_timeout_s: float | None = None,
    ) -> None:
        if (sqlite_path is None) == (url is None):
            raise ValueError("give exactly one of sqlite_path and url")
        self.sqlite_path = sqlite_path
        self.url = url
        self.kind = "postgresql" if url else "sqlite"
        self.busy_timeout_s = BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
        self._local = threading.local()
        if sqlite_path is not None:
            _private_files(sqlite_path)
        self._init_schema()

    # --- connections -----------------------------------------------------------------

    def _connect(self) -> Any:
        if self.url is not None:
            import psycopg
            from psycopg.rows import dict_row

            return psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=10)
        assert self.sqlite_path is not None  # noqa: S101
        conn = sqlite3.connect(self.sqlite_path, timeout=self.busy_timeout_s, isolation_level=None)
        conn.row_factory = sqlite3.Row
        _wal(conn, self.busy_timeout_s)
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
        """Execute one statement.  A PostgreSQL connection found dead (the server restarted
        since its last use) is replaced and the statement sent once more, unless it is part
        of a transaction, which cannot continue on another connection.

        :raises StoreError: the database's error, as its cause.
        """
        for attempt in (1, 2):
            conn = self._conn()
            try:
                return conn.execute(self._sql(sql), tuple(params))
            except Exception as exc:
                lost = self.url is not None and _lost(conn)
                self._drop()  # a broken connection is replaced on the next call
                if attempt == 1 and lost and not getattr(self._local, "in_transaction", False):
                    continue
                raise StoreError(f"{self.LABEL} failed: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

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
        conn = self._begin()
        self._local.in_transaction = True
        try:
            if self.url is not None:
                try:
                    with conn.transaction():
                        yield
                except StoreError:
                    raise
                except Exception as exc:  # the connection died during the transaction
                    self._drop()
                    raise StoreError(f"{self.LABEL} failed: {type(exc).__name__}: {exc}") from exc
                return
            try:
                yield
            except BaseException:
                try:
                    conn.execute("ROLLBACK")
                except Exception:  # noqa: S110 - a dropped connection has rolled back already
                    pass
                raise
            self._commit(conn)
        finally:
            self._local.in_transaction = False

    def _begin(self) -> Any:
        """This thread's connection with a transaction begun (SQLite) or ready to begin one
        (PostgreSQL: checked alive first, so a restarted server costs a reconnect, not an error)."""
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE" if self.url is None else "SELECT 1")
                return conn
            except Exception as exc:
                lost = self.url is not None and _lost(conn)
                self._drop()
                if attempt == 1 and lost:
                    continue
                raise StoreError(f"{self.LABEL} failed: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _commit(self, conn: Any) -> None:
        try:
            conn.execute("COMMIT")
        except Exception as exc:
            self._drop()
            raise StoreError(f"{self.LABEL} failed: {type(exc).__name__}: {exc}") from exc

    def _init_schema(self) -> None:
        with self._transaction():
            if self.url is not None:  # concurrent CREATE ... IF NOT EXISTS can collide in PostgreSQL
                self._run(f"SELECT pg_advisory_xact_lock({int(self.SCHEMA_LOCK)})")
            for statement in self.SCHEMA:
                self._run(statement)

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop()
