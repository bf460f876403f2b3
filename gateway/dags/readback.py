"""Facts Airflow's CLI does not print, read back after a successful call.

Each dialect table names, per API, the reader of the fact its CLI leaves out
(:attr:`~gateway.cli.spec.Dialect.read_backs`); :func:`read_backs` builds them.  A reader is
asked :meth:`ReadBack.before` the call (most need nothing then) and called after it. A reader runs
a short script in Airflow's own Python (its models and session, never imported in the gateway)
through the same runner as the call (admission, timeout, kill). When a read-back fails, the call
still succeeds, with a warning in the envelope.

- ``backfill`` on Airflow 3 prints nothing on success: the backfill's id is read from the database.
- ``clear`` never prints how many task instances it cleared: the call's own argv is parsed by
  Airflow's CLI parser and handed to the CLI's own ``clear`` function, whose ``clear_dags`` is
  swapped for a dry run, so the task instances are selected exactly as the call selected them.
  Clearing changes states, not that selection, so without ``only_failed``/``only_running`` every
  one of them was cleared. With those filters, a version-specific trace tells which were: Airflow 3
  gives each cleared task instance a new UUIDv7 id (its time is the clear's); Airflow 2 bumps
  ``updated_at`` (so a concurrent scheduler update of the same DAG's instances could be counted);
  Airflow 1.10 leaves no trace: there, with those filters, the same dry run counts the matching
  task instances *before* the call (the filters kept), which is what the clear then clears.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from gateway.calls.service import ReadBack
from gateway.cli.interpreter import Plan
from gateway.cli.spec import Dialect
from gateway.core.envelope import Envelope
from gateway.dags.sync110 import DagSync110, SyncError
from gateway.execution.subprocess_runner import CliRunner, ConcurrencyLimitReached

TimeoutFor = Callable[[str], float]


class AfterOnly:
    """A read-back that needs nothing before the call."""

    def before(self, plan: Plan) -> object:
        return None


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

# Each setup binds `parser` (Airflow's CLI parser), `command` (the CLI's clear function inside
# its audit-log decorator, so the read-back logs no second "clear" in Airflow's log table),
# `owner` (the class whose clear_dags the command calls) and `count(tis, filtered, since)`.
_CLEAR_SETUP_3 = """\
import uuid
from airflow.cli.cli_parser import get_parser
from airflow.cli.commands.task_command import task_clear
from airflow.serialization.definitions.dag import SerializedDAG as owner
parser = get_parser()
command = task_clear.__wrapped__
def count(tis, filtered, since):
    # clear_task_instances() gives every instance it clears a new UUIDv7 id: 48 bits of Unix ms.
    return sum(1 for ti in tis if uuid.UUID(str(ti.id)).int >> 80 >= int(since * 1000))
"""
_CLEAR_SETUP_2 = """\
from airflow.cli.cli_parser import get_parser
from airflow.cli.commands.task_command import task_clear
from airflow.models.dag import DAG as owner
parser = get_parser()
command = task_clear.__wrapped__
def count(tis, filtered, since):
    if not filtered:
        return len(tis)
    # A failed/running instance it cleared changed state, so its updated_at is the clear's.
    return sum(1 for ti in tis if ti.updated_at is not None and ti.updated_at.timestamp() >= since)
"""
_CLEAR_SETUP_110 = """\
import inspect
from airflow.bin.cli import CLIFactory, clear
from airflow.models import DAG as owner
parser = CLIFactory.get_parser()
command = inspect.unwrap(clear)
def count(tis, filtered, since):
    return None if filtered else len(tis)
"""
# argv: "after" or "before", the call's start time (Unix), then the call's argv without the
# executable.  "after": the selection without the state filters (the clear changed the states),
# counted by the dialect's count(); "before": the selection with them, all of it.
# Prints one JSON line: the count, or null when this version cannot tell.  Python 3.8+ (1.10).
_CLEAR_BODY = """\
import json, sys
mode, since = sys.argv[1], float(sys.argv[2])
found = []
real = owner.clear_dags.__func__
def dry_run(cls, dags, **kwargs):
    if mode == "after":
        kwargs.update(only_failed=False, only_running=False)
    kwargs["dry_run"] = True
    found[:] = real(cls, dags, **kwargs)
