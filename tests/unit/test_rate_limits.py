"""Rate limits and caps (gateway/ratelimit/, issue 27): rules, resolution, 429 answers, Redis
sharing and its fallback to per-worker memory, against a real redis-server where it matters."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from limits import parse
from werkzeug.test import Client

from gateway.cli.probe import AirflowInstall
from gateway.config.settings import ConfigError, RateLimitsConfig
from gateway.http.health import Health
from gateway.identity.principal import Principal
from gateway.observability.audit import AuditRecord
from gateway.ratelimit.counters import Counters
from gateway.ratelimit.limiter import RateLimited, RateLimits
from tests.support.redis import RedisServer, free_port
from tests.unit.gateway_app import TOKEN, unit_gateway

ALICE = Principal("alice", "token", frozenset({"ops"}))
BOB = Principal("bob", "token", frozenset({"ci"}))
CAROL = Principal("carol", "jwt")


def rules(*tables: dict[str, Any]) -> Any:
    return RateLimitsConfig.rules.parse(list(tables))


MADE: list[RateLimits] = []


@pytest.fixture(autouse=True)
def _close_counters() -> Iterator[None]:
    """Stop the background threads of the counters a test made (no pings of a gone Redis after it)."""
    yield
    while MADE:
        MADE.pop().counters.close()


def limits(*tables: dict[str, Any], url: str = "memory://", **settings: Any) -> RateLimits:
    config = RateLimitsConfig(rules=rules(*tables), **settings)
    config = config.replace(storage_url=RateLimitsConfig.storage_url.parse(url))
    MADE.append(RateLimits(config))
    return MADE[-1]


def record() -> AuditRecord:
    return AuditRecord(request_id="r" * 16, method="GET", path="/", remote_addr=None)


# --- the rules as settings ------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"limit": "1/second"}, "exactly one of principal and group"),
        ({"principal": "a", "group": "b", "limit": "1/second"}, "exactly one of principal and group"),
        ({"principal": "*"}, "either limit or caps"),
        ({"principal": "*", "limit": "1/second", "cli_calls": 1}, "either limit or caps"),
        ({"principal": "*", "limit": "ten per second"}, "expected N/second"),
        ({"principal": "*", "api": "no_such_api", "limit": "1/second"}, "unknown API"),
        ({"principal": "*", "api": "version", "path": "/x", "limit": "1/second"}, "exclude each other"),
        ({"principal": "*", "path": "x", "limit": "1/second"}, "starting with '/'"),
        ({"principal": "*", "cli_calls": -1}, "at least 0"),
        ({"principal": "*", "limit": "1/second", "color": "red"}, "expected a table with keys"),
    ],
)
def test_invalid_rules_are_refused_naming_the_rule(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        rules(table)


def test_rules_from_the_environment_as_json_and_ids() -> None:
    parsed = RateLimitsConfig.rules.parse(json.dumps([{"principal": "*", "limit": "5/minute"}]))
    assert parsed[0].id == "rule-1" and parsed[0].limit == "5/minute"
    with pytest.raises(ConfigError, match="unique"):
        rules(
            {"id": "x", "principal": "*", "limit": "1/second"}, {"id": "x", "group": "g", "limit": "1/second"}
        )


def test_storage_url_must_be_memory_or_redis() -> None:
    assert RateLimitsConfig.storage_url.parse("redis://r:6379/1").value == "redis://r:6379/1"
    with pytest.raises(ConfigError, match="memory:// or a redis://"):
        RateLimitsConfig.storage_url.parse("http://r:6379")


# --- resolution: the most specific rule of each kind ------------------------------------


def test_most_specific_rule_of_each_kind_applies() -> None:
    book = limits(
        {"id": "all", "principal": "*", "limit": "10/second"},
        {"id": "ops", "group": "ops", "limit": "20/second"},
        {"id": "alice", "principal": "alice", "limit": "30/second"},
        {"id": "api", "principal": "*", "api": "version", "limit": "1/minute"},
        {"id": "caps", "principal": "*", "cli_calls": 2, "streams": 1},
        {"id": "bob-caps", "principal": "bob", "cli_calls": 5},
    ).book
    assert book.resolve(ALICE).every is not None and book.resolve(ALICE).every.rule.id == "alice"
    assert book.resolve(Principal("dave", "token", frozenset({"ops"}))).every.rule.id == "ops"  # type: ignore[union-attr]
    assert book.resolve(CAROL).every.rule.id == "all"  # type: ignore[union-attr]
    assert book.resolve(CAROL).apis["version"].rule.id == "api"
    # Caps are resolved kind by kind: bob's own cli_calls, everyone's streams.
    assert book.resolve(BOB).caps == {"cli_calls": (5, "bob-caps"), "streams": (1, "caps")}


def test_over_the_limit_is_a_429_with_the_draft_headers_per_principal() -> None:
    rl = limits({"id": "slow", "principal": "*", "limit": "3/minute"})
    for _ in range(3):
        rl.check_request(ALICE, "/home", record())
    refused = record()
    with pytest.raises(RateLimited) as caught:
        rl.check_request(ALICE, "/home", refused)
    error = caught.value
    assert error.code == 429 and error.limit_id == "slow" and refused.rate_limit == "slow"
    headers = error.extra_headers
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert headers["RateLimit-Policy"] == '"slow";q=3;w=60'
    assert headers["RateLimit"] == f'"slow";r=0;t={headers["Retry-After"]}'
    assert "3 requests per minute" in (error.description or "")
    rl.check_request(BOB, "/home", record())  # another principal has its own counter


def test_path_rules_count_only_their_prefix_and_api_rules_their_api() -> None:
    rl = limits(
        {"id": "v2", "principal": "*", "path": "/api/v2/", "limit": "1/minute"},
        {"id": "trig", "principal": "*", "api": "trigger_dag", "limit": "1/minute"},
    )
    rl.check_request(ALICE, "/api/v2/dags", record())
    rl.check_request(ALICE, "/home", record())
    rl.check_request(ALICE, "/home", record())
    with pytest.raises(RateLimited, match="paths under /api/v2/"):
        rl.check_request(ALICE, "/api/v2/dags/x", record())
    rl.check_api(ALICE, "trigger_dag", record())
    rl.check_api(ALICE, "version", record())
    with pytest.raises(RateLimited, match="api trigger_dag"):
        rl.check_api(ALICE, "trigger_dag", record())


def test_caps_hold_slots_until_released() -> None:
    rl = limits({"id": "caps", "principal": "*", "cli_calls": 1})
    release = rl.slot("cli_calls", ALICE, record())
    with pytest.raises(RateLimited) as caught:
        rl.slot("cli_calls", ALICE, record())
    assert caught.value.extra_headers["RateLimit-Policy"] == '"caps";q=1'
    assert caught.value.extra_headers["Retry-After"] == "5"
    rl.slot("cli_calls", BOB, record())()  # bob's own slot
    release()
    release()  # twice is harmless
    rl.slot("cli_calls", ALICE, record())()
    assert rl.try_slot("streams", ALICE) is not None  # no cap of that kind: always admitted


def test_no_rules_means_no_layer_and_no_readiness_entry() -> None:
    rl = limits()
    assert not rl.enabled and rl.readiness() is None


# --- through the composed gateway -------------------------------------------------------


def test_the_gateway_answers_429_and_audits_and_counts_the_rule(tmp_path: Path) -> None:
    table = [{"id": "per-minute", "principal": "*", "limit": "2/minute"}]
    settings = {"RATE_LIMITS__RULES": json.dumps(table)}
    with unit_gateway(tmp_path, settings=settings) as gw:
        client = Client(gw.app)
        headers = {"rest_api_plugin_http_token": TOKEN}
        assert [client.get("/admin/rest_api/api?api=version", headers=headers, buffered=True).status_code for _ in range(3)] == [
            200, 200, 429,
        ]  # fmt: skip
        refused = client.get("/admin/rest_api/api?api=version", headers=headers, buffered=True)
        assert refused.status_code == 429 and refused.headers["RateLimit-Policy"] == '"per-minute";q=2;w=60'
        assert refused.json["status"] == "ERROR" and "per-minute" in refused.json["output"]
        assert client.get("/healthz", buffered=True).status_code == 200  # public routes carry no principal
        ready = client.get("/readyz", buffered=True).json
        assert ready["checks"]["rate_limits"]["storage"] == "memory"
        events = [e for e in gw.events() if e.get("http_status") == 429]
        assert events and all(e["rate_limit"] == "per-minute" for e in events)
        assert gw.sample("airflow_gateway_rate_limited_total", limit="per-minute") == 2


def test_api_rules_and_cli_call_caps_in_the_api_endpoint(tmp_path: Path) -> None:
    table = [{"id": "v", "principal": "*", "api": "version", "limit": "1/minute"}]
    with unit_gateway(tmp_path, settings={"RATE_LIMITS__RULES": json.dumps(table)}) as gw:
        client = Client(gw.app)
        headers = {"rest_api_plugin_http_token": TOKEN}
        assert (
            client.post(
                "/admin/rest_api/api", data={"api": "version"}, headers=headers, buffered=True
            ).status_code
            == 200
        )
        second = client.post("/admin/rest_api/api", data={"api": "version"}, headers=headers, buffered=True)
        assert second.status_code == 429 and "RateLimit" in second.headers
        assert len(gw.runner.calls) == 1  # the refused call never reached the CLI
        assert (
            client.get("/admin/rest_api/api?api=list_dags", headers=headers, buffered=True).status_code == 200
        )


# --- Redis: shared counters, fallback and recovery ---------------------------------------


def test_counters_are_shared_between_two_workers_through_redis(redis_server: RedisServer) -> None:
    table = {"id": "shared", "principal": "*", "limit": "4/minute"}
    one, two = (limits(table, url=redis_server.url) for _ in range(2))
    for rl in (one, two, one, two):
        rl.check_request(CAROL, "/", record())
    for rl in (one, two):
        with pytest.raises(RateLimited):
            rl.check_request(CAROL, "/", record())
    assert one.readiness() == {"ok": True, "storage": "redis"}


@pytest.mark.parametrize("strategy", ["sliding-window", "fixed-window"])
def test_pipelined_hits_count_exactly_as_the_library_counts_them(
    redis_server: RedisServer, strategy: str
) -> None:
    """Several rules of one request share one round trip (the library's own scripts and keys on a
    pipeline): the library's own reading sees every hit, and the refused one is named."""
    counters = Counters(redis_server.url, strategy=strategy)
    MADE.append(RateLimits(RateLimitsConfig(), counters=counters))
    assert counters.shared is not None
    tag = f"pipe-{strategy}-{time.time_ns()}"
    five, three = parse("5/minute"), parse("3/minute")
    batch = [(five, (tag, "every", "")), (three, (tag, "api", "version"))]
    for _ in range(3):
        assert counters.hit_all(batch) is None
    assert counters.shared.get_window_stats(five, tag, "every", "").remaining == 2
    assert counters.shared.get_window_stats(three, tag, "api", "version").remaining == 0
    assert not counters.shared.test(three, tag, "api", "version")
    assert counters.hit_all(batch) == 1  # the API rule is over; the other was counted too
    assert counters.shared.get_window_stats(five, tag, "every", "").remaining == 1
    # Redis lost its scripts (a restart, SCRIPT FLUSH): they are loaded again, nothing is lost.
    redis.Redis.from_url(redis_server.url).script_flush()
    assert counters.hit_all(batch) == 1 and counters.degraded is None
    assert counters.shared.get_window_stats(five, tag, "every", "").remaining == 0
    assert counters.hit_all(batch) == 0  # both over now; the first is named


