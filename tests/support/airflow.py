"""A real Airflow home (SQLite, or a PostgreSQL database) built from one of the bootstrap's Airflow venvs."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parent.parent / "dags"
VENV_VARS = {
    "3": "AIRFLOW_GATEWAY_TEST_AIRFLOW3",
    "2": "AIRFLOW_GATEWAY_TEST_AIRFLOW2",
    "1.10": "AIRFLOW_GATEWAY_TEST_AIRFLOW1",
}


def airflow_venv(major: str) -> Path:
    """The Airflow virtualenv for ``major``, as installed by ``scripts/bootstrap``."""
    var = VENV_VARS[major]
    value = os.environ.get(var)
    if not value or not (Path(value) / "bin" / "airflow").exists():
        pytest.fail(f"{var} is not set to an Airflow virtualenv: run the suite with scripts/test")
    return Path(value)


@dataclass
class AirflowHome:
    """An initialised ``AIRFLOW_HOME`` with the test DAGs, and a way to run its CLI."""

    major: str
    venv: Path
    home: Path
    env: dict[str, str] = field(default_factory=dict)
    # SQLAlchemy URL of the metadata database; None: SQLite in the home (Airflow's default).
    db_url: str | None = None
    #: the CLI runner of the gateways that tests start in front of this home ("warm", "cold")
    gateway_runner: str = "warm"

    @property
    def backend(self) -> str:
        return "postgres" if self.db_url else "sqlite"

    @property
    def executable(self) -> Path:
        return self.venv / "bin" / "airflow"

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    def airflow_env(self) -> dict[str, str]:
        """``AIRFLOW__*`` settings every process touching this home must share."""
        env = {
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            # Airflow 1.10 reads the log folder from [core].
            **({"AIRFLOW__CORE__BASE_LOG_FOLDER": str(self.home / "logs")} if self.major == "1.10" else {}),
        }
        if self.db_url:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.db_url
        return env

    def process_env(self) -> dict[str, str]:
        env = {
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
            "HOME": os.environ.get("HOME", str(self.home)),
            "LANG": "C.UTF-8",
            "AIRFLOW_HOME": str(self.home),
        }
        env.update(self.airflow_env())
        return env

    def cli(self, *args: str, timeout: float = 180.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` directly (to prepare state or to check an effect)."""
        done = subprocess.run(
            [str(self.executable), *args],
            env=self.process_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of a read-only query on this home's sqlite metadata database (to check effects
        where the CLI prints no JSON, i.e. on Airflow 1.10)."""
        db = self.home / "airflow.db"
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
            return list(conn.execute(query, params))


def make_airflow_home(
    major: str, home: Path, db_url: str | None = None, *, gateway_runner: str = "warm"
) -> AirflowHome:
    """Create, migrate and parse a fresh Airflow home under ``home`` (metadata in ``db_url`` if given)."""
    venv = airflow_venv(major)
    af = AirflowHome(major=major, venv=venv, home=home, db_url=db_url, gateway_runner=gateway_runner)
    af.dags_folder.mkdir(parents=True, exist_ok=True)
    for dag in DAGS.glob("*.py"):
        shutil.copy(dag, af.dags_folder / dag.name)
    if major == "1.10":
        af.cli("initdb", timeout=600)
        # 1.10 has no reserialize: the scheduler's file processor writes the DagModel rows
        # that trigger_dag and pause need.  One loop; the DAG is paused, so nothing runs.
        af.cli("scheduler", "-n", "1", timeout=300)
        return af
    af.cli("db", "migrate", timeout=600)
    af.cli("dags", "reserialize", timeout=300)
    return af
