"""Read-backs (gateway.dags.readback) with a fake runner: what each adds to the envelope, and when it warns."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.cli.apis import CATALOGUE
from gateway.cli.dialects import DIALECTS
from gateway.cli.interpreter import Interpreter, Plan
from gateway.cli.spec import Translation
from gateway.core.envelope import Envelope
from gateway.dags.readback import READERS, BackfillReadBack, ClearCountReadBack, read_backs
from gateway.execution.subprocess_runner import NO_OPTIONS, CallOptions, CliResult, ConcurrencyLimitReached

PYTHON = "/opt/airflow/bin/python"
STARTED = 1_790_000_000.25


@dataclass
class Runner:
    """Answers each run with the next scripted result (or raises it), remembering argv and timeout."""

    results: list[CliResult | Exception] = field(default_factory=list)
    calls: list[tuple[list[str], float]] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, timeout_s: float, options: CallOptions = NO_OPTIONS) -> CliResult:
        self.calls.append((list(argv), timeout_s))
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


def done(stdout: str, returncode: int | None = 0, timed_out: bool = False) -> CliResult:
    return CliResult(returncode, stdout, "", False, timed_out, 0.5)


def timeout_for(api: str) -> float:
    return {"clear": 42.0, "backfill": 99.0, "list_dags": 30.0}[api]


def plan(dialect: str, api: str, **args: str) -> Plan:
    interpreter = Interpreter(
        DIALECTS[dialect], CATALOGUE, executable="airflow", files_dir=Path("/nonexistent")
    )
    planned = interpreter.plan(api, {name: [value] for name, value in args.items()})
    assert isinstance(planned, Plan)
    return planned


def envelope(stdout: str = "") -> Envelope:
    env = Envelope(call_time=STARTED, request_id="r1")
    env.output = {"stdout": stdout, "stderr": "", "stdin": ""}
    return env


def clear_reader(dialect: str, runner: Runner) -> ClearCountReadBack:
    reader = read_backs(DIALECTS[dialect], runner, PYTHON, timeout_for)["clear"]
    assert isinstance(reader, ClearCountReadBack)
    return reader


# --- the table --------------------------------------------------------------------------


def test_each_dialect_declares_its_read_backs() -> None:
    """Backfill ids on Airflow 3 only; clear counts on every dialect; DAG rows on 1.10."""
    built = {name: read_backs(dialect, Runner(), PYTHON, timeout_for) for name, dialect in DIALECTS.items()}
    assert {name: sorted(readers) for name, readers in built.items()} == {
        "3": ["backfill", "clear"],
        "2": ["clear"],
        "1.10": ["clear", "list_dags"],
    }
    assert isinstance(built["3"]["backfill"], BackfillReadBack)


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_read_backs_name_known_readers_of_translated_apis(dialect: str) -> None:
    """A typo in a table fails here, not at a gateway's start."""
    table = DIALECTS[dialect]
    for api, reader in table.read_backs.items():
        assert reader in READERS
        assert isinstance(table.table.get(api), Translation), api


@pytest.mark.parametrize(
    ("dialect", "marker"),
    [("3", "SerializedDAG as owner"), ("2", "airflow.models.dag import DAG"), ("1.10", "CLIFactory")],
)
def test_each_dialect_gets_its_own_clear_script(dialect: str, marker: str) -> None:
    assert marker in clear_reader(dialect, Runner()).script


# --- clear ------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_clear_count_runs_the_calls_own_argv_in_airflows_python(dialect: str) -> None:
    """The script gets "after", the call's start time and argv (minus the executable), with clear's timeout."""
    runner = Runner([done("some Airflow log line\n3\n")])
    call = plan(dialect, "clear", dag_id="gw_example", task_regex="first", only_failed="on")
    env = envelope()
    clear_reader(dialect, runner)(call, env, STARTED)
    assert env.extra["cleared"] == 3 and env.warning is None
    [(argv, timeout_s)] = runner.calls
    assert argv[:2] == [PYTHON, "-c"] and argv[3:5] == ["after", repr(STARTED)]
    assert argv[5:] == list(call.argv[1:]) and float(argv[4]) == STARTED and timeout_s == 42.0
    assert "--yes" in argv or "--no_confirm" in argv  # the argv is the call's, flags and all


def test_nothing_to_clear_is_zero_without_a_read_back() -> None:
    """2.x and 1.10 print this instead of clearing: the count is parsed from the output."""
    runner = Runner()
    env = envelope("[2026-11-30] {dagbag.py:588} INFO - Filling up the DagBag\nNothing to clear.\n")
    clear_reader("2", runner)(plan("2", "clear", dag_id="gw_example"), env, STARTED)
    assert env.extra["cleared"] == 0 and runner.calls == []


def test_the_phrase_inside_a_line_is_not_the_marker() -> None:
    runner = Runner([done("2\n")])
    env = envelope("a DAG printed: Nothing to clear. at parse time\n")
    clear_reader("1.10", runner)(plan("1.10", "clear", dag_id="gw_example"), env, STARTED)
    assert env.extra["cleared"] == 2


