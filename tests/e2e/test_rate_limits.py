"""Many instances for real (issue 27): rate limits shared through a real redis-server, their
fallback while Redis is down, and jobs that outlive their instance, on a real PostgreSQL job
store, with two gateway instances (real gunicorn) in front of one Airflow 3.

One gunicorn worker per instance, so that "per instance" and "per worker" are the same thing
while Redis is down (memory counters are per worker process; docs/deployment.md).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from gateway.identity.tokens import hash_token
from tests.e2e.test_jobs import POLICY, SLOW, slow_processes
from tests.support.airflow import AirflowHome
from tests.support.airflow_servers import AirflowServer
from tests.support.http import Reply, get
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer
from tests.support.servers import GatewayServer, start_gateway

pytestmark = pytest.mark.airflow3

NAMES = ("alice", "bob", "carol", "dave", "erin")
TOKENS = {name: f"{name}-token-RATELIMITS-0123456789abcdefghijkl" for name in NAMES}
AUTH = {name: {"X-Gateway-Authorization": f"Bearer {value}"} for name, value in TOKENS.items()}
LEASE_S = 6.0
RULES = [
    {"id": "default", "principal": "*", "limit": "600/minute"},
    {"id": "alice-minute", "principal": "alice", "limit": "6/minute"},
    {"id": "carol-minute", "principal": "carol", "limit": "4/minute"},
    {"id": "dave-minute", "principal": "dave", "limit": "4/minute"},
    {"id": "caps", "principal": "*", "running_jobs": 2, "queued_jobs": 2, "streams": 2, "cli_calls": 2},
]


@dataclass
class Pair:
    a: GatewayServer
    b: GatewayServer
    redis: RedisServer
    audit: list[Path]

    def events(self, index: int) -> list[dict[str, Any]]:
        path = self.audit[index]
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def pair(
    airflow3_pg: AirflowHome,
    airflow3_pg_api: AirflowServer,
    postgres: PostgresServer,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("rate-limits")
    policies = tmp / "policies"
    policies.mkdir()
    (policies / "ops.toml").write_text(POLICY)
    tokens = [{"name": n, "sha256": hash_token(t), "groups": ["ops"]} for n, t in TOKENS.items()]
    shared = {
        "AUTH__TOKENS": json.dumps(tokens),
        "POLICY__DIR": str(policies),
        "PROXY__UPSTREAM": airflow3_pg_api.url,
        "CLI__RUNNER": "cold",  # no warm Airflow process per worker: the machine has two cores
        "JOBS__DATABASE_URL": postgres.create_database("gateway_rate_limits"),
        "JOBS__LEASE_TIMEOUT": str(LEASE_S),
        "RATE_LIMITS__STORAGE_URL": redis_server.url,
        "RATE_LIMITS__RULES": json.dumps(RULES),
    }
    servers: list[GatewayServer] = []
    audit = [tmp / f"instance-{i}" / "audit.jsonl" for i in range(2)]
    try:
        for i, path in enumerate(audit):
            servers.append(
                start_gateway(
                    airflow3_pg,
                    tmp / f"instance-{i}",
                    settings={**shared, "AUDIT__FILE": str(path)},
                    workers=1,
                )
            )
        yield Pair(servers[0], servers[1], redis_server, audit)
    finally:
        for server in servers:
            server.stop()


def whoami(server: GatewayServer, who: str) -> Reply:
    return get(server.api("api=whoami"), headers=AUTH[who])


def ready(server: GatewayServer) -> dict[str, Any]:
    reply = get(f"{server.url}/readyz")
    assert reply.status == 200, reply.body[:500]  # degraded or not, always ready
    return reply.json  # type: ignore[no-any-return]


def metric(server: GatewayServer, name: str, **labels: str) -> float | None:
    text = get(f"{server.url}/metrics").body.decode()
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            return float(match.group(2))
    return None


def wait(what: Any, within_s: float, step: float = 0.2) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        value = what()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def test_a_principal_over_its_limit_gets_429_from_every_instance(pair: Pair) -> None:
    statuses = [whoami(server, "alice").status for server in (pair.a, pair.b) * 3]
    assert statuses == [200] * 6, "6/minute, counted once across both instances"
    for server in (pair.a, pair.b):
        refused = whoami(server, "alice")
        assert refused.status == 429, refused.body[:500]
        assert refused.headers["RateLimit-Policy"] == '"alice-minute";q=6;w=60'
        retry = int(refused.headers["Retry-After"])
        assert 1 <= retry <= 60 and refused.headers["RateLimit"] == f'"alice-minute";r=0;t={retry}'
        assert "alice-minute" in refused.json["output"]
        # Proxied paths count too (every-request rule), before Airflow is asked.
        proxied = get(f"{server.url}/api/v2/version", headers=AUTH["alice"])
        assert proxied.status == 429 and proxied.headers["RateLimit-Policy"].startswith('"alice-minute"')
    # Another principal is unaffected, on both instances.
    assert [whoami(server, "bob").status for server in (pair.a, pair.b) * 2] == [200] * 4
    for index, server in enumerate((pair.a, pair.b)):
        refused_events = wait(
            lambda i=index: [e for e in pair.events(i) if e.get("http_status") == 429], within_s=10
        )
        assert refused_events and {e["rate_limit"] for e in refused_events} == {"alice-minute"}
        assert {e["principal"] for e in refused_events} == {"alice"}
        assert (metric(server, "airflow_gateway_rate_limited_total", limit="alice-minute") or 0) >= 2
        assert ready(server)["checks"]["rate_limits"] == {"ok": True, "storage": "redis"}


def test_redis_down_means_per_instance_limits_and_back_means_shared(pair: Pair) -> None:
    pair.redis.stop()
    try:
        # Each instance counts alone now: carol gets 4 a minute from each, never unlimited.
        for server in (pair.a, pair.b):
            assert [whoami(server, "carol").status for _ in range(4)] == [200] * 4
            refused = whoami(server, "carol")
            assert refused.status == 429 and "Redis is unreachable" in refused.json["output"]
        for server in (pair.a, pair.b):
            body = wait(lambda s=server: ready(s)["status"] == "degraded" and ready(s), within_s=5)
            assert body, ready(server)
            assert body["checks"]["rate_limits"]["degraded"] is True
            assert "Redis unreachable" in body["checks"]["rate_limits"]["detail"]
            assert metric(server, "airflow_gateway_rate_limit_storage_shared") == 0
            assert "rate limits: Redis is unreachable" in server.log_text()
    finally:
        pair.redis.start()  # same port, empty
    for server in (pair.a, pair.b):
        assert wait(lambda s=server: ready(s)["status"] == "ok", within_s=10), ready(server)
        assert metric(server, "airflow_gateway_rate_limit_storage_shared") == 1
        assert "Redis answers again" in server.log_text()
    # Shared again: dave's 4 a minute are counted across both instances.
    assert [whoami(server, "dave").status for server in (pair.a, pair.b) * 2] == [200] * 4
    assert [whoami(server, "dave").status for server in (pair.a, pair.b)] == [429, 429]


def job(server: GatewayServer, who: str, job_id: str) -> dict[str, Any]:
    reply = get(f"{server.url}/admin/rest_api/jobs/{job_id}", headers=AUTH[who])
    assert reply.status == 200, reply.body[:500]
    return reply.json  # type: ignore[no-any-return]


def test_kill_9_of_a_whole_instance_fails_its_running_job_within_the_lease(pair: Pair) -> None:
    marker = "seq 1 397"
    query = urlencode({
        "api": "test", "mode": "job", "dag_id": SLOW, "task_id": "lines", "execution_date": "2026-12-01",
        "task_params": json.dumps({"n": 397}),
    })  # fmt: skip
    reply = get(pair.b.api(query), headers=AUTH["erin"])
    assert reply.status == 202, reply.body[:1000]
    job_id = reply.json["output"]["job_id"]
    try:
        started = wait(
            lambda: (found := job(pair.a, "erin", job_id))["state"] == "running" and found["output_chars"] > 0,
            within_s=180, step=0.5,
        )  # fmt: skip
        assert started, job(pair.a, "erin", job_id)
        os.killpg(pair.b.proc.pid, signal.SIGKILL)  # the gunicorn master and its worker, at once
        killed_at = time.monotonic()
        pair.b.proc.wait(timeout=10)
        ended = wait(lambda: job(pair.a, "erin", job_id)["state"] != "running", within_s=LEASE_S * 3)
        took = time.monotonic() - killed_at
        found = job(pair.a, "erin", job_id)
        assert ended and found["state"] == "failed", found
        # The lease (6 s) lapses at most 6 s after the kill, and is checked every sixth of it.
        assert took <= LEASE_S + LEASE_S / 6 + 2.5, took
        assert re.search(r"instance \S+ stopped renewing its lease at \d{4}-\d\d-\d\dT", found["reason"])
        assert found["instance"] in found["reason"] and "could not be killed" in found["reason"]
        # Pollers of the output learn it too: the stream is done.
        output = get(
            f"{pair.a.url}/admin/rest_api/jobs/{job_id}/output?format=json", headers=AUTH["erin"]
        ).json
        assert output["state"] == "failed" and output["done"] is True
    finally:
        for pid in slow_processes(marker):  # the orphan on "that host" (here, this one)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