def test_the_layer_counts_an_api_named_in_the_query_with_the_request_once(tmp_path: Path) -> None:
    """An API rule is counted in the request layer's round trip when the query names the API,
    and not a second time by the endpoint."""
    table = [
        {"id": "every", "principal": "*", "limit": "100/minute"},
        {"id": "two-versions", "principal": "*", "api": "version", "limit": "2/minute"},
    ]
    with unit_gateway(tmp_path, settings={"RATE_LIMITS__RULES": json.dumps(table)}) as gw:
        client = Client(gw.app)
        headers = {"rest_api_plugin_http_token": TOKEN}

        def status(path: str, **kwargs: Any) -> int:
            return client.get(path, headers=headers, buffered=True, **kwargs).status_code

        assert [status("/admin/rest_api/api?api=version") for _ in range(2)] == [200, 200]
        assert status("/admin/rest_api/api?api=version") == 429
        assert len(gw.runner.calls) == 2  # each call counted once: the third is the one refused
        # Named in the path, or only in a POST body: refused the same way.
        assert status("/admin/rest_api/api/version") == 429
        body = client.post("/admin/rest_api/api", data={"api": "version"}, headers=headers, buffered=True)
        assert body.status_code == 429 and gw.events()[-1]["rate_limit"] == "two-versions"


