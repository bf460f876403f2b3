"""Every API of the original plugin against real Airflow 3, 2 and 1.10, through real gunicorn.

Each test checks the *effect* of the call (state read back from Airflow), not only the
status.  Airflow 1.10 prints no JSON: there the effect is read from its text output or
from its metadata database.  The module shares one gateway per Airflow version and CLI
runner (warm and cold, each on its own Airflow home, so fixed run ids do not collide;
marker ``both_runners``); tests use their own
variable/pool/connection names so their order does not matter, except where a fixture
creates the DAG run they inspect.  Every call that reaches the CLI must have been served
by the gateway's runner (the warm one never silently falls back here).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from gateway import __version__
from tests.e2e.conftest import TOKEN_HEADER
from tests.support.airflow import AirflowHome
from tests.support.http import get, post_form
from tests.support.servers import GatewayServer

DAG = "gw_example"
RUN_DATE = "2026-11-02T00:00:00+00:00"
RUN_ID = "gw_run_1"
# Tests marked postgres also run with both Airflows' metadata database on PostgreSQL (issue 16):
# a representative subset that writes (DAG runs, task states), not the whole suite, for CI
# time; tests/e2e/test_postgres_concurrency.py adds concurrent writes of variables, pools, runs.


pytestmark = pytest.mark.both_runners


def call(gateway: GatewayServer, api: str, **args: str) -> tuple[int, dict[str, Any]]:
    """GET the API with the plugin token; returns (HTTP status, envelope)."""
    reply = get(gateway.api(urlencode({"api": api, **args})), headers=TOKEN_HEADER)
    assert reply.content_type == "application/json", reply.body[:300]
    body = reply.json
    if body.get("exit_code") is not None and "daemon" not in body:  # it reached the CLI runner
        assert body.get("runner") == gateway.env["AIRFLOW_GATEWAY__CLI__RUNNER"], json.dumps(body)[:1000]
    return reply.status, body


def ok(gateway: GatewayServer, api: str, **args: str) -> dict[str, Any]:
    status, body = call(gateway, api, **args)
    assert (status, body["status"]) == (200, "OK"), json.dumps(body, indent=1)[:3000]
    assert body["http_response_code"] == 200
    return body


def stdout(body: dict[str, Any]) -> str:
    return str(body["output"]["stdout"])


def is_110(airflow: AirflowHome) -> bool:
    return airflow.major == "1.10"


def run_ids(gateway: GatewayServer, airflow: AirflowHome) -> set[str]:
    """The run ids of the test DAG, from list_dag_runs (1.10: its text table)."""
    body = ok(gateway, "list_dag_runs", dag_id=DAG, output="json")
    if is_110(airflow):
        return {
            cell.strip()
            for line in stdout(body).splitlines()
            for cell in line.split("|")[1:2]
            if cell.strip()
        }
    return {str(r.get("run_id", r.get("dag_run_id"))) for r in body["data"]}


@pytest.fixture(scope="module")
def dag_run(gateway: GatewayServer, airflow: AirflowHome) -> dict[str, Any]:
    """One manual run of the test DAG with conf, at a known logical date and run id."""
    body = ok(
        gateway,
        "trigger_dag",
        dag_id=DAG,
        run_id=RUN_ID,
        conf='{"x": "from-conf"}',
        execution_date=RUN_DATE,
        output="json",
    )
    return body


def test_envelope_has_every_field_and_per_request_times(gateway: GatewayServer) -> None:
    """The original envelope's fields plus exit_code, duration_seconds and request_id."""
    body = ok(gateway, "version")
    assert set(body) >= {
        "airflow_cmd",
        "arguments",
        "post_arguments",
        "call_time",
        "output",
        "response_time",
        "status",
        "warning",
        "http_response_code",
        "exit_code",
        "duration_seconds",
        "request_id",
    }
    assert body["airflow_cmd"] == "airflow version"
    assert body["output"]["stdin"] == "" and body["exit_code"] == 0
    again = ok(gateway, "version")
    assert again["call_time"] >= body["call_time"] and again["request_id"] != body["request_id"]


