"""Sessions shared by two instances on one real PostgreSQL: a logout on A ends the session on B."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gateway.sessions.store import Sessions, SessionStore
from tests.support.postgres import PostgresServer, start_postgres


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server: PostgresServer = start_postgres(tmp_path_factory.mktemp("pg-sessions"))
    yield server.create_database("gateway_sessions")
    server.stop()


def test_logout_on_one_instance_ends_the_session_on_the_other(pg_url: str) -> None:
    a, b = (
        Sessions(SessionStore(url=pg_url), lifetime_s=3600, idle_timeout_s=900, cache_ttl_s=0.5) for _ in "ab"
    )
    session_id, _ = a.create(principal="ada", subject="ada", groups=["viewers"], refresh_token="rt")
    found = b.lookup(session_id)
    assert found is not None and found.as_principal().name == "ada"
    assert a.revoke(session_id)
    time.sleep(0.6)
    assert b.lookup(session_id) is None
    a.store.close()
    b.store.close()


def test_a_login_state_is_single_use_across_instances(pg_url: str) -> None:
    a, b = (Sessions(SessionStore(url=pg_url), lifetime_s=3600, idle_timeout_s=900) for _ in "ab")
    a.start_login(state="st", browser="br", nonce="n", code_verifier="v", redirect_url="r", next_path="/")
    assert b.take_login("st", "br") is not None
    assert a.take_login("st", "br") is None
    a.store.close()
    b.store.close()