def test_cap_slots_in_redis_are_shared_renewed_and_expire_when_not_renewed(redis_server: RedisServer) -> None:
    table = {"id": "caps", "principal": "*", "running_jobs": 1}
    one = limits(table, url=redis_server.url, lease_timeout=0.6)
    two = limits(table, url=redis_server.url, lease_timeout=0.6)
    release = one.slot("running_jobs", BOB, record())
    with pytest.raises(RateLimited):
        two.slot("running_jobs", BOB, record())
    time.sleep(1.0)  # renewed by one's thread meanwhile: still held
    with pytest.raises(RateLimited):
        two.slot("running_jobs", BOB, record())
    release()
    two.slot("running_jobs", BOB, record())  # released: taken (and never released nor renewed here...)
    # ...a crashed holder: a slot nobody renews frees itself after the lease.
    ghost = Counters(redis_server.url, lease_s=0.5)
    MADE.append(RateLimits(RateLimitsConfig(), counters=ghost))
    assert ghost.acquire("streams:token:ghost", 1) is not None
    ghost._held.clear()  # as if its process were gone: nothing renews it
    assert ghost.acquire("streams:token:ghost", 1) is None
    time.sleep(0.7)
    assert ghost.acquire("streams:token:ghost", 1) is not None


def test_unreachable_redis_falls_back_to_memory_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[bool] = []

    class Observer:
        def rate_limit_storage(self, shared: bool) -> None:
            seen.append(shared)

        def rate_limited(self, limit: str) -> None:
            pass

    config = RateLimitsConfig(rules=rules({"id": "r", "principal": "*", "limit": "2/minute"}))
    config = config.replace(
        storage_url=RateLimitsConfig.storage_url.parse(f"redis://127.0.0.1:{free_port()}/0")
    )
    rl = RateLimits(config, observer=Observer())
    MADE.append(rl)
    started = time.monotonic()
    rl.check_request(ALICE, "/", record())
    rl.check_request(ALICE, "/", record())
    with pytest.raises(RateLimited, match="Redis is unreachable"):  # never open: per worker
        rl.check_request(ALICE, "/", record())
    assert time.monotonic() - started < 2
    assert seen == [False]
    ready = rl.readiness()
    assert ready is not None and ready["degraded"] and "Redis unreachable" in ready["detail"]
    assert any("Redis is unreachable" in r.getMessage() for r in caplog.records)
    assert rl.try_slot("cli_calls", ALICE) is not None  # caps too, in memory


