"""Server-side browser sessions and pending logins, in SQLite (default) or PostgreSQL.

The same kind of store as the jobs (:class:`gateway.storage.sql.SqlStore`: per-thread
connections, reconnects, ``0600`` SQLite files), so several gateway instances on one
PostgreSQL share sessions, and a logout or a revocation on one ends the session on all.

* The cookie holds only an opaque random id (``secrets.token_urlsafe(32)``, 256 bits);
  the store keeps its SHA-256, so a copy of the database yields no usable cookie.  A fast
  hash is right for the same reason as for named tokens: the id is random, nothing to guess.
* The refresh and ID tokens are stored as given (the gateway must send them back); the
  store's files are private and the PostgreSQL database should be too.
* :class:`Sessions` puts a short-TTL in-process cache in front, so a request costs a dict
  lookup, not a query.  A revocation drops the entry here at once; other instances see it
  when their entry expires, within ``cache_ttl_s``.

**Pending logins** (``state``, ``nonce``, PKCE verifier, ``next``) are stored server-side,
not in a signed cookie: a state is single use across every instance because taking it is
one ``DELETE ... RETURNING`` (a signed cookie could be replayed until it expires, unless
used states were recorded, which is server state again); the verifier and nonce never
leave the server; and there is no signing key to share and rotate between instances.  The
state is bound to the browser by a second random value in a short-lived cookie, whose hash
is stored with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

from gateway.identity.principal import Principal
from gateway.storage.sql import SqlStore, StoreError

__all__ = ["LoginState", "SessionRecord", "SessionStore", "Sessions", "StoreError", "hash_id", "new_id"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS gateway_sessions (
        id_hash TEXT PRIMARY KEY,
        principal TEXT NOT NULL,
        auth_method TEXT NOT NULL,
        subject TEXT NOT NULL,
        groups_json TEXT NOT NULL,
        csrf_token TEXT NOT NULL,
        id_token TEXT,
        refresh_token TEXT,
        token_expires_at DOUBLE PRECISION,
        created_at DOUBLE PRECISION NOT NULL,
        last_seen_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS gateway_sessions_principal ON gateway_sessions (principal, auth_method)",
    "CREATE INDEX IF NOT EXISTS gateway_sessions_expiry ON gateway_sessions (expires_at)",
    """CREATE TABLE IF NOT EXISTS gateway_login_states (
        state_hash TEXT PRIMARY KEY,
        browser_hash TEXT NOT NULL,
        nonce TEXT NOT NULL,
        code_verifier TEXT NOT NULL,
        redirect_url TEXT NOT NULL,
        next_path TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    )""",
)


def new_id() -> str:
    """A fresh session id (or browser binding): 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_id(value: str) -> str:
    """What the store keeps instead of an id: its SHA-256, hex."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One stored session.  ``groups_json`` is a JSON list; see :attr:`groups`."""

    id_hash: str
    principal: str
    auth_method: str
    subject: str
    groups_json: str
    csrf_token: str
    id_token: str | None
    refresh_token: str | None
    token_expires_at: float | None
    created_at: float
    last_seen_at: float
    expires_at: float

    @property
    def groups(self) -> frozenset[str]:
        return frozenset(json.loads(self.groups_json))

    def as_principal(self) -> Principal:
        """The principal every later layer (policy, audit, whoami) sees."""
        return Principal(name=self.principal, method=self.auth_method, groups=self.groups)


_SESSION_COLUMNS = tuple(f.name for f in fields(SessionRecord))


@dataclass(frozen=True, slots=True)
class LoginState:
    """A login between ``/login`` and the callback.  ``state_hash`` and ``browser_hash`` are SHA-256."""

    state_hash: str
    browser_hash: str
    nonce: str
    code_verifier: str
    redirect_url: str
    next_path: str
    created_at: float


_LOGIN_COLUMNS = tuple(f.name for f in fields(LoginState))


