"""Jobs across gateway instances (issue 15), on real Airflow 3.

Two gateway instances (one gunicorn worker each, separate state directories) share one
job store in a real PostgreSQL server started for this module: a job submitted on one is
watched and cancelled from the other.  Restart recovery uses the SQLite store: a gateway
killed with its job running comes back and records the job as failed, with the reason.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_jobs import (
    AUTH,
    DAG,
    SLOW,
    job_url,
    jobs_settings,
    slow_processes,
    status,
    submit,
    wait_done,
    wait_for_line,
)
from tests.support.airflow import AirflowHome
from tests.support.http import get, request
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.servers import GatewayServer, start_gateway
from tests.support.sse import EventStream


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = start_postgres(tmp_path_factory.mktemp("jobs-pg"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pair(
    airflow3: AirflowHome, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayServer, GatewayServer]]:
    """Two instances, one PostgreSQL job store."""
    url = postgres.create_database("gateway_jobs")
    servers = []
    for name in ("a", "b"):
        tmp = tmp_path_factory.mktemp(f"jobs-pg-{name}")
        settings = {**jobs_settings(tmp), "JOBS__DATABASE_URL": url}
        servers.append(start_gateway(airflow3, tmp, settings=settings, workers=1))
    yield servers[0], servers[1]
    for server in servers:
        server.stop()


def test_submit_on_one_instance_watch_and_cancel_on_the_other(
    pair: tuple[GatewayServer, GatewayServer],
) -> None:
    a, b = pair
    done = submit(a, "alice", "version")["output"]["job_id"]
    job = wait_done(b, "alice", done)
    assert job["state"] == "succeeded" and job["envelope"]["status"] == "OK" and job["instance"]
    marker = "seq 1 62"
    job_id = submit(a, "alice", "test", dag_id=SLOW, task_id="lines", execution_date="2026-11-14",
                    task_params='{"n": 62}')["output"]["job_id"]  # fmt: skip
    wait_for_line(b, "alice", job_id)  # output read on b, produced on a
    assert status(b, "bob", job_id).status == 404
    reply = request("DELETE", job_url(b, job_id), headers=AUTH["alice"])
    assert reply.status == 202 and reply.json["cancel_requested"]
    job = wait_done(b, "alice", job_id, timeout=60)
    assert job["state"] == "cancelled"
    deadline = time.monotonic() + 15
    while slow_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slow_processes(marker) == []
    listed = get(f"{a.url}/admin/rest_api/jobs", headers=AUTH["root"]).json["jobs"]
    assert {done, job_id} <= {j["job_id"] for j in listed}
    # The end of the output is visible from either instance.
    for server in (a, b):
        stream = EventStream(job_url(server, job_id, "/output"), AUTH["alice"])
        try:
            ends = [e for e in stream if e.name == "end"]
        finally:
            stream.close()
        assert ends and ends[0].json["state"] == "cancelled"


def test_restart_marks_the_lost_job_failed(airflow3: AirflowHome, tmp_path: Path) -> None:
    """SIGKILL the whole gateway mid-job; on start it records the job failed, with the reason."""
    state = tmp_path / "state"
    settings = {**jobs_settings(tmp_path), "GATEWAY__STATE_DIR": str(state)}
    first = start_gateway(airflow3, tmp_path, settings=settings, workers=1)
    marker = "seq 1 12"
    try:
        job_id = submit(first, "alice", "test", dag_id=SLOW, task_id="lines", execution_date="2026-11-15",
                        task_params='{"n": 12}')["output"]["job_id"]  # fmt: skip
        wait_for_line(first, "alice", job_id)
    finally:
        os.killpg(first.proc.pid, signal.SIGKILL)  # no shutdown hook runs: as after a crash
        first.proc.wait()
    second = start_gateway(airflow3, tmp_path, settings=settings, workers=1)
    try:
        job = status(second, "alice", job_id).json
        assert job["state"] == "failed", json.dumps(job)
        assert "is gone" in job["reason"] and str(job_id)
        events = [json.loads(line) for line in second.log_text().splitlines() if '"gateway.job"' in line]
        assert any(e["job_id"] == job_id and e["state"] == "failed" for e in events)
        again = submit(second, "alice", "list_tasks", dag_id=DAG)["output"]["job_id"]
        assert wait_done(second, "alice", again)["state"] == "succeeded"
    finally:
        second.stop()
        deadline = time.monotonic() + 30  # the orphaned task (12 lines) ends by itself
        while slow_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.5)


def test_graceful_stop_kills_running_jobs_and_records_them(airflow2: AirflowHome, tmp_path: Path) -> None:
    """SIGTERM (shutdown, worker recycling): the job's tree is killed and the job recorded failed."""
    settings = {**jobs_settings(tmp_path), "GATEWAY__STATE_DIR": str(tmp_path / "state")}
    first = start_gateway(airflow2, tmp_path, settings=settings, workers=1)
    marker = "seq 1 63"
    try:
        job_id = submit(first, "alice", "test", dag_id=SLOW, task_id="lines", execution_date="2026-11-16",
                        task_params='{"n": 63}')["output"]["job_id"]  # fmt: skip
        wait_for_line(first, "alice", job_id)
        assert slow_processes(marker)
    finally:
        first.stop()
    assert slow_processes(marker) == []
    second = start_gateway(airflow2, tmp_path, settings=settings, workers=1)
    try:
        job = status(second, "alice", job_id).json
        assert (job["state"], job["reason"]) == ("failed", "the gateway worker stopped and killed the job")
    finally:
        second.stop()
