"""``clear`` answers how many task instances it cleared (``cleared``), on real Airflow 3, 2 and 1.10.

Each count is checked against Airflow's metadata database read before and after the call: the
task instances whose state the call reset are exactly the ones counted.  The module has one DAG
run of its own (its own run id and day), and every clear is bounded to that day, so runs of other
modules sharing the Airflow home are never touched.  Also run with 3.x and 2.x on PostgreSQL, where
the ids and timestamps the read-back compares come back as other types.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.e2e.conftest import TOKEN_HEADER
from tests.support.airflow import AirflowHome
from tests.support.http import get
from tests.support.servers import GatewayServer

DAG = "gw_example"
RUN_ID = "clear_count_run"
DAY = "2026-07-14"
RUN_DATE = f"{DAY}T00:00:00+00:00"
FAILED = ("failed", "upstream_failed")
pytestmark = pytest.mark.postgres


def call(gateway: GatewayServer, api: str, **args: str) -> dict[str, Any]:
    reply = get(gateway.api(urlencode({"api": api, **args})), headers=TOKEN_HEADER)
    body: dict[str, Any] = reply.json
    return body


def clear(gateway: GatewayServer, **filters: str) -> dict[str, Any]:
    """A clear of the module's day: the run's task instances only."""
    body = call(gateway, "clear", dag_id=DAG, start_date=DAY, end_date=DAY, **filters)
    assert (body["http_response_code"], body["status"]) == (200, "OK"), json.dumps(body, indent=1)[:3000]
    assert set(body["output"]) == {"stdout", "stderr", "stdin"}  # the plugin's output, unchanged
    return body


def states(airflow: AirflowHome) -> dict[str, str | None]:
    """task_id -> state of the module's run, from Airflow's database (on PostgreSQL: Airflow's CLI)."""
    if airflow.backend != "sqlite":  # only 3.x and 2.x homes run on PostgreSQL
        printed = airflow.cli("tasks", "states-for-dag-run", DAG, RUN_ID, "-o", "json").stdout
        rows = json.loads(printed.strip().splitlines()[-1])
        return {row["task_id"]: row["state"] or None for row in rows}  # 3.x prints "" for none
    if airflow.major == "1.10":  # no run_id column on 1.10's task_instance
        query = "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND execution_date LIKE ?"
        rows = airflow.sql(query, DAG, f"{DAY}%")
    else:
        rows = airflow.sql(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", DAG, RUN_ID
        )
    return {str(task): None if state is None else str(state) for task, state in rows}


def reset_by(before: dict[str, str | None], after: dict[str, str | None]) -> set[str]:
    """The task instances a clear reset: had a state, have none now."""
    return {task for task, state in before.items() if state is not None and after[task] is None}


def run_task(gateway: GatewayServer, airflow: AirflowHome, task: str) -> None:
    """Run one task of the module's run, recording its state (a failure answers an error: not checked)."""
    if airflow.major == "3":  # Airflow 3 has no `tasks run`; `tasks test` with a run id records the state
        call(gateway, "test", dag_id=DAG, task_id=task, execution_date=RUN_ID)
    else:
        # force: 2.x's mini scheduler may already have set the next task to "scheduled"
        call(gateway, "run", dag_id=DAG, task_id=task, execution_date=RUN_DATE, local="on", force="on")


@pytest.fixture(scope="module")
def seeded(gateway: GatewayServer, airflow: AirflowHome) -> dict[str, str | None]:
    """The module's run with every task run once: ``boom`` fails where the run's conf reaches it."""
    body = call(gateway, "trigger_dag", dag_id=DAG, run_id=RUN_ID, execution_date=RUN_DATE, conf='{"rc": 1}')
    assert body["status"] == "OK", json.dumps(body)[:2000]
    for task in ("first", "second", "boom"):
        run_task(gateway, airflow, task)
    found = states(airflow)
    assert found["first"] == found["second"] == "success", found
    # 1.10 does not let a run's conf override params (dag_run_conf_overrides_params is off).
    assert found["boom"] == ("success" if airflow.major == "1.10" else "failed"), found
    return found


def test_clear_counts_what_each_filter_cleared(
    gateway: GatewayServer, airflow: AirflowHome, seeded: dict[str, str | None]
) -> None:
    """only_failed, a task regex with its downstream, then the whole run: each count is what was reset."""
    before = states(airflow)
    body = clear(gateway, only_failed="on")
    after = states(airflow)
    failed = {task for task, state in before.items() if state in FAILED}
    assert reset_by(before, after) == failed and all(after[t] == before[t] for t in set(before) - failed)
    # 3 and 2 leave a trace of what a state filter cleared; 1.10 says "Nothing to clear." here.
    assert body["cleared"] == len(failed) == (0 if airflow.major == "1.10" else 1), body
    assert body["warning"] is None

    before = after
    body = clear(gateway, task_regex="first", downstream="on")
    after = states(airflow)
    assert reset_by(before, after) == {"first", "second"} and after["boom"] == before["boom"]
    assert body["cleared"] == 2, body

    body = clear(gateway)  # the whole run: Airflow clears (and counts) every task instance of it
    after = states(airflow)
    assert body["cleared"] == len(after) == 3 and set(after.values()) == {None}, (body, after)


def test_a_clear_that_matches_nothing_counts_zero(
    gateway: GatewayServer, airflow: AirflowHome, seeded: dict[str, str | None]
) -> None:
    """No running task instance: 2.x and 1.10 print "Nothing to clear.", 3 prints nothing; all answer 0."""
    before = states(airflow)
    body = clear(gateway, only_running="on")
    assert body["cleared"] == 0 and states(airflow) == before, body


@pytest.mark.airflow_versions("airflow3", "airflow2")
def test_only_failed_counts_the_failed_task_instance_it_cleared(
    gateway: GatewayServer, airflow: AirflowHome, seeded: dict[str, str | None]
) -> None:
    """A failed instance among ones already cleared: only it is counted (3: new ids; 2: updated_at)."""
    run_task(gateway, airflow, "boom")
    before = states(airflow)
    assert before["boom"] == "failed", before
    body = clear(gateway, only_failed="on")
    assert reset_by(before, states(airflow)) == {"boom"} and body["cleared"] == 1, body


@pytest.mark.airflow_versions("airflow110")
def test_only_failed_on_110_is_counted_before_the_call(
    gateway: GatewayServer, airflow: AirflowHome, seeded: dict[str, str | None]
) -> None:
    """1.10 leaves no trace of what a state filter cleared: the count is taken before the call,
    with the call's own filters.  (1.10 cannot fail ``boom`` through a run's conf: the test marks
    one instance failed in the database itself.)"""
    run_task(gateway, airflow, "second")
    with contextlib.closing(sqlite3.connect(airflow.home / "airflow.db", timeout=30)) as conn, conn:
        conn.execute(
            "UPDATE task_instance SET state = 'failed' WHERE dag_id = ? AND task_id = 'second'"
            " AND execution_date LIKE ?",
            (DAG, f"{DAY}%"),
        )
    before = states(airflow)
    assert before["second"] == "failed", before
    body = clear(gateway, only_failed="on")
    assert reset_by(before, states(airflow)) == {"second"}, body
    assert body["cleared"] == 1 and body["warning"] is None, body
