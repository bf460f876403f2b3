"""Compatibility mode 1.0.9 (issue 14): the plugin's request forms in, the plugin's answers out."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.apis import CATALOGUE
from gateway.cli.compat import Compat109
from gateway.cli.dialects import DIALECTS
from gateway.cli.interpreter import Interpreter, Plan, PlanError
from gateway.core.envelope import Envelope

COMPAT = Compat109(CATALOGUE, "1.10.15")


def envelope(**arguments: str) -> Envelope:
    return Envelope(call_time=0.0, request_id="r", arguments=arguments)


def test_the_plugins_variable_and_pool_set_forms_become_the_readme_forms() -> None:
    env = envelope()
    assert COMPAT.normalise("variables", {"cmd": ["set"], "key": ["k"], "value": ["v w"]}, env) == (
        "variables",
        {"set": ["k"], "set_value": ["v w"]},
        {},
    )
    pool = {"cmd": ["set"], "pool_name": ["p"], "slot_count": ["3"], "pool_description": ["a pool"]}
    assert COMPAT.normalise("pool", pool, env) == ("pool", {}, {"set": ("p", "3", "a pool")})
    assert env.warning is None


@pytest.mark.parametrize("dialect", ["1.10", "3"])
def test_the_plugins_pool_fields_stay_three_argv_elements(dialect: str, tmp_path: Path) -> None:
    """Joined and re-split, pool_name 'p 99' set pool 'p' to 99 slots; a description lost its spaces."""
    interpreter = Interpreter(DIALECTS[dialect], CATALOGUE, executable="airflow", files_dir=tmp_path)

    def plan(**fields: str) -> tuple[str, ...]:
        api, args, given = COMPAT.normalise("pool", {"cmd": ["set"], **{k: [v] for k, v in fields.items()}},
                                            envelope())  # fmt: skip
        planned = interpreter.plan(api, args, None, given)
        assert isinstance(planned, Plan)
        return planned.argv[-3:]

    assert plan(pool_name="p", slot_count="4", pool_description="  two  spaces ") == (
        "p",
        "4",
        "  two  spaces ",
    )
    assert plan(pool_name="p", slot_count="4") == ("p", "4", "")
    for fields, named in [
        ({"pool_name": "p 99", "slot_count": "4"}, "pool_name"),
        ({"pool_name": "p", "slot_count": "4 5"}, "slot_count"),
        ({"pool_name": "p"}, "slot_count"),
    ]:
        with pytest.raises(PlanError) as refused:
            plan(**fields)
        assert named in refused.value.message
    with pytest.raises(PlanError, match="'pool_name' is given more than once"):
        COMPAT.normalise("pool", {"cmd": ["set"], "pool_name": ["a", "b"], "slot_count": ["1"]}, envelope())


def test_api_is_case_insensitive_and_extras_and_bare_flags_are_dropped_with_a_warning() -> None:
    env = envelope()
    api, args, given = COMPAT.normalise("LIST_DAGS", {"report": [""], "verbose": ["1"]}, env)
    assert (api, args, given) == ("list_dags", {}, {})
    assert env.warning is not None and "report" in env.warning and "verbose" in env.warning


@pytest.mark.parametrize("value", ["/etc/passwd.json", "../x.json", "sub/x.json"])
def test_file_paths_are_still_refused_with_what_to_do_instead(value: str) -> None:
    with pytest.raises(PlanError) as refused:
        COMPAT.normalise("variables", {"export": [value]}, envelope())
    assert "plain file name" in refused.value.message and "cli.files_dir" in refused.value.message


def test_a_failed_cli_call_is_200_ok_with_the_finding_kept() -> None:
    env = envelope(dag_id="gw_example")
    env.airflow_cmd = "airflow tasks test gw_example boom 2026-01-01"
    env.exit_code = 1
    env.fail(500, {"stdout": "", "stderr": "boom", "stdin": ""})
    env.extra["error"] = "the command failed with exit code 1"
    COMPAT.shape(env, "test")
    assert (env.http_response_code, env.status, env.exit_code) == (200, "OK", 1)
    assert env.extra["gateway_http_response_code"] == 500 and env.extra["error"]


def test_an_unknown_dag_is_the_plugins_400_sentence() -> None:
    env = envelope(dag_id="nope")
    env.airflow_cmd = "airflow list_tasks nope"
    env.fail(404, {"stdout": "", "stderr": "...", "stdin": ""})
    env.extra["error"] = "DAG not found"
    COMPAT.shape(env, "list_tasks")
    assert (env.http_response_code, env.status, env.output) == (
        400,
        "ERROR",
        "The DAG ID 'nope' does not exist",
    )


def test_input_errors_keep_their_400_and_daemons_answer_the_plugins_output() -> None:
    env = envelope()
    env.fail(400, "missing required argument(s) for api 'pause': dag_id")
    COMPAT.shape(env, "pause")
    assert (env.http_response_code, env.status) == (400, "ERROR")
    started = envelope()
    started.output = {"pid": 1}
    started.extra["daemon"] = {"id": "scheduler-1", "pid": 1, "log_path": "/x"}
    COMPAT.shape(started, "scheduler")
    assert started.output == {"stdout": "exit_code: 0", "stderr": "", "stdin": ""}


def test_the_plugins_required_principal_is_required_for_kerberos() -> None:
    for args in ({}, {"principal": [""]}, {"keytab": ["/k.keytab"]}):
        with pytest.raises(PlanError, match=r"for api 'kerberos': principal"):
            COMPAT.normalise("kerberos", dict(args), envelope())
    assert COMPAT.normalise("kerberos", {"principal": ["a@B"]}, envelope())[1] == {"principal": ["a@B"]}