def test_version_is_the_installed_airflow(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """api=version runs `airflow version` on the gateway's host."""
    assert stdout(ok(gateway, "version")).strip().startswith(f"{airflow.major}.")


def test_rest_api_plugin_version_is_the_gateways(gateway: GatewayServer) -> None:
    """api=rest_api_plugin_version answers the gateway's own version, without the CLI."""
    body = ok(gateway, "rest_api_plugin_version")
    assert body["output"] == __version__ and body["airflow_cmd"] is None


def test_variables_crud_and_import_export_round_trip(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """set/get (text and JSON)/list/export/delete/import, each effect read back."""
    key = "gw_var_text"
    value = "-starts with a dash, has spaces"
    if is_110(airflow):  # 1.10's `--set KEY VALUE` cannot take a value starting with '-'
        status, body = call(gateway, "variables", set=key, set_value=value)
        assert status == 400 and "cannot start with '-'" in body["output"]
        value = value[1:]
    ok(gateway, "variables", set=key, set_value=value)
    assert stdout(ok(gateway, "variables", get=key)).rstrip("\n") == value
    ok(gateway, "variables", set="gw_var_json", set_value='{"a": 1, "b": [1, 2]}')
    assert ok(gateway, "variables", get="gw_var_json", json="")["data"] == {"a": 1, "b": [1, 2]}
    listed = ok(gateway, "variables", output="json")
    keys = set(stdout(listed).split()) if is_110(airflow) else {row["key"] for row in listed["data"]}
    assert {key, "gw_var_json"} <= keys
    exported = ok(gateway, "variables", export="gw_vars.json")["data"]
    assert exported[key] in (value, {"value": value, "description": None})
    exported_file = gateway.state_dir / "files" / "gw_vars.json"
    assert not exported_file.exists()  # secret values: removed once returned (issue 13)
    exported_file.write_text(json.dumps(exported))  # what an operator would put back to import
    ok(gateway, "variables", delete=key)
    status, body = call(gateway, "variables", get=key)
    assert (status, body["status"]) == (404, "ERROR")
    ok(gateway, "variables", **{"import": "gw_vars.json"})
    assert stdout(ok(gateway, "variables", get=key)).rstrip("\n") == value


def test_variables_default_and_post_form(gateway: GatewayServer) -> None:
    """POST form arguments work like query arguments; get with default of a missing key."""
    reply = post_form(
        gateway.api("api=variables"), {"set": "gw_var_post", "set_value": "posted"}, headers=TOKEN_HEADER
    )
    assert reply.status == 200, reply.body
    assert reply.json["post_arguments"] == {"set": "gw_var_post", "set_value": "posted"}
    assert stdout(ok(gateway, "variables", get="gw_var_post")).strip() == "posted"
    assert stdout(ok(gateway, "variables", get="gw_missing", default="fallback")).strip() == "fallback"


def test_connections_add_list_delete(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """add with a URI, see it listed, delete it; the password is masked in the echo."""
    uri = "postgresql://user:p%40ssw0rd@db.example.com:5432/mydb"
    body = ok(
        gateway, "connections", add="on", conn_id="gw_conn", conn_uri=uri, conn_extra='{"sslmode": "require"}'
    )
    assert "p%40ssw0rd" not in json.dumps(body["arguments"])

    def conn_ids(api: str, **args: str) -> set[str]:
        listed = ok(gateway, api, output="json", **args)
        if is_110(airflow):  # a text table, the conn_id quoted in its first column
            return {
                line.split("│")[1].strip().strip("'") for line in stdout(listed).splitlines() if "│" in line
            }
        return {row["conn_id"] for row in listed["data"]}

    assert "gw_conn" in conn_ids("connections", list="on")
    if is_110(airflow):
        assert airflow.sql("SELECT conn_type, host FROM connection WHERE conn_id = 'gw_conn'") == [
            ("postgres", "db.example.com")
        ]
    ok(gateway, "connections", delete="on", conn_id="gw_conn")
    assert "gw_conn" not in conn_ids("list_connections")
    status, _ = call(gateway, "connections", delete="on", conn_id="gw_conn")
    assert status == 404


def is_paused(gateway: GatewayServer, airflow: AirflowHome) -> bool:
    if is_110(airflow):  # 1.10's list_dags shows no state: read the DagModel row
        return bool(airflow.sql("SELECT is_paused FROM dag WHERE dag_id = ?", DAG)[0][0])
    rows = ok(gateway, "list_dags", output="json")["data"]
    return str(next(r for r in rows if r["dag_id"] == DAG)["is_paused"]) == "True"


def test_pause_and_unpause_change_the_dag_state(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """unpause then pause, each visible in the DAG list; a no-op pause warns (3.x, 2.x)."""
    ok(gateway, "unpause", dag_id=DAG)
    assert is_paused(gateway, airflow) is False
    ok(gateway, "pause", dag_id=DAG)
    assert is_paused(gateway, airflow) is True
    again = ok(gateway, "pause", dag_id=DAG)
    if not is_110(airflow):  # 1.10 prints the same line whether or not anything changed
        assert "already" in (again["warning"] or "")


@pytest.mark.postgres
def test_trigger_dag_with_conf_then_dag_state(
    gateway: GatewayServer, airflow: AirflowHome, dag_run: dict[str, Any]
) -> None:
    """The triggered run exists with its conf, and dag_state finds it by date."""
    if is_110(airflow):
        assert f"Created <DagRun {DAG} @ {RUN_DATE}: {RUN_ID}" in stdout(dag_run)
        conf = airflow.sql("SELECT conf FROM dag_run WHERE run_id = ?", RUN_ID)
        assert len(conf) == 1 and b"from-conf" in bytes(conf[0][0])  # type: ignore[arg-type]
        assert stdout(ok(gateway, "dag_state", dag_id=DAG, execution_date=RUN_DATE)).split()[-1] == "running"
    else:
        run = dag_run["data"][0]
        assert run["dag_run_id"] == RUN_ID and run["conf"] == {"x": "from-conf"}
        state = stdout(ok(gateway, "dag_state", dag_id=DAG, execution_date=RUN_DATE))
        assert state.startswith("queued") and "from-conf" in state
    assert RUN_ID in run_ids(gateway, airflow)


def test_trigger_of_an_existing_run_id_is_409_with_airflows_message(
    gateway: GatewayServer, dag_run: dict[str, Any]
) -> None:
    """A duplicate run id: 409, and Airflow's own sentence reaches stderr whole (issue 14)."""
    status, body = call(gateway, "trigger_dag", dag_id=DAG, run_id=RUN_ID)
    assert (status, body["status"]) == (409, "ERROR")
    assert RUN_ID in body["output"]["stderr"] and "already exists" in body["output"]["stderr"]


def test_dag_state_of_a_missing_run_is_404(gateway: GatewayServer) -> None:
    """No run at that date: Airflow prints None with exit 0; the gateway says 404."""
    status, body = call(gateway, "dag_state", dag_id=DAG, execution_date="2020-01-01")
    assert (status, body["status"]) == (404, "ERROR")


def test_test_runs_a_task_and_shows_its_output(gateway: GatewayServer) -> None:
    """api=test runs the task in-process; its echo output is in the envelope."""
    body = ok(
        gateway,
        "test",
        dag_id=DAG,
        task_id="first",
        execution_date="2026-11-05",
        task_params='{"x": "from-params"}',
    )
    assert "first ds=2026-11-05 x=from-params" in stdout(body)


def test_test_of_a_failing_task_is_an_error(gateway: GatewayServer) -> None:
    """A failing task is ERROR/500 on both versions (Airflow 3 exits 0 there)."""
    status, body = call(
        gateway, "test", dag_id=DAG, task_id="boom", execution_date="2026-11-06", task_params='{"rc": 3}'
    )
    assert (status, body["status"]) == (500, "ERROR")


def test_render_shows_rendered_template(gateway: GatewayServer, dag_run: dict[str, Any]) -> None:
    """render prints the task's templated bash_command for that date."""
    body = ok(gateway, "render", dag_id=DAG, task_id="first", execution_date=RUN_DATE)
    assert "echo first ds=2026-11-02 x=" in stdout(body)


def test_task_state_failed_deps_and_states_of_the_run(
    gateway: GatewayServer, airflow: AirflowHome, dag_run: dict[str, Any]
) -> None:
    """Read commands on the triggered run: task_state, task_failed_deps, list_task_states."""
    state = stdout(ok(gateway, "task_state", dag_id=DAG, task_id="first", execution_date=RUN_DATE)).strip()
    assert state.splitlines()[-1] in {"None", "scheduled", "queued"}
    deps = stdout(ok(gateway, "task_failed_deps", dag_id=DAG, task_id="second", execution_date=RUN_DATE))
    assert "dependencies" in deps.lower()
    if airflow.major == "1.10":
        status, body = call(gateway, "list_task_states", dag_id=DAG, execution_date=RUN_ID)
        assert status == 400 and "not available on Airflow 1.10" in body["output"]
        return
    states = ok(gateway, "list_task_states", dag_id=DAG, execution_date=RUN_ID, output="json")["data"]
    assert {row["task_id"] for row in states} >= {"first", "second"}


@pytest.mark.postgres
def test_running_a_task_records_its_state_and_clear_resets_it(
    gateway: GatewayServer, airflow: AirflowHome, dag_run: dict[str, Any]
) -> None:
    """Run `first` in the triggered run (2.x: api=run; 3.x: api=test with the run id), then clear it."""
    if airflow.major in ("2", "1.10"):
        ok(gateway, "run", dag_id=DAG, task_id="first", execution_date=RUN_DATE, local="on")
    else:
        status, body = call(gateway, "run", dag_id=DAG, task_id="first", execution_date=RUN_DATE)
        assert status == 400 and "api=test" in body["output"]
        ok(gateway, "test", dag_id=DAG, task_id="first", execution_date=RUN_ID)
    assert (
        stdout(ok(gateway, "task_state", dag_id=DAG, task_id="first", execution_date=RUN_DATE)).split()[-1]
        == "success"
    )
    ok(gateway, "clear", dag_id=DAG, task_regex="first", start_date="2026-11-02", end_date="2026-11-02")
    after = stdout(ok(gateway, "task_state", dag_id=DAG, task_id="first", execution_date=RUN_DATE)).split()[
        -1
    ]
    assert after != "success"


def test_list_tasks_and_list_dags(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """The test DAG and its tasks are listed."""
    assert set(stdout(ok(gateway, "list_tasks", dag_id=DAG)).split()) >= {"first", "second", "boom"}
    assert DAG in stdout(ok(gateway, "list_dags"))
    report = ok(gateway, "list_dags", report="on", output="json")
    if is_110(airflow):
        assert f"['{DAG}']" in stdout(report)
    else:
        assert report["data"]


def test_unknown_dag_and_task_are_404(gateway: GatewayServer) -> None:
    """Airflow's not-found errors become 404 with the output still returned."""
    status, body = call(gateway, "list_tasks", dag_id="no_such_dag")
    assert status == 404 and "could not be found" in body["output"]["stderr"]
    assert "Traceback" not in body["output"]["stderr"]
    status, _ = call(gateway, "task_state", dag_id=DAG, task_id="no_such_task", execution_date=RUN_DATE)
    assert status == 404


@pytest.mark.airflow_versions("airflow110")
def test_pause_of_an_unknown_dag_is_404_on_airflow110(gateway: GatewayServer) -> None:
    """1.10's pause/unpause fail on None (AttributeError, exit code 1): 404, not 500 (3.x and 2.x
    print a sentence with exit code 0 instead: a 200 with a warning, tested with the README lines)."""
    for api in ("pause", "unpause"):
        status, body = call(gateway, api, dag_id="no_such_dag")
        assert (status, body["error"]) == (404, "DAG not found"), body


def test_backfill_dry_run_and_real(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """A dry run creates nothing; a real one creates runs for the range."""
    ok(gateway, "backfill", dag_id=DAG, start_date="2026-10-01", end_date="2026-10-02", dry_run="on")
    assert not any("backfill" in r for r in run_ids(gateway, airflow))
    ok(
        gateway,
        "backfill",
        dag_id=DAG,
        start_date="2026-10-01",
        end_date="2026-10-01",
        **({"task_regex": "^second$"} if airflow.major in ("2", "1.10") else {}),
    )
    assert any("backfill" in r for r in run_ids(gateway, airflow))
    if is_110(airflow):  # the task really ran, in a process of 1.10's own executor
        assert airflow.sql(
            "SELECT state FROM task_instance WHERE dag_id = ? AND task_id = 'second' "
            "AND execution_date LIKE '2026-10-01%'",
            DAG,
        ) == [("success",)]


def test_pool_set_get_delete(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """pool set in the plugin's 'NAME SLOTS DESCRIPTION' form, read back, deleted."""
    ok(gateway, "pool", set="gw_pool 3 a pool for tests")
    got = ok(gateway, "pool", get="gw_pool", output="json")
    if is_110(airflow):  # a text table: "│ gw_pool │ 3 │ a pool for tests │"
        assert ["gw_pool", "3", "a pool for tests"] in [
            [c.strip() for c in line.split("│")[1:-1]] for line in stdout(got).splitlines()
        ]
        assert "gw_pool" in stdout(ok(gateway, "list_pools"))
    else:
        row = got["data"][0]
        assert (row["pool"], str(row["slots"]), row["description"]) == ("gw_pool", "3", "a pool for tests")
        assert "gw_pool" in {r["pool"] for r in ok(gateway, "list_pools", output="json")["data"]}
    ok(gateway, "pool", delete="gw_pool")
    status, _ = call(gateway, "pool", get="gw_pool")
    assert status == 404


def test_modern_read_commands(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """The added read APIs answer: import errors, next execution, details, variables."""
    if is_110(airflow):  # only next_execution and variables exist on 1.10
        assert "2026" in stdout(ok(gateway, "next_execution", dag_id=DAG))
        assert "gw_var_post" in stdout(ok(gateway, "list_variables")) or ok(gateway, "list_variables")
        for api in ("list_import_errors", "dag_details"):
            status, body = call(gateway, api, **({"dag_id": DAG} if api == "dag_details" else {}))
            assert status == 400 and "not available on Airflow 1.10" in body["output"]
        return
    assert ok(gateway, "list_import_errors", output="json")["data"] == []
    assert "2026" in stdout(ok(gateway, "next_execution", dag_id=DAG))
    details = ok(gateway, "dag_details", dag_id=DAG, output="json")["data"]
    assert details[0]["dag_id"] == DAG
    assert isinstance(ok(gateway, "list_variables", output="json")["data"], list)


def test_celery_commands_name_the_missing_provider(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """worker and flower without the celery provider: 501 naming the package, nothing run."""
    for api in ("worker", "flower"):
        status, body = call(gateway, api)
        package = (
            {"worker": "'celery'", "flower": "'flower'"}[api]
            if is_110(airflow)
            else "apache-airflow-providers-celery"
        )
        assert status == 501 and package in body["output"]
        assert body["airflow_cmd"] is None


def test_serve_logs_explains_what_replaced_it(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """serve_logs has no equivalent: a 400 naming the scheduler."""
    if is_110(airflow):
        pytest.skip("1.10's serve_logs exists, and binds 0.0.0.0:8793 (hard-coded host): not run in tests")
    status, body = call(gateway, "serve_logs")
    assert status == 400 and "scheduler" in body["output"]


def test_scheduler_daemon_start_list_stop(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """A daemon starts detached with pid and log, any worker lists it alive, and it stops."""
    body = ok(gateway, "scheduler", pid="/tmp/ignored.pid")
    daemon = body["daemon"]
    assert daemon["pid"] > 0 and daemon["log_path"].startswith(str(gateway.state_dir))
    assert "pid was ignored" in body["warning"]
    listed = {d["id"]: d for d in ok(gateway, "list_daemons")["data"]}
    assert listed[daemon["id"]]["alive"] is True
    stopped = ok(gateway, "stop_daemon", id=daemon["id"])["output"]
    assert stopped["stopped"] is True and stopped["alive"] is False
    listed = {d["id"]: d for d in ok(gateway, "list_daemons")["data"]}
    assert listed[daemon["id"]]["alive"] is False
    status, _ = call(gateway, "stop_daemon", id="scheduler-0123456789ab")
    assert status == 404


def test_kerberos_without_kinit_fails_visibly(gateway: GatewayServer) -> None:
    """kerberos dies soon after it starts (no kinit): an error, also on a loaded machine (issue 14)."""
    status, body = call(gateway, "kerberos", principal="airflow@EXAMPLE.COM", keytab="/nonexistent.keytab")
    daemon = body["daemon"]
    assert status == 500 and body["status"] == "ERROR" and body["exit_code"] not in (None, 0), body
    row = {d["id"]: d for d in ok(gateway, "list_daemons")["data"]}[daemon["id"]]
    assert row["alive"] is False and row["exit_code"] == body["exit_code"]
    with open(daemon["log_path"]) as log:
        assert "kinit" in log.read()


def test_callers_mistakes_are_4xx_on_every_version(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """Issue 14: what Airflow reports as an exception (exit 1, or 0 on 1.10) is a 4xx when the caller erred."""
    status, body = call(gateway, "variables", **{"import": "gw_no_such_file.json"})
    assert status == 404 and "file does not exist" in body["error"], body
    status, body = call(gateway, "backfill", dag_id=DAG)
    assert status == 400, body
    status, body = call(gateway, "refresh_all_dags", bundle="gw_no_such_bundle")
    assert status == (404 if airflow.major == "3" else 400), body


BAD_INPUT = [
    pytest.param({"api": "pause", "dag_id": "--help"}, "dag_id", id="dag-help"),
    pytest.param({"api": "pause", "dag_id": "-S /tmp"}, "dag_id", id="dag-short-option"),
    pytest.param({"api": "pause", "dag_id": "a\nb"}, "dag_id", id="dag-newline"),
    pytest.param({"api": "pause", "dag_id": "a\x00b"}, "dag_id", id="dag-nul"),
    pytest.param({"api": "nope"}, "valid APIs", id="unknown-api"),
    pytest.param({"api": "render", "dag_id": DAG}, "task_id, execution_date", id="missing-args"),
    pytest.param({"api": "trigger_dag", "dag_id": DAG, "conf": "{"}, "conf", id="bad-json"),
    pytest.param(
        {"api": "test", "dag_id": DAG, "task_id": "first", "execution_date": "next week"},
        "execution_date",
        id="bad-date-or-run-id",
    ),
    pytest.param({"api": "clear", "dag_id": DAG, "start_date": "tomorrow"}, "start_date", id="bad-date"),
    pytest.param({"api": "variables", "get": "k", "json": "maybe"}, "json", id="bad-bool"),
    pytest.param({"api": "variables", "export": "../../etc/passwd.json"}, "export", id="file-traversal"),
    pytest.param({"api": "pool", "set": "p1 many"}, "set", id="bad-pool-set"),
]


@pytest.mark.parametrize(("args", "names"), BAD_INPUT)
def test_bad_input_is_a_400_envelope_and_nothing_runs(
    gateway: GatewayServer, args: dict[str, str], names: str
) -> None:
    """Rejected before anything runs: 400, JSON envelope naming the problem, no command."""
    reply = get(gateway.api(urlencode(args)), headers=TOKEN_HEADER)
    body = reply.json
    assert reply.status == 400 and body["status"] == "ERROR" and body["airflow_cmd"] is None
    assert names in body["output"]


def test_wrong_method_and_odd_requests_answer_json(gateway: GatewayServer) -> None:
    """PUT, a query-and-body duplicate, and a huge query all answer JSON, never HTML."""
    from tests.support.http import request

    reply = request("PUT", gateway.api("api=version"), headers=TOKEN_HEADER)
    assert reply.status == 405 and reply.json["status"] == "ERROR"
    reply = post_form(gateway.api("api=variables&get=a"), {"get": "b"}, headers=TOKEN_HEADER)
    assert reply.status == 400 and "both in the query and in the body" in reply.json["output"]
