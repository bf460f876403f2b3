"""Input is checked before anything runs: value kinds, unknown/missing/duplicate arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.apis import CATALOGUE
from gateway.cli.dialects import DIALECTS
from gateway.cli.interpreter import BuiltinCall, Interpreter, Plan, PlanError
from gateway.cli.spec import Kind
from gateway.cli.values import InvalidValue, parse_bool, validate


def interp(dialect: str = "3", dists: frozenset[str] = frozenset()) -> Interpreter:
    return Interpreter(
        DIALECTS[dialect], CATALOGUE, executable="airflow", files_dir=Path("/srv/f"), distributions=dists
    )


def plan(api: str, dialect: str = "3", **args: str) -> Plan | BuiltinCall:
    return interp(dialect).plan(api, {k: [v] for k, v in args.items()})


BAD_VALUES = [
    pytest.param(Kind.DAG_ID, "--help", id="dag-option"),
    pytest.param(Kind.DAG_ID, "-S /tmp", id="dag-short-option"),
    pytest.param(Kind.DAG_ID, "a\nb", id="dag-newline"),
    pytest.param(Kind.DAG_ID, "a\x00b", id="dag-nul"),
    pytest.param(Kind.DAG_ID, "a b", id="dag-space"),
    pytest.param(Kind.DAG_ID, "x" * 251, id="dag-too-long"),
    pytest.param(Kind.DAG_ID, "../etc", id="dag-path"),
    pytest.param(Kind.DAG_ID, "dág", id="dag-unicode"),
    pytest.param(Kind.TASK_ID, "-t", id="task-option"),
    pytest.param(Kind.RUN_ID, "--conf", id="run-option"),
    pytest.param(Kind.RUN_ID, "r 1", id="run-space"),
    pytest.param(Kind.DATE, "yesterday", id="date-word"),
    pytest.param(Kind.DATE, "2017-13-01", id="date-month-13"),
    pytest.param(Kind.DATE, "-2017-01-01", id="date-dash"),
    pytest.param(Kind.DATE, "", id="date-empty"),
    pytest.param(Kind.DATE_OR_RUN_ID, "not a date", id="when-space"),
    pytest.param(Kind.DATE_OR_RUN_ID, "--help", id="when-option"),
    pytest.param(Kind.JSON_OBJECT, "{bad", id="json-broken"),
    pytest.param(Kind.JSON_OBJECT, "[1, 2]", id="json-array"),
    pytest.param(Kind.JSON_OBJECT, '"text"', id="json-string"),
    pytest.param(Kind.BOOL, "maybe", id="bool-word"),
    pytest.param(Kind.INT, "-1", id="int-negative"),
    pytest.param(Kind.INT, "1e3", id="int-float"),
    pytest.param(Kind.PORT, "70000", id="port-range"),
    pytest.param(Kind.REGEX, "(unclosed", id="regex-broken"),
    pytest.param(Kind.REGEX, "a\nb", id="regex-newline"),
    pytest.param(Kind.POOL, "-p", id="pool-option"),
    pytest.param(Kind.POOL_SET, "p1", id="poolset-no-slots"),
    pytest.param(Kind.POOL_SET, "p1 three", id="poolset-slots-word"),
    pytest.param(Kind.CONN_ID, "c;rm", id="conn-semicolon"),
    pytest.param(Kind.CONN_URI, "not a uri", id="uri-plain"),
    pytest.param(Kind.VAR_KEY, "-k", id="var-option"),
    pytest.param(Kind.TEXT, "a\x00", id="text-nul"),
    pytest.param(Kind.FILE_NAME, "../x.json", id="file-traversal"),
    pytest.param(Kind.FILE_NAME, "/etc/passwd", id="file-absolute"),
    pytest.param(Kind.FILE_NAME, "vars.py", id="file-extension"),
    pytest.param(Kind.FILE_NAME, "-x.json", id="file-option"),
    pytest.param(Kind.SERVER_PATH, "relative/path", id="path-relative"),
    pytest.param(Kind.SERVER_PATH, "/a/../etc", id="path-dotdot"),
    pytest.param(Kind.HOST, "-h", id="host-option"),
    pytest.param(Kind.QUEUES, "a,,b", id="queues-empty"),
    pytest.param(Kind.STATE, "zombie", id="state-unknown"),
    pytest.param(Kind.DAEMON_ID, "../x", id="daemon-traversal"),
    pytest.param(Kind.UPLOAD, "x", id="upload-as-text"),
]


@pytest.mark.parametrize(("kind", "raw"), BAD_VALUES)
def test_bad_values_are_refused(kind: Kind, raw: str) -> None:
    """Each malformed value is refused with a message that does not repeat it."""
    with pytest.raises(InvalidValue) as info:
        validate(kind, raw)
    if len(raw) > 3:
        assert raw not in str(info.value)


GOOD_VALUES = [
    pytest.param(Kind.DAG_ID, "my_dag.v2-final", "my_dag.v2-final", id="dag"),
    pytest.param(Kind.TASK_ID, "group.task_1", "group.task_1", id="task-group"),
    pytest.param(Kind.DATE, "2017-01-02T03:04:05", "2017-01-02T03:04:05", id="date-seed-example"),
    pytest.param(Kind.DATE, "2017-01-02", "2017-01-02", id="date-day"),
    pytest.param(Kind.DATE, "2026-11-02T00:00:00+00:00", "2026-11-02T00:00:00+00:00", id="date-offset"),
    pytest.param(Kind.DATE, "2026-11-02T00:00:00Z", "2026-11-02T00:00:00Z", id="date-zulu"),
    pytest.param(
        Kind.DATE_OR_RUN_ID,
        "manual__2026-11-24T22:06:36.855113+00:00",
        "manual__2026-11-24T22:06:36.855113+00:00",
        id="when-run-id",
    ),
    pytest.param(Kind.JSON_OBJECT, '{"key": "value"}', '{"key":"value"}', id="json"),
    pytest.param(Kind.INT, "42", 42, id="int"),
    pytest.param(Kind.POOL_SET, "p1 3 my pool  text", ("p1", "3", "my pool  text"), id="poolset"),
    pytest.param(Kind.POOL_SET, "p1 3", ("p1", "3", ""), id="poolset-no-desc"),
    pytest.param(Kind.TEXT, "-x value\nwith lines", "-x value\nwith lines", id="text-dash-ok"),
    pytest.param(
        Kind.CONN_URI, "postgresql://u:p%40ss@db:5432/x", "postgresql://u:p%40ss@db:5432/x", id="uri"
    ),
    pytest.param(Kind.HOST, "::1", "::1", id="host-ipv6"),
    pytest.param(Kind.QUEUES, "default, q2", "default,q2", id="queues"),
]


@pytest.mark.parametrize(("kind", "raw", "expected"), GOOD_VALUES)
def test_good_values_are_accepted(kind: Kind, raw: str, expected: object) -> None:
    """Valid values pass, normalised where that is harmless."""
    assert validate(kind, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [pytest.param(v, True, id=f"true-{v or 'bare'}") for v in ("", "on", "true", "1", "yes", "TRUE")]
    + [pytest.param(v, False, id=f"false-{v}") for v in ("off", "false", "0", "no")],
)
def test_booleans_follow_the_plugin(raw: str, expected: bool) -> None:
    """The bare ``&json`` presence form, on, true and 1 are true."""
    assert parse_bool(raw) is expected


REQUEST_ERRORS = [
    pytest.param("nope", {}, "unknown api 'nope'; valid APIs: backfill", id="unknown-api"),
    pytest.param("", {}, "missing argument 'api'", id="no-api"),
    pytest.param("pause", {}, "missing required argument(s) for api 'pause': dag_id", id="missing-dag"),
    pytest.param("render", {"dag_id": "d"}, "task_id, execution_date", id="missing-several"),
    pytest.param("pause", {"dag_id": "d", "colour": "red"}, "unknown argument(s) 'colour'", id="unknown-arg"),
    pytest.param("trigger_dag", {"dag_id": "--help"}, "argument 'dag_id'", id="dag-help"),
    pytest.param(
        "trigger_dag", {"dag_id": "d", "conf": "{no"}, "argument 'conf': not valid JSON", id="bad-conf"
    ),
    pytest.param("variables", {"set": "k"}, "set_value", id="set-needs-value"),
    pytest.param("variables", {"get": "a", "delete": "b"}, "choose one of", id="two-modes"),
    pytest.param("connections", {"add": "on"}, "conn_id", id="add-needs-id"),
    pytest.param(
        "backfill", {"dag_id": "d", "start_date": "2026-01-01"}, "end_date", id="af3-backfill-both-dates"
    ),
    pytest.param(
        "test",
        {"dag_id": "d", "task_id": "t", "execution_date": "2026-01-01", "dry_run": "on"},
        "removed `tasks test --dry-run`",
        id="af3-dry-run",
    ),
    pytest.param("list_tasks", {"dag_id": "d", "tree": "on"}, "--tree", id="af3-tree"),
    pytest.param("list_dags", {"subdir": "/x"}, "subdir", id="af3-list-subdir"),
    pytest.param("scheduler", {"run-duration": "10"}, "num_runs", id="af3-run-duration"),
    pytest.param(
        "run",
        {"dag_id": "d", "task_id": "t", "execution_date": "2026-01-01"},
        "api=test",
        id="af3-run-removed",
    ),
    pytest.param("serve_logs", {}, "scheduler", id="serve-logs-removed"),
    pytest.param("clear", {"dag_id": "d", "task_regex": "^first$"}, "plain substring", id="af3-clear-regex"),
    pytest.param("pause", {"dag_id": "d", "output": "xml"}, "'json' or 'text'", id="bad-output"),
]


@pytest.mark.parametrize(("api", "args", "message"), REQUEST_ERRORS)
def test_request_errors_name_the_problem(api: str, args: dict[str, str], message: str) -> None:
    """Bad requests are 400s whose message names the API or argument at fault."""
    with pytest.raises(PlanError) as info:
        plan(api, **args)
    assert info.value.status == 400
    assert message in info.value.message


def test_logical_date_alias_and_execution_date_agree() -> None:
    """The seed's ``execution_date`` and the modern ``logical_date`` build the same argv."""
    a = plan("task_state", dag_id="d", task_id="t", execution_date="2026-01-01")
    b = plan("task_state", dag_id="d", task_id="t", logical_date="2026-01-01")
    assert isinstance(a, Plan) and isinstance(b, Plan)
    assert a.argv == b.argv


