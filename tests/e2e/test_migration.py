"""Every curl line of the original plugin's README, run with curl (issue 14, docs/migration.md).

Each line runs twice: against Airflow 1.10 behind the gateway in compatibility mode 1.0.9
(a plugin client switching without changing a line) and against Airflow 3 in the default
mode.  The README's placeholders are filled with the test DAG (``test_id`` and
``dag_id=value`` -> gw_example, ``task_id=value`` -> first); ``subdir=value`` points at the
DAGs folder.  The expected (HTTP status, status) pairs are the table in docs/migration.md.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import TOKEN
from tests.support.airflow import AirflowHome
from tests.support.servers import GatewayServer, start_gateway

HEADER = f"rest_api_plugin_http_token: {TOKEN}"
WHEN = "2026-11-02T03:04:05"


@dataclass(frozen=True)
class Line:
    """One README line: its query (placeholders filled), then (HTTP status, status) on 1.10-compat and 3."""

    id: str
    query: str
    on110: tuple[int, str]
    on3: tuple[int, str]


LINES = [
    Line("version", "api=version", (200, "OK"), (200, "OK")),
    Line("rest_api_plugin_version", "api=rest_api_plugin_version", (200, "OK"), (200, "OK")),
    Line("render-bare", "api=render", (400, "ERROR"), (400, "ERROR")),
    Line("render", f"api=render&dag_id=gw_example&task_id=first&execution_date={WHEN}&subdir=SUBDIR",
         (200, "OK"), (200, "OK")),
    Line("variables-bare", "api=variables", (200, "OK"), (200, "OK")),
    # The README's every-argument example does several things at once: refused on both.
    Line("variables-all", "api=variables&set=value&set_value=value&get=value&json&default=value&import=value"
         "&export=value&delete=value", (400, "ERROR"), (400, "ERROR")),
    Line("variables-set", "api=variables&set=mykey&set_value=myvalue", (200, "OK"), (200, "OK")),
    Line("connections-bare", "api=connections", (200, "OK"), (200, "OK")),
    Line("pause", "api=pause&dag_id=gw_example", (200, "OK"), (200, "OK")),
    Line("unpause", "api=unpause&dag_id=gw_example", (200, "OK"), (200, "OK")),
    Line("task_failed_deps", f"api=task_failed_deps&dag_id=gw_example&task_id=first&execution_date={WHEN}",
         (200, "OK"), (404, "ERROR")),
    Line("trigger_dag", "api=trigger_dag&dag_id=gw_example", (200, "OK"), (200, "OK")),
    Line("trigger_dag-run_id-conf",
         "api=trigger_dag&dag_id=gw_example&run_id=run_id_2016_01_01&conf=%7B%22key%22%3A%22value%22%7D",
         (200, "OK"), (200, "OK")),
    Line("test", f"api=test&dag_id=gw_example&task_id=first&execution_date={WHEN}", (200, "OK"), (200, "OK")),
    Line("dag_state", f"api=dag_state&dag_id=gw_example&execution_date={WHEN}", (200, "OK"), (404, "ERROR")),
    Line("run", f"api=run&dag_id=gw_example&task_id=first&execution_date={WHEN}",
         (200, "OK"), (400, "ERROR")),
    Line("list_tasks", "api=list_tasks&dag_id=gw_example", (200, "OK"), (200, "OK")),
    Line("backfill", "api=backfill&dag_id=gw_example", (200, "OK"), (400, "ERROR")),
    Line("list_dags", "api=list_dags", (200, "OK"), (200, "OK")),
    # The plugin required a principal: 400 before anything starts (3.x default: the daemon dies).
    Line("kerberos", "api=kerberos", (400, "ERROR"), (500, "ERROR")),
    Line("worker", "api=worker", (501, "ERROR"), (501, "ERROR")),
    Line("flower", "api=flower", (501, "ERROR"), (501, "ERROR")),
    Line("scheduler", "api=scheduler", (200, "OK"), (200, "OK")),
    Line("task_state", f"api=task_state&dag_id=gw_example&task_id=first&execution_date={WHEN}",
         (200, "OK"), (404, "ERROR")),
    Line("pool", "api=pool", (200, "OK"), (200, "OK")),
    # 1.10's serve_logs binds 0.0.0.0:8793 (hard-coded host): not run here; 3.x has no serve_logs.
    Line("serve_logs", "api=serve_logs", (0, "not run"), (400, "ERROR")),
    Line("clear", "api=clear", (400, "ERROR"), (400, "ERROR")),
    Line("refresh_dag", "api=refresh_dag&dag_id=gw_example", (200, "OK"), (200, "OK")),
]  # fmt: skip


def curl(args: list[str]) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    body, _, code = done.stdout.rpartition("\n")
    return int(code), json.loads(body)


@pytest.fixture(scope="module")
def compat110(airflow110: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """Airflow 1.10 behind the gateway in compatibility mode 1.0.9."""
    server = start_gateway(
        airflow110,
        tmp_path_factory.mktemp("gw-compat110"),
        settings={
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
            "REST_API_PLUGIN__COMPATIBILITY": "1.0.9",
        },
    )
    yield server
    server.stop()


def _check(
    server: GatewayServer, airflow: AirflowHome, line: Line, expected: tuple[int, str]
) -> dict[str, Any]:
    query = line.query.replace("SUBDIR", str(airflow.dags_folder))
    status, body = curl(["--header", HEADER, server.api(query)])
    assert (status, body["status"]) == expected, json.dumps(body)[:2000]
    assert "Traceback" not in json.dumps(body)
    if body.get("daemon"):  # scheduler/kerberos started by a line: stop what still runs
        curl(["--header", HEADER, server.api(f"api=stop_daemon&id={body['daemon']['id']}")])
    return body


@pytest.mark.airflow110
@pytest.mark.parametrize("line", LINES, ids=[line.id for line in LINES])
def test_readme_line_on_airflow110_in_compatibility_mode(
    compat110: GatewayServer, airflow110: AirflowHome, line: Line
) -> None:
    if line.on110[0] == 0:
        pytest.skip("1.10's serve_logs listens on 0.0.0.0:8793; the tests never open a port beyond loopback")
    body = _check(compat110, airflow110, line, line.on110)
    if line.id == "version":
        assert body["output"] == "1.10.15"  # a string, as the plugin answered
    if line.id == "kerberos":  # refused before any daemon starts, as the plugin did
        assert "principal" in body["output"] and "daemon" not in body
    if line.id == "refresh_dag":
        assert body["output"] == "DAG [gw_example] is now fresh as a daisy"


@pytest.mark.airflow3
@pytest.mark.parametrize("line", LINES, ids=[line.id for line in LINES])
def test_readme_line_on_airflow3_in_default_mode(
    gateway3: GatewayServer, airflow3: AirflowHome, line: Line
) -> None:
    _check(gateway3, airflow3, line, line.on3)


def test_readme_token_and_deploy_lines(
    compat110: GatewayServer, gateway3: GatewayServer, tmp_path: Any
) -> None:
    """No token: 403 'Token Authentication Failed' on both; the README's deploy_dag curl on 1.10 in
    compatibility mode (on 3.x: test_deploy.py::test_readme_curl_deploy_then_airflow_lists_it_unpaused)."""
    for server in (compat110, gateway3):
        status, body = curl([server.api("api=version")])
        assert (status, body["output"]) == (403, "Token Authentication Failed")
    source = tmp_path / "gw_readme_deploy.py"
    source.write_text(
        "import datetime\nfrom airflow import DAG\n"
        "with DAG('gw_readme_deploy', start_date=datetime.datetime(2026, 1, 1),\n"
        "         schedule_interval=None) as d:\n"
        "    pass\n"
    )
    status, body = curl(
        ["-X", "POST", "-H", HEADER, "-H", "Content-Type: multipart/form-data", "-F", f"dag_file=@{source}",
         "-F", "force=on", compat110.api("api=deploy_dag")]
    )  # fmt: skip
    assert (status, body["status"], body["dag_ids"]) == (200, "OK", ["gw_readme_deploy"]), body
    assert isinstance(body["output"], str)


@pytest.mark.airflow110
def test_the_plugins_own_forms_work_in_compatibility_mode(
    compat110: GatewayServer, airflow110: AirflowHome
) -> None:
    """v1.0.9's cmd=set forms, api=VERSION, extra arguments and bare flags: as the plugin took them."""
    status, body = curl(
        ["--header", HEADER, compat110.api("api=variables&cmd=set&key=gw_compat_key&value=v+1")]
    )
    assert (status, body["status"]) == (200, "OK"), body
    assert airflow110.cli("variables", "--get", "gw_compat_key").stdout.strip().splitlines()[-1] == "v 1"
    query = "api=pool&cmd=set&pool_name=gw_compat_pool&slot_count=4&pool_description=from+the+plugin"
    status, body = curl(["--header", HEADER, compat110.api(query)])
    assert (status, body["status"]) == (200, "OK"), body
    rows = airflow110.sql("SELECT slots, description FROM slot_pool WHERE pool = 'gw_compat_pool'")
    assert rows == [(4, "from the plugin")]
    status, body = curl(["--header", HEADER, compat110.api("api=VERSION&unknown_extra=1")])
    assert (status, body["output"]) == (200, "1.10.15") and "unknown_extra" in body["warning"]
    status, body = curl(["--header", HEADER, compat110.api("api=variables&export=/etc/passwd.json")])
    assert status == 400 and "plain file name" in body["output"]


