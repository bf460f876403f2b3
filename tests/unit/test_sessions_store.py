"""The session store and its cache, on real SQLite files; time is the test's own clock."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from gateway.identity.principal import Principal
from gateway.sessions.store import Sessions, SessionStore, hash_id


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(path: Path, clock: Clock, **kwargs: float) -> Sessions:
    options = {
        "lifetime_s": 3600.0,
        "idle_timeout_s": 600.0,
        "cache_ttl_s": 5.0,
        "touch_interval_s": 60.0,
        **kwargs,
    }
    return Sessions(SessionStore(sqlite_path=path), clock=clock, monotonic=clock, **options)


@pytest.fixture
def sessions(tmp_path: Path, clock: Clock) -> Sessions:
    return make(tmp_path / "state" / "sessions.sqlite", clock)


def new(sessions: Sessions, name: str = "ada") -> str:
    session_id, _ = sessions.create(
        principal=name, subject=f"sub-{name}", groups=["viewers", "ops"], id_token="idt", refresh_token="rt"
    )
    return session_id


def test_a_session_is_found_by_its_id_and_is_an_oidc_principal(sessions: Sessions) -> None:
    session_id = new(sessions)
    found = sessions.lookup(session_id)
    assert found is not None
    assert found.as_principal() == Principal(name="ada", method="oidc", groups=frozenset({"viewers", "ops"}))
    assert len(session_id) >= 43 and len(found.csrf_token) >= 43 and found.csrf_token != session_id


def test_the_store_keeps_only_the_ids_hash_in_a_private_file(tmp_path: Path, sessions: Sessions) -> None:
    session_id = new(sessions)
    path = tmp_path / "state" / "sessions.sqlite"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    with sqlite3.connect(path) as db:
        ids = [r[0] for r in db.execute("SELECT id_hash FROM gateway_sessions")]
    assert ids == [hash_id(session_id)] and session_id not in path.read_bytes().decode("latin-1")


@pytest.mark.parametrize("guess", ["", "x", "A" * 43, "A" * 500, "\x00", None])
def test_guessed_or_tampered_ids_find_nothing(sessions: Sessions, guess: str | None) -> None:
    new(sessions)
    assert sessions.lookup(guess) is None


def test_a_tampered_id_finds_nothing(sessions: Sessions) -> None:
    session_id = new(sessions)
    tampered = session_id[:-1] + ("A" if session_id[-1] != "A" else "B")
    assert sessions.lookup(tampered) is None
    assert sessions.lookup(hash_id(session_id)) is None  # the stored hash is not a cookie


def test_every_session_gets_a_new_id(sessions: Sessions) -> None:
    assert len({new(sessions) for _ in range(20)}) == 20


def test_lifetime_and_idle_timeout_end_a_session(sessions: Sessions, clock: Clock) -> None:
    session_id = new(sessions)
    for _ in range(10):  # active: a request every 5 minutes keeps it alive past the idle timeout
        clock.now += 300
        assert sessions.lookup(session_id) is not None
    clock.now += 3600 - 3000
    assert sessions.lookup(session_id) is None  # lifetime over, however active

    idle = new(sessions)
    clock.now += 601
    assert sessions.lookup(idle) is None
    assert sessions.store.get(hash_id(idle)) is None  # and deleted


def test_idle_timeout_must_exceed_the_touch_interval_and_cache_ttl(tmp_path: Path, clock: Clock) -> None:
    with pytest.raises(ValueError):
        make(tmp_path / "s.sqlite", clock, idle_timeout_s=60.0)


def test_revoke_on_one_instance_is_seen_by_another_within_the_cache_ttl(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "shared.sqlite"
    a, b = make(path, clock), make(path, clock)
    session_id = new(a)
    assert b.lookup(session_id) is not None  # cached on B now
    assert a.revoke(session_id)
    assert a.lookup(session_id) is None  # at once where it was revoked
    assert b.lookup(session_id) is not None  # B's cache entry is still fresh...
    clock.now += 5
    assert b.lookup(session_id) is None  # ...and expires within cache_ttl_s


def test_revoke_user_ends_all_of_one_persons_sessions(sessions: Sessions) -> None:
    mine = [new(sessions) for _ in range(3)]
    other = new(sessions, "bob")
    for session_id in mine:
        assert sessions.lookup(session_id) is not None
    assert sessions.revoke_user("ada") == 3
    assert [sessions.lookup(s) for s in mine] == [None, None, None]
    assert sessions.lookup(other) is not None
    assert not sessions.revoke(mine[0])


def test_renewed_tokens_are_stored_and_a_vanished_session_is_not_revived(sessions: Sessions) -> None:
    session_id = new(sessions)
    record = sessions.lookup(session_id)
    assert record is not None
    updated = sessions.renewed(
        record, id_token="idt2", refresh_token=None, token_expires_at=5.0, groups=["x"]
    )
    assert updated is not None and updated.refresh_token == "rt" and updated.groups == {"x"}
    stored = sessions.store.get(record.id_hash)
    assert stored is not None and (stored.id_token, stored.refresh_token, stored.groups) == (
        "idt2",
        "rt",
        {"x"},
    )
    sessions.revoke(session_id)
    assert sessions.renewed(record, id_token="idt3", refresh_token="rt3", token_expires_at=6.0) is None


def test_last_seen_is_written_at_most_once_per_touch_interval(sessions: Sessions, clock: Clock) -> None:
    session_id = new(sessions)
    created = clock.now
    clock.now += 30
    sessions.lookup(session_id)
    stored = sessions.store.get(hash_id(session_id))
    assert stored is not None and stored.last_seen_at == created
    clock.now += 31
    sessions.lookup(session_id)
    stored = sessions.store.get(hash_id(session_id))
    assert stored is not None and stored.last_seen_at == clock.now


def test_expire_deletes_ended_sessions_and_stale_logins(sessions: Sessions, clock: Clock) -> None:
    new(sessions)
    sessions.start_login(
        state="s", browser="b", nonce="n", code_verifier="v", redirect_url="r", next_path="/"
    )
    clock.now += 4000
    assert sessions.expire() == 2


# --- pending logins ---------------------------------------------------------------------------


def start(sessions: Sessions, state: str = "state-1", browser: str = "browser-1") -> None:
    sessions.start_login(
        state=state,
        browser=browser,
        nonce="nonce",
        code_verifier="verifier",
        redirect_url="cb",
        next_path="/x",
    )


def test_a_login_is_taken_once_by_its_browser(sessions: Sessions) -> None:
    start(sessions)
    pending = sessions.take_login("state-1", "browser-1")
    assert pending is not None and (pending.nonce, pending.code_verifier, pending.next_path) == (
        "nonce", "verifier", "/x"
    )  # fmt: skip
    assert sessions.take_login("state-1", "browser-1") is None


def test_a_login_from_another_browser_is_refused_and_used_up(sessions: Sessions) -> None:
    start(sessions)
    assert sessions.take_login("state-1", "browser-2") is None
    assert sessions.take_login("state-1", "browser-1") is None


def test_a_login_too_old_is_refused(sessions: Sessions, clock: Clock) -> None:
    start(sessions)
    clock.now += 601
    assert sessions.take_login("state-1", "browser-1") is None


@pytest.mark.parametrize(("state", "browser"), [(None, "b"), ("s", None), ("", "b"), ("s" * 300, "b")])
def test_missing_or_absurd_login_values_are_refused(
    sessions: Sessions, state: str | None, browser: str | None
) -> None:
    assert sessions.take_login(state, browser) is None


def test_the_stored_state_is_hashed(tmp_path: Path, sessions: Sessions) -> None:
    start(sessions, state="very-secret-state", browser="very-secret-browser")
    with sqlite3.connect(tmp_path / "state" / "sessions.sqlite") as db:
        row = db.execute("SELECT state_hash, browser_hash FROM gateway_login_states").fetchone()
    assert row == (hash_id("very-secret-state"), hash_id("very-secret-browser"))


def test_concurrent_callbacks_with_one_state_let_exactly_one_through(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "race.sqlite"
    instances = [make(path, clock) for _ in range(8)]
    start(instances[0])
    barrier = threading.Barrier(len(instances))
    won: list[bool] = []

    def take(s: Sessions) -> None:
        barrier.wait()
        won.append(s.take_login("state-1", "browser-1") is not None)

    threads = [threading.Thread(target=take, args=(s,)) for s in instances]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(won) == [False] * 7 + [True]