def test_alias_and_name_together_are_refused() -> None:
    """Giving the same argument under two names is ambiguous: 400."""
    with pytest.raises(PlanError, match="more than once"):
        plan("task_state", dag_id="d", task_id="t", execution_date="2026-01-01", logical_date="2026-01-02")


def test_repeated_argument_is_refused() -> None:
    """``dag_id=a&dag_id=b`` never silently picks one."""
    with pytest.raises(PlanError, match="more than once"):
        interp().plan("pause", {"dag_id": ["a", "b"]})


def test_harmless_drops_become_warnings() -> None:
    """``subdir`` on Airflow 3 is dropped with a warning, not an error."""
    planned = plan("pause", dag_id="d", subdir="/opt/dags")
    assert isinstance(planned, Plan)
    assert "--subdir" not in " ".join(planned.argv)
    assert any("subdir was ignored" in w for w in planned.warnings)


def test_unused_arguments_are_reported() -> None:
    """An argument the chosen command does not use is named in a warning."""
    planned = plan("variables", get="k", default="d")
    assert isinstance(planned, Plan) and planned.warnings == ()
    planned = plan("variables", delete="k", set_value="v")
    assert isinstance(planned, Plan)
    assert planned.warnings == ("ignored argument(s) not used by this call: set_value",)