owner.clear_dags = classmethod(dry_run)
args = parser.parse_args(sys.argv[3:])
command(args)
filtered = bool(args.only_failed or args.only_running)
print(json.dumps(len(found) if mode == "before" else count(found, filtered, since)))
"""
#: What 2.x and 1.10 print, instead of clearing, when nothing matches: the count is 0.
_NOTHING_TO_CLEAR = re.compile(r"^Nothing to clear\.$", re.MULTILINE)


class _Failed(Exception):
    """The read-back printed no usable answer; ``why`` ends the warning (empty or `` (...)``)."""

    def __init__(self, why: str = "") -> None:
        super().__init__(why)
        self.why = why


#: A job cancelled after its command ended still stops its read-back: the warning says so.
_CUT_SHORT = " (the read-back was cut short: the job was cancelled after the command had ended)"


def _read_json(runner: CliRunner, argv: list[str], timeout_s: float) -> Any:
    """The JSON value on the last stdout line of a successful run.

    :raises _Failed: if the run was refused, failed, or printed no JSON.
    """
    try:
        result = runner.run(argv, timeout_s=timeout_s)
    except ConcurrencyLimitReached:  # the call itself is done; its answer must not become a 503
        raise _Failed from None
    if result.cancelled:
        raise _Failed(_CUT_SHORT)
    if result.returncode != 0 or result.timed_out:
        raise _Failed
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise _Failed from None


class BackfillReadBack(AfterOnly):
    """After a successful, real Airflow 3 backfill: ``backfill_id`` and ``backfill`` in the envelope.

    :param python: Airflow's interpreter.
    :param timeout_for: the API timeout lookup (the read-back uses backfill's).
    """

    def __init__(self, runner: CliRunner, python: str, timeout_for: TimeoutFor) -> None:
        self.runner = runner
        self.python = python
        self.timeout_for = timeout_for

    def __call__(self, plan: Plan, envelope: Envelope, started: float, prior: object = None) -> None:
        if plan.values.get("dry_run") is True or envelope.status != "OK":
            return
        dag_id = str(plan.values.get("dag_id"))
        argv = [self.python, "-c", _BACKFILL_SNIPPET, dag_id, str(started - _SLACK_S)]
        why = ""
        try:
            found = _read_json(self.runner, argv, self.timeout_for("backfill"))
        except _Failed as failed:
            found, why = None, failed.why
        if isinstance(found, dict):
            envelope.extra["backfill_id"] = found["id"]
            envelope.extra["backfill"] = found
        else:
            envelope.add_warning(f"the backfill's id could not be read back from Airflow{why}")


class ClearCountReadBack:
    """After a successful clear: ``cleared``, the number of task instances it cleared.

    :param python: Airflow's interpreter.
    :param timeout_for: the API timeout lookup (the read-back uses the call's).
    :param setup: the dialect's part of the script (see ``_CLEAR_SETUP_*``).
    :param count_first: with ``only_failed``/``only_running``, count before the call (a
        version that leaves no trace of what those filters cleared).
    """

    def __init__(
        self,
        runner: CliRunner,
        python: str,
        timeout_for: TimeoutFor,
        *,
        setup: str,
        count_first: bool = False,
    ) -> None:
        self.runner = runner
        self.python = python
        self.timeout_for = timeout_for
        self.script = setup + _CLEAR_BODY
        self.count_first = count_first

    def before(self, plan: Plan) -> object:
        """The number the call will clear, when this version can only tell beforehand."""
        filtered = plan.values.get("only_failed") is True or plan.values.get("only_running") is True
        if not (self.count_first and filtered):
            return None
        argv = [self.python, "-c", self.script, "before", "0", *plan.argv[1:]]
        try:
            count = _read_json(self.runner, argv, self.timeout_for(plan.api.name))
        except _Failed:
            return None
        return count if isinstance(count, int) and not isinstance(count, bool) else None

    def __call__(self, plan: Plan, envelope: Envelope, started: float, prior: object = None) -> None:
        if envelope.status != "OK":
            return
        output = envelope.output if isinstance(envelope.output, dict) else {}
        if _NOTHING_TO_CLEAR.search(str(output.get("stdout", ""))):
            envelope.extra["cleared"] = 0
            return
        if isinstance(prior, int):
            envelope.extra["cleared"] = prior
            return
        argv = [self.python, "-c", self.script, "after", repr(started), *plan.argv[1:]]
        try:
            count = _read_json(self.runner, argv, self.timeout_for(plan.api.name))
        except _Failed as failed:
            envelope.add_warning(
                f"the number of cleared task instances could not be read back from Airflow{failed.why}"
            )
            return
        if count is None:
            envelope.add_warning(
                "this Airflow leaves no trace of which task instances only_failed/only_running cleared: "
                "their number is unknown"
            )
        elif isinstance(count, int) and not isinstance(count, bool):
            envelope.extra["cleared"] = count
        else:
            envelope.add_warning("the number of cleared task instances could not be read back from Airflow")


class DagRowsReadBack(AfterOnly):
    """``list_dags`` with ``output=json`` on 1.10, whose CLI prints no JSON: the rows
    (``dag_id``, ``is_paused``, ``fileloc``) are read from Airflow's database, as ``data``."""

    def __init__(self, runner: CliRunner, python: str, timeout_for: TimeoutFor) -> None:
        self.sync = DagSync110(runner, python)
        self.timeout_s = timeout_for("list_dags")

    def __call__(self, plan: Plan, envelope: Envelope, started: float, prior: object = None) -> None:
        if not plan.wants_data:
            return
        try:
            envelope.extra["data"] = self.sync.list_dags(self.timeout_s)
        except SyncError:
            envelope.add_warning("the DAG rows could not be read from Airflow's database")


ReaderFactory = Callable[[CliRunner, str, TimeoutFor], ReadBack]


READERS: Mapping[str, ReaderFactory] = {
    "backfill_id": BackfillReadBack,
    "dag_rows_airflow110": DagRowsReadBack,
    "cleared_airflow3": functools.partial(ClearCountReadBack, setup=_CLEAR_SETUP_3),
    "cleared_airflow2": functools.partial(ClearCountReadBack, setup=_CLEAR_SETUP_2),
    "cleared_airflow110": functools.partial(ClearCountReadBack, setup=_CLEAR_SETUP_110, count_first=True),
}
"""The readers a dialect table may name, by name."""


def read_backs(
    dialect: Dialect, runner: CliRunner, python: str, timeout_for: TimeoutFor
) -> dict[str, ReadBack]:
    """The dialect's read-backs, by API: what :attr:`gateway.calls.service.CliCalls.read_backs` takes.

    :param python: Airflow's interpreter, which runs the read-back scripts.
    :raises KeyError: if the dialect names a reader this module does not have.
    """
    return {api: READERS[reader](runner, python, timeout_for) for api, reader in dialect.read_backs.items()}
