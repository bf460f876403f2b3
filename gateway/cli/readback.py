"""Facts Airflow's CLI does not print, read back after a successful call.

Airflow 3's ``backfill create`` prints nothing on success: the backfill's id is read back
from Airflow's database with Airflow's own Python (its models and session), as the CLI
itself would, through the same runner (admission, timeout, kill) as the call.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from gateway.cli.interpreter import Plan
from gateway.cli.runner import CliRunner
from gateway.envelope import Envelope

# argv: dag_id, earliest creation time (Unix).  Prints one JSON line: the backfill or null.
_BACKFILL_SNIPPET = """\
import datetime, json, sys
from sqlalchemy import select
from airflow.models.backfill import Backfill
from airflow.utils.session import create_session
since = datetime.datetime.fromtimestamp(float(sys.argv[2]), datetime.timezone.utc)
with create_session() as session:
    row = session.scalars(
        select(Backfill).where(Backfill.dag_id == sys.argv[1], Backfill.created_at >= since)
        .order_by(Backfill.id.desc()).limit(1)
    ).first()
    print(json.dumps(None if row is None else {
        "id": row.id, "dag_id": row.dag_id, "from_date": str(row.from_date), "to_date": str(row.to_date),
        "created_at": str(row.created_at),
    }))
"""
#: Airflow's clock and the gateway's are one host's, but the call started before the row.
_SLACK_S = 5.0


class BackfillReadBack:
    """After a successful, real Airflow 3 backfill: ``backfill_id`` and ``backfill`` in the envelope.

    :param python: Airflow's interpreter.
    :param timeout_for: the API timeout lookup (the read-back uses backfill's).
    """

    def __init__(self, runner: CliRunner, python: str, timeout_for: Callable[[str], float]) -> None:
        self.runner = runner
        self.python = python
        self.timeout_for = timeout_for

    def __call__(self, plan: Plan, envelope: Envelope, started: float) -> None:
        if plan.values.get("dry_run") is True or envelope.status != "OK":
            return
        dag_id = str(plan.values.get("dag_id"))
        argv = [self.python, "-c", _BACKFILL_SNIPPET, dag_id, str(started - _SLACK_S)]
        result = self.runner.run(argv, timeout_s=self.timeout_for("backfill"))
        try:
            found = json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else None
        except (ValueError, IndexError):
            found = None
        if isinstance(found, dict):
            envelope.extra["backfill_id"] = found["id"]
            envelope.extra["backfill"] = found
        else:
            envelope.add_warning("the backfill's id could not be read back from Airflow")
