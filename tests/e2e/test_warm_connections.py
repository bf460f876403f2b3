"""No database connection crosses the warm server's fork (issue 26), on real Airflow 3 and 2.

The warm parent connects to warm SQLAlchemy's statement cache (``steps.py``: ``database``),
then must close every connection before it forks a call or a pooled child.  Two checks:

- the warm server holds no descriptor on the SQLite database (a SQLite connection *is* an open
  file) once warm, while children run calls, and while its pool waits; the negative control
  (a warm-up step that keeps a connection) shows that this check sees a leaked connection;
- no call's child ever checks out a connection that another process opened, and each opened
  its own (``tests/support/warm_connections.py``, imported into the warm server first).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.execution.subprocess_runner import Admission, SubprocessRunner
from gateway.execution.warm.steps import WARM_UP
from gateway.execution.warm.warm_runner import WarmLimits, WarmRunner
from tests.support.airflow import AirflowHome

pytestmark = pytest.mark.airflow_versions("airflow3", "airflow2")
ROOT = Path(__file__).resolve().parents[2]
DAG = "gw_example"


def _runner(airflow: AirflowHome, tmp: Path, log: Path, *, leak: bool = False) -> WarmRunner:
    env = airflow.process_env()
    env.update({"PYTHONPATH": str(ROOT), "GATEWAY_TEST_CONNECTIONS": str(log)})
    steps = {key: list(value) for key, value in WARM_UP[airflow.major].items()}
    steps["imports"] = ["tests.support.warm_connections", *steps["imports"]]
    if leak:
        steps["calls"] = [*steps["calls"], "tests.support.warm_connections:leak"]
    cold = SubprocessRunner(env=env, cwd=tmp / "work", max_output_bytes=1 << 20, admission=Admission(4))
    python = airflow.executable.read_text().splitlines()[0][2:].strip()
    return WarmRunner(cold=cold, python=python, executable=str(airflow.executable), steps=steps,
                      state_dir=tmp / "state", limits=WarmLimits(pool_size=2))  # fmt: skip


def _started(runner: WarmRunner, within_s: float = 240.0) -> int:
    runner.start()
    deadline = time.monotonic() + within_s
    while runner.process is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runner.process is not None and runner.process.pid is not None, (
        runner.state_dir / "warm" / "server.log"
    ).read_text()[-3000:]
    return runner.process.pid


def _database_fds(pid: int, airflow: AirflowHome) -> list[str]:
    """The process's open descriptors on the SQLite database (and its journal / WAL files)."""
    db = str(airflow.home / "airflow.db")
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(db):
            out.append(target)
    return out


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "connections.log"
    path.write_text("")
    yield path


def test_no_connection_opened_by_the_warm_parent_reaches_a_child(
    airflow: AirflowHome, tmp_path: Path, log: Path
) -> None:
    # The check reads the homes' SQLite file descriptors; this module runs on SQLite homes only
    # (no postgres marker): fail loudly if that changes, rather than pass without checking.
    assert airflow.backend == "sqlite", "the descriptor check reads the SQLite database file"
    runner = _runner(airflow, tmp_path, log)
    try:
        server = _started(runner)
        opened = [line.split() for line in log.read_text().splitlines()]
        assert ["open", str(server)] in opened  # it did connect: the statement cache was warmed
        assert _database_fds(server, airflow) == []  # ... and closed everything before forking
        date_flag = "--logical-date" if airflow.major == "3" else "--exec-date"
        airflow.cli("dags", "trigger", DAG, "--run-id", "conn_run", date_flag, "2026-10-07T00:00:00+00:00")
        calls = [
            ["variables", "get", "no_such_key_conn"],
            ["pools", "get", "default_pool"],
            ["dags", "state", DAG, "2026-10-07T00:00:00+00:00"],
            ["dags", "list"],
        ]
        children: set[int] = set()
        for argv in calls * 2:  # pooled children, and their replacements
            res = runner.run([str(airflow.executable), *argv], timeout_s=120)
            assert res.runner == "warm" and res.returncode in (0, 1), res.stderr[-2000:]
            assert _database_fds(server, airflow) == []
        for line in log.read_text().splitlines():
            kind, *pids = line.split()
            assert kind != "foreign", f"a child used a connection opened by pid {pids[0]}: {line}"
            if int(pids[0]) != server:
                children.add(int(pids[0]))
        assert len(children) >= len(calls), children  # each call's child opened its own
    finally:
        runner.close()


def test_the_check_sees_a_connection_the_parent_kept(airflow: AirflowHome, tmp_path: Path, log: Path) -> None:
    """The negative control: a warm-up step that keeps a connection is seen by the check above."""
    # The check reads the homes' SQLite file descriptors; this module runs on SQLite homes only
    # (no postgres marker): fail loudly if that changes, rather than pass without checking.
    assert airflow.backend == "sqlite", "the descriptor check reads the SQLite database file"
    runner = _runner(airflow, tmp_path, log, leak=True)
    try:
        server = _started(runner)
        assert _database_fds(server, airflow) != []
    finally:
        runner.close()
