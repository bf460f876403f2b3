"""16 concurrent writing CLI calls through the gateway, with Airflow's metadata on PostgreSQL.

Variables, pools and DAG runs written at once by 16 clients (16 Airflow CLI processes at
once) all succeed, and the final state holds every write. SQLite is not
tried: its single writer lock is exactly what production Airflow avoids.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.e2e.conftest import TOKEN, TOKEN_HEADER
from tests.support.airflow import AirflowHome
from tests.support.http import get
from tests.support.servers import GatewayServer, start_gateway

DAG = "gw_example"
CALLS = 16


@pytest.fixture(scope="module", params=["airflow3_pg", "airflow2_pg"])
def pg_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    """The gateway in front of an Airflow on PostgreSQL, with room for queued CLI calls."""
    airflow: AirflowHome = request.getfixturevalue(request.param)
    server = start_gateway(
        airflow,
        tmp_path_factory.mktemp(f"gw-{request.param}"),
        settings={
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
            # All 16 run at once (the point is PostgreSQL under 16 writers): with the default 4
            # slots per worker the rest queue, and a queued call gets 503 after 30 s, which a
            # loaded CI machine reaches (seen once). Long timeouts for the same reason.
            "CLI__MAX_CONCURRENT": str(CALLS),
            "CLI__DEFAULT_TIMEOUT": "600",
        },
    )
    yield server
    server.stop()


def _call(gateway: GatewayServer, api: str, **args: str) -> tuple[int, dict[str, Any]]:
    reply = get(gateway.api(urlencode({"api": api, **args})), headers=TOKEN_HEADER, timeout=900)
    return reply.status, reply.json


def test_sixteen_concurrent_writes_all_succeed(pg_gateway: GatewayServer) -> None:
    writes: list[tuple[str, dict[str, str]]] = []
    for i in range(6):
        writes.append(("variables", {"set": f"conc_var_{i}", "set_value": f"value-{i}"}))
    for i in range(5):
        writes.append(("pool", {"set": f"conc_pool_{i} {i + 1} concurrent pool {i}"}))
    for i in range(5):
        writes.append(
            (
                "trigger_dag",
                {"dag_id": DAG, "run_id": f"conc_run_{i}", "execution_date": f"2026-10-{i + 1:02d}"},
            )
        )
    assert len(writes) == CALLS
    start = threading.Barrier(CALLS)

    def fire(write: tuple[str, dict[str, str]]) -> Callable[[], tuple[int, dict[str, Any]]]:
        def run() -> tuple[int, dict[str, Any]]:
            start.wait(timeout=60)
            return _call(pg_gateway, write[0], **write[1])

        return run

    with ThreadPoolExecutor(CALLS) as pool:
        futures = [pool.submit(fire(write)) for write in writes]
        results = [future.result(timeout=1200) for future in futures]
    failures = [(w, s, b.get("output")) for w, (s, b) in zip(writes, results, strict=True) if s != 200]
    assert not failures, failures

    status, body = _call(pg_gateway, "variables", output="json")
    assert status == 200, body
    variables = {row["key"]: row.get("val", row.get("value")) for row in body["data"]}
    for i in range(6):
        status, body = _call(pg_gateway, "variables", get=f"conc_var_{i}")
        assert status == 200 and body["output"]["stdout"].rstrip("\n") == f"value-{i}", body
    assert {f"conc_var_{i}" for i in range(6)} <= set(variables)
    status, body = _call(pg_gateway, "list_pools", output="json")
    pools = {row["pool"]: str(row["slots"]) for row in body["data"]}
    assert all(pools.get(f"conc_pool_{i}") == str(i + 1) for i in range(5)), pools
    status, body = _call(pg_gateway, "list_dag_runs", dag_id=DAG, output="json")
    run_ids = {row["run_id"] for row in body["data"]}
    assert {f"conc_run_{i}" for i in range(5)} <= run_ids, run_ids