def test_missing_provider_is_a_501_naming_the_package() -> None:
    """worker on an Airflow without the celery provider names the package to install."""
    with pytest.raises(PlanError) as info:
        plan("worker")
    assert info.value.status == 501
    assert "apache-airflow-providers-celery" in info.value.message


def test_empty_form_fields_mean_absent() -> None:
    """A blank text input from the page is not an empty value for Airflow."""
    planned = plan("trigger_dag", dag_id="d", run_id="", conf="")
    assert isinstance(planned, Plan)
    assert list(planned.argv) == ["airflow", "dags", "trigger", "--", "d"]


def test_builtin_apis_plan_without_a_command() -> None:
    """rest_api_plugin_version is answered by the gateway itself."""
    planned = plan("rest_api_plugin_version")
    assert isinstance(planned, BuiltinCall)
    assert planned.handler == "rest_api_plugin_version"


def test_json_wanted_adds_output_flag_only_where_supported() -> None:
    """``output=json`` adds ``--output=json`` where the command has it, a warning elsewhere."""
    with_json = plan("list_dags", output="json")
    assert isinstance(with_json, Plan) and with_json.argv[-1] == "--output=json" and with_json.wants_data
    without = plan("variables", set="k", set_value="v", output="json")
    assert isinstance(without, Plan) and "--output=json" not in without.argv
    assert any("JSON output is not available" in w for w in without.warnings)


def test_airflow110_multi_value_option_refuses_leading_dash() -> None:
    """1.10's ``variables --set KEY VALUE`` cannot take a value that looks like an option."""
    with pytest.raises(PlanError, match="cannot start with '-'"):
        plan("variables", dialect="1.10", set="k", set_value="-x")
