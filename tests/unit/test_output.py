"""Noise filtering, traceback condensing, JSON extraction and honest status."""

from __future__ import annotations

import pytest

from gateway.cli.common import NO_RUN, NOT_FOUND, PAUSE_NOOP
from gateway.cli.output import classify, condense_tracebacks, filter_loading_messages, last_json_line
from gateway.execution.subprocess_runner import CliResult

AF3_STDOUT = """2026-11-25T02:27:31.131826Z [warning  ] Could not import graphviz. Rendering graph to the graphical format will not be possible.
You might need to install the graphviz package and necessary system packages.
Run `pip install graphviz` to attempt to install it. [py.warnings] category=UserWarning filename=/x/dag_command.py lineno=57
2026-11-25T02:27:31.283026Z [info     ] DAG bundles loaded: dags-folder [airflow.dag_processing.bundles.manager.DagBundlesManager] loc=manager.py:304
[{"dag_id": "gw_example"}]
"""
AF2_STDOUT = """[2026-11-25T02:27:34.946+0000] {dagbag.py:588} INFO - Filling up the DagBag from /tmp/afh2/dags
[2026-11-25T02:27:34.947+0000] {cli.py:10} WARNING - something the user should see
first
second
"""
TRACEBACK = """Traceback (most recent call last):
  File "/venv/bin/airflow", line 8, in <module>
    sys.exit(main())
  File "/venv/lib/python3.11/site-packages/airflow/utils/cli.py", line 304, in get_bagged_dag
    raise AirflowException(
airflow.sdk.exceptions.AirflowException: Dag 'nodag' could not be found; either it does not exist or it failed to parse.
"""


def test_airflow3_log_lines_and_graphviz_warning_are_filtered() -> None:
    """Airflow 3's structlog INFO lines and the 3-line graphviz warning go; the JSON stays."""
    assert filter_loading_messages(AF3_STDOUT) == '[{"dag_id": "gw_example"}]\n'


def test_airflow2_info_lines_are_filtered_but_warnings_kept() -> None:
    """Airflow 2's INFO lines go; WARNING lines and real output stay."""
    out = filter_loading_messages(AF2_STDOUT)
    assert "Filling up" not in out
    assert "WARNING - something" in out and out.endswith("first\nsecond\n")


def test_tracebacks_become_their_last_line() -> None:
    """A CLI traceback is condensed to the exception line: no frames, no paths."""
    out = condense_tracebacks("before\n" + TRACEBACK)
    assert out == (
        "before\nairflow.sdk.exceptions.AirflowException: Dag 'nodag' could not be found; "
        "either it does not exist or it failed to parse.\n"
    )


def test_an_exception_not_named_error_keeps_its_message() -> None:
    """DagRunAlreadyExists (issue 14): the exception line stays whole, whatever the name ends in."""
    tb = TRACEBACK.replace(
        "airflow.sdk.exceptions.AirflowException: Dag 'nodag' could not be found; "
        "either it does not exist or it failed to parse.",
        "airflow.exceptions.DagRunAlreadyExists: Run id r1 already exists for dag id gw_example",
    )
    assert condense_tracebacks(tb) == (
        "airflow.exceptions.DagRunAlreadyExists: Run id r1 already exists for dag id gw_example\n"
    )


def test_airflow110_deprecation_notices_are_filtered() -> None:
    """1.10.15's per-call "deprecated and removed in Airflow 2.0" notices go; the output stays."""
    text = (
        "The 'pool' command is deprecated and removed in Airflow 2.0, please use 'pools list' instead\n"
        "The mode (-l, -d, etc) options to 'connections' have been deprecated and removed in Airflow 2.0, "
        "please use the get/set/list subcommands instead\n"
        "[2026-11-30 20:42:22,050] {dagbag.py:417} INFO - Filling up the DagBag from /x/dags\n"
        "gw_example\n"
    )
    assert filter_loading_messages(text) == "gw_example\n"


def test_json_is_the_last_line() -> None:
    """``-o json`` output is parsed from the last stdout line, after any log lines."""
    assert last_json_line(AF3_STDOUT) == [{"dag_id": "gw_example"}]


def result(rc: int | None, stdout: str = "", stderr: str = "", timed_out: bool = False) -> CliResult:
    return CliResult(rc, stdout, stderr, truncated=False, timed_out=timed_out, duration_s=0.1)


STATUS = [
    pytest.param(result(0, "3.3.2\n"), (), 200, id="ok"),
    pytest.param(result(2, "", "airflow command error: bad"), (), 400, id="usage-error"),
    pytest.param(result(1, "", "boom"), (), 500, id="failure"),
    pytest.param(result(None, timed_out=True), (), 504, id="timeout"),
    pytest.param(result(1, "", TRACEBACK), NOT_FOUND, 404, id="dag-not-found"),
    pytest.param(
        result(1, "", "airflow.sdk.exceptions.TaskNotFound: Task nope not found"),
        NOT_FOUND,
        404,
        id="task-not-found",
    ),
    pytest.param(result(1, "", "Variable nokey does not exist."), NOT_FOUND, 404, id="variable-not-found"),
    pytest.param(result(1, "", "Pool nopool does not exist"), NOT_FOUND, 404, id="pool-not-found"),
    pytest.param(result(0, "None\n"), (NO_RUN,), 404, id="dag-state-none"),
    pytest.param(
        result(
            1,
            "",
            "airflow.exceptions.AirflowException: dag_id could not be found: nope. Either the dag "
            "did not exist or it failed to parse.",
        ),
        NOT_FOUND,
        404,
        id="af110-dag-not-found",
    ),
    pytest.param(result(0, "queued\n"), (NO_RUN,), 200, id="dag-state-queued"),
    # Issue 14: a caller's mistake is a 4xx on every version, not a 500.
    pytest.param(
        result(1, "", "airflow.exceptions.TaskInstanceNotFound: Task instance not found"),
        NOT_FOUND,
        404,
        id="task-instance-not-found",
    ),
    pytest.param(result(1, "", "Missing variables file."), NOT_FOUND, 404, id="variables-file-missing"),
    pytest.param(result(0, "Missing variables file.\n"), NOT_FOUND, 404, id="af110-variables-file-missing"),
    pytest.param(result(1, "", "Bundles not found: nope"), NOT_FOUND, 404, id="bundle-not-found"),
    pytest.param(
        result(1, "", "airflow.exceptions.AirflowException: Provide a start_date and/or end_date"),
        NOT_FOUND,
        400,
        id="backfill-without-dates",
    ),
    pytest.param(result(0, "No unpaused DAGs were found\n"), (PAUSE_NOOP,), 200, id="pause-noop-warns"),
]


@pytest.mark.parametrize(("res", "rules", "status"), STATUS)
def test_status_is_honest(res: CliResult, rules: tuple, status: int) -> None:  # type: ignore[type-arg]
    """Exit codes map to 200/400/500/504, and known lies and not-founds are corrected."""
    assert classify(res, rules).status == status


def test_pause_noop_is_a_warning_not_an_error() -> None:
    """pause of an already-paused (or unknown) DAG is OK with a warning saying so."""
    outcome = classify(result(0, "No unpaused DAGs were found\n"), (PAUSE_NOOP,))
    assert outcome.status == 200 and outcome.warning and "already" in outcome.warning
