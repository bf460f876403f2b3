"""DAG refresh on Airflow 1.10, which has no CLI command that writes parsed DAGs to its database.

A short script runs in Airflow's own interpreter (``python -I -c``, a separate process, as
the deploy syntax check does): it parses a file or the DAGs folder with Airflow's
``DagBag``, writes the ``DagModel`` rows (``DAG.sync_to_db``, what 1.10's scheduler does)
and sets ``DagModel.last_expired``, which makes the 1.10 webserver re-read the DAG's file
on its next view of it, without a restart: what the original plugin's ``refresh_dag`` and
1.10's own "refresh" button did.  The gateway never imports DAG code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gateway.core.errors import Refused
from gateway.execution.subprocess_runner import CliRunner

# argv: MODE TARGET.  MODE "folder": print the DAGs folder; "list": the DagModel rows;
# "expire": TARGET is a dag_id; "sync": TARGET is a file or folder to parse.
# One JSON line last on stdout.
_SCRIPT = r"""
import json, sys
mode, target = sys.argv[1], sys.argv[2]
from airflow import settings
if mode == "folder":
    print(json.dumps({"dags_folder": settings.DAGS_FOLDER}))
    sys.exit(0)
from airflow.models import DagBag, DagModel
from airflow.utils import timezone
from airflow.utils.db import create_session
now = timezone.utcnow()
out = {"dags": [], "import_errors": []}
if mode == "list":
    with create_session() as session:
        rows = session.query(DagModel).filter(DagModel.is_active, ~DagModel.is_subdag)
        for r in rows.order_by(DagModel.dag_id):
            out["dags"].append({"dag_id": r.dag_id, "is_paused": bool(r.is_paused), "fileloc": r.fileloc})
    print(json.dumps(out))
    sys.exit(0)
if mode == "sync":
    bag = DagBag(target, include_examples=False)
    for dag in bag.dags.values():
        if not dag.is_subdag:
            dag.sync_to_db()
    out["import_errors"] = [{"file": f, "error": e} for f, e in sorted(bag.import_errors.items())]
    ids = [d.dag_id for d in bag.dags.values()]
else:
    ids = [target]
with create_session() as session:
    for row in session.query(DagModel).filter(DagModel.dag_id.in_(ids)):
        row.last_expired = now
        out["dags"].append({"dag_id": row.dag_id, "fileloc": row.fileloc, "is_paused": bool(row.is_paused)})
print(json.dumps(out))
"""


class SyncError(Refused):
    """Airflow's Python could not do it: a 500 whose ``output`` is the script's streams."""

    def __init__(self, message: str, output: dict[str, str]) -> None:
        super().__init__(message, 500, output={**output, "stdin": ""}, extra={"error": message})
        self.streams = output

    def but(self, prefix: str) -> SyncError:
        """The same failure, its ``error`` said after ``prefix`` ("the file was written but ...")."""
        return SyncError(f"{prefix} {self.message}", self.streams)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What the script reported: DAGs written and expired, import errors, the raw streams."""

    dags: list[dict[str, Any]] = field(default_factory=list)
    import_errors: list[dict[str, str]] = field(default_factory=list)
    duration_s: float = 0.0


class DagSync110:
    """Runs the refresh script with Airflow 1.10's interpreter.

    :param python: the interpreter of Airflow's ``airflow`` script.
    """

    def __init__(self, runner: CliRunner, python: str) -> None:
        self.runner = runner
        self.python = python

    def _run(self, mode: str, target: str, timeout_s: float) -> dict[str, Any]:
        argv = [self.python, "-I", "-c", _SCRIPT, mode, target]
        result = self.runner.run(argv, timeout_s=timeout_s)
        streams = {"stdout": result.stdout[-4000:], "stderr": result.stderr[-4000:]}
        lines = result.stdout.strip().splitlines()
        if result.timed_out:
            raise SyncError("Airflow did not finish parsing in time", streams)
        if result.returncode != 0 or not lines:
            raise SyncError(f"Airflow's DAG refresh failed (exit code {result.returncode})", streams)
        try:
            data = json.loads(lines[-1])
        except ValueError:
            raise SyncError("Airflow's DAG refresh printed no result", streams) from None
        if not isinstance(data, dict):
            raise SyncError("Airflow's DAG refresh printed no result", streams)
        data["_duration_s"] = result.duration_s
        return data

    def dags_folder(self, timeout_s: float) -> str:
        """Airflow's ``[core] dags_folder`` as Airflow itself resolves it."""
        return str(self._run("folder", "-", timeout_s).get("dags_folder", ""))

    def sync(self, target: str, timeout_s: float) -> SyncResult:
        """Parse ``target`` (a file or folder), write its DAGs' rows and expire them."""
        data = self._run("sync", target, timeout_s)
        return SyncResult(data.get("dags", []), data.get("import_errors", []), data["_duration_s"])

    def list_dags(self, timeout_s: float) -> list[dict[str, Any]]:
        """The active DAGs Airflow's database knows (what ``list_dags -o json`` gives on 2.x/3.x)."""
        return list(self._run("list", "-", timeout_s).get("dags", []))

    def expire(self, dag_id: str, timeout_s: float) -> SyncResult:
        """Mark one DAG expired; ``dags`` is empty when Airflow has no such DAG."""
        data = self._run("expire", dag_id, timeout_s)
        return SyncResult(data.get("dags", []), [], data["_duration_s"])