def test_110_counts_a_state_filtered_clear_before_the_call() -> None:
    """1.10 leaves no trace of which failed/running instances it cleared: the dry run with the
    call's filters runs before the call, and its count is the answer (no run after)."""
    runner = Runner([done("1\n")])
    reader = clear_reader("1.10", runner)
    call = plan("1.10", "clear", dag_id="gw_example", only_failed="on")
    prior = reader.before(call)
    [(argv, _)] = runner.calls
    assert argv[3] == "before" and argv[5:] == list(call.argv[1:]) and prior == 1
    env = envelope()
    reader(call, env, STARTED, prior)
    assert env.extra["cleared"] == 1 and len(runner.calls) == 1


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_no_count_before_the_call_unless_needed(dialect: str) -> None:
    """3.x and 2.x count after the call; 1.10 before it only with a state filter."""
    runner = Runner()
    assert clear_reader(dialect, runner).before(plan(dialect, "clear", dag_id="gw_example")) is None
    if dialect != "1.10":
        assert (
            clear_reader(dialect, runner).before(
                plan(dialect, "clear", dag_id="gw_example", only_failed="on")
            )
            is None
        )
    assert runner.calls == []


def test_unknown_count_on_110_with_a_state_filter_is_a_warning() -> None:
    """When the count before the call failed, 1.10 has no trace to count after it: no number, not a
    wrong one."""
    runner = Runner([done("null\n")])
    env = envelope()
    clear_reader("1.10", runner)(plan("1.10", "clear", dag_id="gw_example", only_failed="on"), env, STARTED)
    assert "cleared" not in env.extra
    assert env.warning is not None and "only_failed/only_running" in env.warning


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(done("", returncode=1), id="failed"),
        pytest.param(done("", returncode=None, timed_out=True), id="timed-out"),
        pytest.param(done("Traceback ...\nNo JSON here\n"), id="no-json"),
        pytest.param(done(""), id="no-output"),
        pytest.param(done("true\n"), id="not-a-count"),
        pytest.param(done('{"n": 1}\n'), id="not-an-int"),
        pytest.param(ConcurrencyLimitReached(), id="no-capacity"),
    ],
)
def test_a_failed_clear_read_back_is_a_warning_and_the_call_stands(result: CliResult | Exception) -> None:
    env = envelope()
    clear_reader("3", Runner([result]))(plan("3", "clear", dag_id="gw_example"), env, STARTED)
    assert env.status == "OK" and "cleared" not in env.extra
    assert env.warning == "the number of cleared task instances could not be read back from Airflow"


def test_a_read_back_cut_short_by_a_cancel_says_so() -> None:
    """A job cancelled after its clear ran: the count is missing, and the warning tells why."""
    env = envelope()
    killed = CliResult(None, "", "", False, False, 0.5, cancelled=True)
    clear_reader("3", Runner([killed]))(plan("3", "clear", dag_id="gw_example"), env, STARTED)
    assert env.status == "OK" and "cleared" not in env.extra
    assert env.warning is not None and "cut short" in env.warning and "cancelled" in env.warning


def test_the_warning_joins_the_calls_own() -> None:
    env = envelope()
    env.add_warning("subdir was ignored")
    clear_reader("3", Runner([done("", returncode=1)]))(plan("3", "clear", dag_id="gw_example"), env, STARTED)
    assert env.warning is not None and env.warning.startswith("subdir was ignored; the number")


def test_a_failed_call_is_not_read_back() -> None:
    runner = Runner()
    env = envelope("Nothing to clear.\n").fail(500, "boom")
    clear_reader("2", runner)(plan("2", "clear", dag_id="gw_example"), env, STARTED)
    assert runner.calls == [] and "cleared" not in env.extra


# --- backfill ---------------------------------------------------------------------------


def test_backfill_id_is_read_back_with_backfills_timeout() -> None:
    row = {"id": 7, "dag_id": "gw_example", "from_date": "a", "to_date": "b", "created_at": "c"}
    runner = Runner([done(f"noise\n{json.dumps(row)}\n")])
    env = envelope()
    call = plan("3", "backfill", dag_id="gw_example", start_date="2026-10-01", end_date="2026-10-02")
    read_backs(DIALECTS["3"], runner, PYTHON, timeout_for)["backfill"](call, env, STARTED)
    assert env.extra["backfill_id"] == 7 and env.extra["backfill"] == row
    [(argv, timeout_s)] = runner.calls
    assert argv[3] == "gw_example" and float(argv[4]) < STARTED and timeout_s == 99.0


def test_a_dry_run_backfill_is_not_read_back() -> None:
    runner = Runner()
    call = plan(
        "3", "backfill", dag_id="gw_example", start_date="2026-10-01", end_date="2026-10-01", dry_run="on"
    )
    read_backs(DIALECTS["3"], runner, PYTHON, timeout_for)["backfill"](call, envelope(), STARTED)
    assert runner.calls == []


@pytest.mark.parametrize(
    "result", [done("null\n"), ConcurrencyLimitReached()], ids=["not-found", "no-capacity"]
)
def test_a_backfill_not_read_back_is_a_warning(result: CliResult | Exception) -> None:
    env = envelope()
    call = plan("3", "backfill", dag_id="gw_example", start_date="2026-10-01", end_date="2026-10-02")
    read_backs(DIALECTS["3"], Runner([result]), PYTHON, timeout_for)["backfill"](call, env, STARTED)
    assert "backfill_id" not in env.extra
    assert env.warning == "the backfill's id could not be read back from Airflow"