class SessionStore(SqlStore):
    """Sessions and pending logins in SQLite at ``sqlite_path``, or PostgreSQL at ``url``."""

    SCHEMA = _SCHEMA
    SCHEMA_LOCK = 4715002
    LABEL = "the session store"

    # --- sessions -----------------------------------------------------------------------

    def insert(self, record: SessionRecord) -> None:
        names, marks = ", ".join(_SESSION_COLUMNS), ", ".join("?" for _ in _SESSION_COLUMNS)
        self._run(
            f"INSERT INTO gateway_sessions ({names}) VALUES ({marks})",  # noqa: S608 - fixed column names
            [getattr(record, c) for c in _SESSION_COLUMNS],
        )

    def get(self, id_hash: str) -> SessionRecord | None:
        found = self._run("SELECT * FROM gateway_sessions WHERE id_hash = ?", (id_hash,)).fetchone()
        return None if found is None else SessionRecord(**{c: found[c] for c in _SESSION_COLUMNS})

    def touch(self, id_hash: str, last_seen_at: float) -> None:
        self._run("UPDATE gateway_sessions SET last_seen_at = ? WHERE id_hash = ?", (last_seen_at, id_hash))

    def update_tokens(
        self,
        id_hash: str,
        *,
        id_token: str | None,
        refresh_token: str | None,
        token_expires_at: float,
        groups: Iterable[str] | None = None,
    ) -> bool:
        """After a refresh: new tokens (and groups, when the new ID token carries them)."""
        sets = (
            "id_token = COALESCE(?, id_token), refresh_token = COALESCE(?, refresh_token),"
            " token_expires_at = ?"
        )
        params: list[Any] = [id_token, refresh_token, token_expires_at]
        if groups is not None:
            sets += ", groups_json = ?"
            params.append(json.dumps(sorted(groups)))
        cursor = self._run(f"UPDATE gateway_sessions SET {sets} WHERE id_hash = ?", [*params, id_hash])  # noqa: S608
        return bool(cursor.rowcount)

    def delete(self, id_hash: str) -> bool:
        return bool(self._run("DELETE FROM gateway_sessions WHERE id_hash = ?", (id_hash,)).rowcount)

    def delete_principal(self, principal: str, auth_method: str) -> list[str]:
        """Delete every session of one person; returns their id hashes (for the local cache)."""
        with self._transaction():
            rows = self._run(
                "SELECT id_hash FROM gateway_sessions WHERE principal = ? AND auth_method = ?",
                (principal, auth_method),
            ).fetchall()
            self._run(
                "DELETE FROM gateway_sessions WHERE principal = ? AND auth_method = ?",
                (principal, auth_method),
            )
        return [r["id_hash"] for r in rows]

    def expire(self, now: float, idle_timeout_s: float) -> int:
        """Delete sessions past their lifetime or idle for longer than ``idle_timeout_s``."""
        cursor = self._run(
            "DELETE FROM gateway_sessions WHERE expires_at <= ? OR last_seen_at <= ?",
            (now, now - idle_timeout_s),
        )
        return int(cursor.rowcount)

    # --- pending logins -----------------------------------------------------------------------

    def put_login(self, login: LoginState) -> None:
        names, marks = ", ".join(_LOGIN_COLUMNS), ", ".join("?" for _ in _LOGIN_COLUMNS)
        self._run(
            f"INSERT INTO gateway_login_states ({names}) VALUES ({marks})",  # noqa: S608 - fixed column names
            [getattr(login, c) for c in _LOGIN_COLUMNS],
        )

    def take_login(self, state_hash: str) -> LoginState | None:
        """Remove and return a pending login: one statement, so exactly one caller ever gets it."""
        # fetchall: SQLite finishes (and unlocks) a RETURNING statement only once it is read to the end.
        rows = self._run(
            f"DELETE FROM gateway_login_states WHERE state_hash = ? RETURNING {', '.join(_LOGIN_COLUMNS)}",  # noqa: S608
            (state_hash,),
        ).fetchall()
        return LoginState(**{c: rows[0][c] for c in _LOGIN_COLUMNS}) if rows else None

    def expire_logins(self, created_before: float) -> int:
        cursor = self._run("DELETE FROM gateway_login_states WHERE created_at < ?", (created_before,))
        return int(cursor.rowcount)


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What :meth:`Sessions.take_login` hands back to the callback."""

    nonce: str
    code_verifier: str
    redirect_url: str
    next_path: str


class Sessions:
    """Session lifecycle over a :class:`SessionStore`, with a short-TTL cache in front.

    :param store: where sessions live (shared by every instance).
    :param lifetime_s: a session ends this long after sign-in, whatever happens.
    :param idle_timeout_s: a session ends after this long without a request.
    :param cache_ttl_s: how long a looked-up session is served from memory; a revocation on
        another instance is seen within this time.
    :param touch_interval_s: ``last_seen_at`` is written at most this often per session and
        instance (the idle timeout is exact to within this plus ``cache_ttl_s``).
    :param login_ttl_s: a pending login must come back within this time.
    :param cache_size: the most sessions kept in memory (least recently used dropped first).
    :param clock: wall-clock time (tests); stored times are epoch seconds.
    :param monotonic: cache ages (tests).
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        lifetime_s: float,
        idle_timeout_s: float,
        cache_ttl_s: float = 5.0,
        touch_interval_s: float = 60.0,
        login_ttl_s: float = 600.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if idle_timeout_s <= touch_interval_s + cache_ttl_s:
            # Otherwise an active session could look idle between two throttled touches.
            raise ValueError("idle_timeout_s must exceed touch_interval_s + cache_ttl_s")
        self.store = store
        self.lifetime_s = lifetime_s
        self.idle_timeout_s = idle_timeout_s
        self.cache_ttl_s = cache_ttl_s
        self.touch_interval_s = touch_interval_s
        self.login_ttl_s = login_ttl_s
        self.cache_size = cache_size
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[SessionRecord, float]] = OrderedDict()

    # --- sessions -----------------------------------------------------------------------

    def create(
        self,
        *,
        principal: str,
        subject: str,
        groups: Iterable[str],
        auth_method: str = "oidc",
        id_token: str | None = None,
        refresh_token: str | None = None,
        token_expires_at: float | None = None,
    ) -> tuple[str, SessionRecord]:
        """A new session with a new id (never one the browser brought: no fixation).

        Returns the id for the cookie (shown once, never stored) and the record.
        """
        session_id = new_id()
        now = self._clock()
        record = SessionRecord(
            id_hash=hash_id(session_id),
            principal=principal,
            auth_method=auth_method,
            subject=subject,
            groups_json=json.dumps(sorted(set(groups))),
            csrf_token=secrets.token_urlsafe(32),
            id_token=id_token,
            refresh_token=refresh_token,
            token_expires_at=token_expires_at,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.lifetime_s,
        )
        self.store.insert(record)
        return session_id, record

    def lookup(self, session_id: str | None) -> SessionRecord | None:
        """The live session for a cookie value, or None (unknown, expired, idle, revoked).

        :raises StoreError: the store is unreachable and the session is not cached.
        """
        if not session_id or len(session_id) > 128:
            return None
        id_hash = hash_id(session_id)
        now, mono = self._clock(), self._monotonic()
        with self._lock:
            cached = self._cache.get(id_hash)
            if cached is not None and mono - cached[1] < self.cache_ttl_s:
                self._cache.move_to_end(id_hash)
                hit = cached[0]
                if self._alive(hit, now):
                    return hit
                self._cache.pop(id_hash, None)
                return None
        record = self.store.get(id_hash)
        if record is None or not self._alive(record, now):
            with self._lock:
                self._cache.pop(id_hash, None)
            if record is not None:
                self.store.delete(id_hash)
            return None
        if now - record.last_seen_at >= self.touch_interval_s:
            self.store.touch(id_hash, now)
            record = replace(record, last_seen_at=now)
        with self._lock:
            self._cache[id_hash] = (record, mono)
            self._cache.move_to_end(id_hash)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return record

    def _alive(self, record: SessionRecord, now: float) -> bool:
        return now < record.expires_at and now - record.last_seen_at < self.idle_timeout_s

    def revoke(self, session_id: str) -> bool:
        """End one session (logout); True when it existed."""
        return self.revoke_hash(hash_id(session_id))

    def revoke_hash(self, id_hash: str) -> bool:
        with self._lock:
            self._cache.pop(id_hash, None)
        return self.store.delete(id_hash)

    def revoke_user(self, principal: str, auth_method: str = "oidc") -> int:
        """End every session of one person (an admin's revocation); returns how many."""
        hashes = self.store.delete_principal(principal, auth_method)
        with self._lock:
            for id_hash in hashes:
                self._cache.pop(id_hash, None)
        return len(hashes)

    def renewed(
        self,
        record: SessionRecord,
        *,
        id_token: str | None,
        refresh_token: str | None,
        token_expires_at: float,
        groups: Iterable[str] | None = None,
    ) -> SessionRecord | None:
        """Store tokens from a refresh; the updated record, or None when the session is gone meanwhile."""
        groups = None if groups is None else sorted(set(groups))
        if not self.store.update_tokens(
            record.id_hash,
            id_token=id_token,
            refresh_token=refresh_token,
            token_expires_at=token_expires_at,
            groups=groups,
        ):
            self.revoke_hash(record.id_hash)
            return None
        updated = replace(
            record,
            id_token=id_token or record.id_token,
            refresh_token=refresh_token or record.refresh_token,
            token_expires_at=token_expires_at,
            groups_json=record.groups_json if groups is None else json.dumps(groups),
        )
        with self._lock:
            if record.id_hash in self._cache:
                self._cache[record.id_hash] = (updated, self._monotonic())
        return updated

    def expire(self) -> int:
        """Delete ended sessions and stale pending logins (call now and then, e.g. with job expiry)."""
        now = self._clock()
        return self.store.expire(now, self.idle_timeout_s) + self.store.expire_logins(now - self.login_ttl_s)

    # --- pending logins -----------------------------------------------------------------------

    def start_login(
        self, *, state: str, browser: str, nonce: str, code_verifier: str, redirect_url: str, next_path: str
    ) -> None:
        """Keep a login's secrets until its callback; ``browser`` is the binding cookie's value."""
        self.store.put_login(
            LoginState(
                state_hash=hash_id(state),
                browser_hash=hash_id(browser),
                nonce=nonce,
                code_verifier=code_verifier,
                redirect_url=redirect_url,
                next_path=next_path,
                created_at=self._clock(),
            )
        )

    def take_login(self, state: str | None, browser: str | None) -> PendingLogin | None:
        """The pending login for a callback's ``state``, once: None when unknown, used, too old,
        or started in another browser (it is consumed all the same, so it cannot be retried)."""
        if not state or not browser or len(state) > 256 or len(browser) > 256:
            return None
        login = self.store.take_login(hash_id(state))
        if login is None:
            return None
        if not hmac.compare_digest(login.browser_hash, hash_id(browser)):
            return None
        if self._clock() - login.created_at > self.login_ttl_s:
            return None
        return PendingLogin(
            nonce=login.nonce,
            code_verifier=login.code_verifier,
            redirect_url=login.redirect_url,
            next_path=login.next_path,
        )