def test_fallback_comes_back_to_shared_when_redis_returns(tmp_path: Path) -> None:
    from tests.support.redis import start_redis

    server = start_redis(tmp_path)
    try:
        rl = limits({"id": "r", "principal": "*", "limit": "100/minute"}, url=server.url)
        rl.check_request(ALICE, "/", record())
        server.stop()
        rl.check_request(ALICE, "/", record())
        assert rl.counters.degraded is not None
        server.start()
        deadline = time.monotonic() + 10
        while rl.counters.degraded is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rl.counters.degraded is None and rl.readiness() == {"ok": True, "storage": "redis"}
    finally:
        server.close()


def test_readyz_says_degraded_but_stays_ready(tmp_path: Path) -> None:
    settings = {
        "RATE_LIMITS__RULES": json.dumps([{"principal": "*", "limit": "100/second"}]),
        "RATE_LIMITS__STORAGE_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    with unit_gateway(tmp_path, settings=settings) as gw:
        client = Client(gw.app)
        auth = {"rest_api_plugin_http_token": TOKEN}
        assert client.get("/admin/rest_api/api?api=version", headers=auth, buffered=True).status_code == 200
        assert gw.sample("airflow_gateway_rate_limit_storage_shared") == 0
        limits_check = gw.app.jobs.service.limits.readiness  # type: ignore[union-attr]
        MADE.append(gw.app.jobs.service.limits)  # type: ignore[arg-type]
    # The same check in a Health whose CLI exists (the unit gateway's Airflow is a made-up path).
    health = Health(install=AirflowInstall(sys.executable, "3.3.2", frozenset()), rate_limits=limits_check)
    ready = health.ready({})
    body = json.loads(ready.get_data())
    assert ready.status_code == 200 and body["status"] == "degraded"
    assert (
        body["checks"]["rate_limits"]["degraded"] is True
        and body["checks"]["rate_limits"]["storage"] == "memory"
    )