@pytest.mark.airflow110
def test_a_pool_field_with_a_space_never_moves_into_the_next(
    compat110: GatewayServer, airflow110: AirflowHome
) -> None:
    """The fields were joined, then re-split: pool_name 'gw_p 99' created pool gw_p with 99 slots."""
    status, body = curl(
        ["--header", HEADER, compat110.api("api=pool&cmd=set&pool_name=gw_p+99&slot_count=4")]
    )
    assert (status, body["status"]) == (400, "ERROR") and "pool_name" in body["output"], body
    assert airflow110.sql("SELECT slots FROM slot_pool WHERE pool = 'gw_p'") == []
    query = "api=pool&cmd=set&pool_name=gw_p&slot_count=5&pool_description=+two++spaces"
    status, body = curl(["--header", HEADER, compat110.api(query)])
    assert (status, body["status"]) == (200, "OK"), body
    assert airflow110.sql("SELECT slots, description FROM slot_pool WHERE pool = 'gw_p'") == [
        (5, " two  spaces")
    ]


@pytest.mark.airflow110
def test_an_unknown_dag_and_a_kerberos_call_without_principal_answer_as_the_plugin(
    compat110: GatewayServer, airflow110: AirflowHome
) -> None:
    """pause of an unknown DAG answered 200 with 1.10's traceback, kerberos without a principal
    200 after starting a renewer that died; the plugin answered 400 to both, before running anything."""
    for api in ("pause", "unpause"):
        status, body = curl(["--header", HEADER, compat110.api(f"api={api}&dag_id=gw_no_such_dag")])
        assert (status, body["status"]) == (400, "ERROR"), body
        assert body["output"] == "The DAG ID 'gw_no_such_dag' does not exist"
        assert body["gateway_http_response_code"] == 404
    for query in ("api=kerberos", "api=kerberos&principal=&keytab=/nonexistent.keytab"):
        status, body = curl(["--header", HEADER, compat110.api(query)])
        assert (status, body["status"]) == (400, "ERROR"), body
        assert "required" in body["output"] and "principal" in body["output"] and "daemon" not in body
