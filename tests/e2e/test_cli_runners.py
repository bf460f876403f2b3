"""The warm runner against real Airflow 3 and 2: the same envelopes as cold, fresh, and honest.

- Equivalence: for every CLI API of the catalogue, a warm gateway and a cold gateway on
  the same Airflow home answer the same envelope.  Only what also differs between two
  cold runs is normalised (times, durations, run / job / backfill ids, pids).
- Freshness: a change to airflow.cfg, a new plugin, a new and a changed DAG file are
  seen by the very next call.
- Identity: Airflow's own ``log`` table records the gateway principal, not the OS user.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from gateway.cli.apis import CATALOGUE
from gateway.cli.spec import ApiKind
from gateway.identity.tokens import hash_token
from tests.support import servers
from tests.support.airflow import AirflowHome
from tests.support.http import get
from tests.support.servers import GatewayServer, start_gateway

# The pairing below drives 3.x/2.x CLI syntax directly (dags trigger, dags pause); on
# Airflow 1.10 the warm runner is shown equal to the cold one by tests/e2e/test_cli_api.py,
# which runs the whole CLI suite there on both runners and checks which one served each call.
pytestmark = pytest.mark.airflow_versions("airflow3", "airflow2")

TOKEN = "runners-Secr3t-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
PRINCIPAL = "alice.runner"
DAG = "gw_example"
RUN_ID = "eq_run"
RUN_DATE = "2026-10-05T00:00:00+00:00"
HOSTILE = "--help; $(id) `id` | cat /etc/passwd & -rf '\"\n--set x"
TIMING = {"call_time", "response_time", "duration_seconds", "request_id", "runner"}


def _settings(runner: str) -> dict[str, str]:
    tokens = [{"name": PRINCIPAL, "sha256": hash_token(TOKEN), "groups": []}]
    return {"AUTH__TOKENS": json.dumps(tokens), "CLI__RUNNER": runner}


def call(gateway: GatewayServer, api: str, **args: str) -> tuple[int, dict[str, Any]]:
    reply = get(gateway.api(urlencode({"api": api, **args})), headers=HEADERS, timeout=300)
    return reply.status, reply.json


def wait_warm(gateway: GatewayServer) -> None:
    servers.wait_warm(gateway, HEADERS)


@pytest.fixture(scope="module")
def pair(
    airflow: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, GatewayServer]]:
    """A warm and a cold gateway in front of the same Airflow home, and one DAG run."""
    tmp = tmp_path_factory.mktemp(f"runners-{airflow.major}")
    servers = {runner: start_gateway(airflow, tmp, settings=_settings(runner)) for runner in ("warm", "cold")}
    try:
        wait_warm(servers["warm"])
        airflow.cli("dags", "trigger", DAG, "--run-id", RUN_ID, "--" + _date_flag(airflow), RUN_DATE)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def _date_flag(airflow: AirflowHome) -> str:
    return "logical-date" if airflow.major == "3" else "exec-date"


_NOISE = [
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"datetime\.datetime\([^)]*\)"), "<time>"),
    (re.compile(r"\b\d{8}T\d{6}\b"), "<time>"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:[+-]\d\d:?\d\d|Z)?"), "<time>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:s|ms|seconds)\b"), "<duration>"),
    (re.compile(r"(?:manual|backfill|scheduled)__[\w:.+-]+"), "<run_id>"),
    (re.compile(r"\b(?:pid|PID|Job|job_id|id|Backfill)\b[=: ]+\d+"), "<id>"),
    (re.compile(r"\"(?:id|job_id|backfill_id|pid)\": \d+"), '"<id>": 0'),
    (re.compile(r"\b(eq_w|eq_c)\b"), "eq_x"),
]


def normalise(value: Any) -> Any:
    """What may differ between two cold runs (and between the two names a pair uses) is masked."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str):
        for pattern, replacement in _NOISE:
            value = pattern.sub(replacement, value)
        return value
    return value


def unordered(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope with output lines sorted (for output whose line order is a set's order)."""
    output = dict(envelope["output"])
    output["stdout"] = sorted(str(output["stdout"]).splitlines())
    return {**envelope, "output": output}


def both(
    pair: dict[str, GatewayServer],
    api: str,
    warm_args: dict[str, str],
    cold_args: dict[str, str] | None = None,
    between: Any = None,
    *,
    lines_unordered: bool = False,
) -> dict[str, Any]:
    """Call ``api`` warm then cold (``between`` runs in between) and compare the envelopes."""
    status_w, warm = call(pair["warm"], api, **warm_args)
    if between is not None:
        between()
    status_c, cold = call(pair["cold"], api, **(cold_args if cold_args is not None else warm_args))
    if warm.get("exit_code") is not None or cold.get("exit_code") is not None:  # reached the CLI
        assert warm.get("runner") == "warm", json.dumps(warm)[:2000]
        assert cold.get("runner") == "cold", json.dumps(cold)[:2000]
    assert status_w == status_c, (json.dumps(warm)[:2000], json.dumps(cold)[:2000])
    if lines_unordered:
        warm, cold = unordered(warm), unordered(cold)
    left, right = normalise(warm), normalise(cold)
    if left != right:
        a, b = (
            json.dumps(x, indent=1, sort_keys=True).replace("\\n", "\n").splitlines() for x in (left, right)
        )
        pytest.fail(
            f"{api}: warm and cold envelopes differ:\n" + "\n".join(difflib.unified_diff(a, b, lineterm=""))
        )
    return warm


def test_every_cli_api_answers_the_same_envelope_warm_and_cold(
    pair: dict[str, GatewayServer], airflow: AirflowHome
) -> None:
    seen: set[str] = set()

    def check(
        api: str,
        warm_args: dict[str, str],
        cold_args: dict[str, str] | None = None,
        between: Any = None,
        lines_unordered: bool = False,
    ) -> None:
        seen.add(api)
        both(pair, api, warm_args, cold_args, between, lines_unordered=lines_unordered)

    def named(api: str, **args: str) -> None:  # the same call on two names, eq_w warm and eq_c cold
        check(api, {k: v.replace("NAME", "eq_w") for k, v in args.items()},
              {k: v.replace("NAME", "eq_c") for k, v in args.items()})  # fmt: skip

    # Writes, each on its own name, then reads of both.
    named("variables", set="NAME", set_value="value-1")
    named("connections", add="on", conn_id="NAME", conn_uri="postgres://u:pw@db.invalid:5432/x")
    named("pool", set="NAME 3 desc")
    check("version", {})
    named("variables", get="NAME")
    # Values that pass validation but would mean something to a shell or to argparse.
    named("variables", set="NAME", set_value=HOSTILE)
    named("variables", get="NAME")
    check("list_variables", {"output": "json"})
    check("connections", {"list": "on", "output": "json"})
    check("list_connections", {"output": "json"})
    named("pool", get="NAME")
    check("list_pools", {"output": "json"})
    check("list_dags", {"output": "json"})
    check("list_tasks", {"dag_id": DAG})
    check("dag_details", {"dag_id": DAG, "output": "json"})
    check("next_execution", {"dag_id": DAG})
    check("list_import_errors", {"output": "json"})
    check("dag_state", {"dag_id": DAG, "execution_date": RUN_DATE})
    check("task_state", {"dag_id": DAG, "task_id": "first", "execution_date": RUN_DATE})
    # Airflow prints the failed dependencies in the order of a set whose members hash by
    # type identity: the order changes from one cold process to the next as well.
    check(
        "task_failed_deps",
        {"dag_id": DAG, "task_id": "second", "execution_date": RUN_DATE},
        lines_unordered=True,
    )
    check("list_dag_runs", {"dag_id": DAG, "output": "json"})
    check("list_task_states", {"dag_id": DAG, "execution_date": RUN_ID, "output": "json"})
    check("render", {"dag_id": DAG, "task_id": "first", "execution_date": RUN_DATE})
    # State-changing calls: the state is put back between the warm and the cold call.
    check("unpause", {"dag_id": DAG, "output": "json"}, between=lambda: airflow.cli("dags", "pause", DAG))
    check("pause", {"dag_id": DAG, "output": "json"}, between=lambda: airflow.cli("dags", "unpause", DAG))
    # Errors are the same too: a usage error, an unknown DAG.
    check("dag_state", {"dag_id": "no_such_dag", "execution_date": RUN_DATE})
    check("trigger_dag", {"dag_id": DAG, "run_id": "eq_w", "output": "json"},
          {"dag_id": DAG, "run_id": "eq_c", "output": "json"})  # fmt: skip
    clear = {"dag_id": DAG, "task_regex": "first", "start_date": RUN_DATE[:10], "end_date": "2026-10-06",
             "no_confirm": "on"}  # fmt: skip

    def reset() -> None:
        status, body = call(pair["cold"], "clear", **clear)
        assert status == 200, json.dumps(body)[:2000]

    reset()  # both calls start from a cleared task instance
    check("test", {"dag_id": DAG, "task_id": "first", "execution_date": RUN_ID}, between=reset)
    check("clear", clear)
    check(
        "run", {"dag_id": DAG, "task_id": "first", "execution_date": RUN_DATE, "local": "on"}, between=reset
    )
    check("backfill", {"dag_id": DAG, "start_date": "2026-09-01", "end_date": "2026-09-01", "dry_run": "on"})
    check("refresh_all_dags", {})
    named("variables", delete="NAME")
    named("connections", delete="on", conn_id="NAME")
    named("pool", delete="NAME")

    cli_apis = {name for name, api in CATALOGUE.items() if api.kind not in (ApiKind.BUILTIN, ApiKind.DAEMON)}
    assert cli_apis - seen == set(), "every CLI API must be compared warm against cold"


@pytest.fixture
def fresh_files(airflow: AirflowHome) -> Iterator[dict[str, Path]]:
    """A DAG that shows, at parse time, a config marker and the loaded plugins; all removed after."""
    cfg = airflow.home / "airflow.cfg"
    plugins = airflow.home / "plugins"
    plugins.mkdir(exist_ok=True)
    files = {
        "cfg": cfg,
        "dag": airflow.dags_folder / "gw_fresh.py",
        "dag2": airflow.dags_folder / "gw_fresh_two.py",
        "plugin": plugins / "gw_fresh_plugin.py",
    }
    original = cfg.read_text()
    files["dag"].write_text(FRESH_DAG.format(dag_id="gw_fresh", extra=""))
    yield files
    cfg.write_text(original)
    for key in ("dag", "dag2", "plugin"):
        files[key].unlink(missing_ok=True)


FRESH_DAG = """
from datetime import datetime
from airflow import plugins_manager
from airflow.configuration import conf
try:
    from airflow.providers.standard.operators.empty import EmptyOperator
except ImportError:
    from airflow.operators.empty import EmptyOperator
from airflow import DAG

with DAG("{dag_id}", start_date=datetime(2026, 1, 1), schedule=None):
    EmptyOperator(task_id="cfg_" + conf.get("gateway_test", "marker", fallback="none"))
    for info in plugins_manager.get_plugin_info():
        EmptyOperator(task_id="plugin_" + info["name"])
{extra}
"""

FRESH_PLUGIN = """
from airflow.plugins_manager import AirflowPlugin


class GwFreshPlugin(AirflowPlugin):
    name = "gw_fresh_plugin"
"""


def test_the_next_call_sees_config_plugin_and_dag_changes(
    pair: dict[str, GatewayServer], airflow: AirflowHome, fresh_files: dict[str, Path]
) -> None:
    warm = pair["warm"]

    def tasks(dag_id: str = "gw_fresh") -> str:
        # Airflow 3 knows a DAG once it is serialized: the refresh is the call that parses
        # the DAG files with the configuration and plugins as they are now.
        status, body = call(warm, "refresh_all_dags")
        assert status == 200, json.dumps(body)[:2000]
        status, body = call(warm, "list_tasks", dag_id=dag_id)
        assert status == 200, json.dumps(body)[:2000]
        return str(body["output"]["stdout"])

    wait_warm(warm)
    assert "cfg_none" in tasks() and "plugin_gw_fresh_plugin" not in tasks()
    fresh_files["cfg"].write_text(fresh_files["cfg"].read_text() + "\n[gateway_test]\nmarker = edited\n")
    assert "cfg_edited" in tasks()
    fresh_files["plugin"].write_text(FRESH_PLUGIN)
    assert "plugin_gw_fresh_plugin" in tasks()
    fresh_files["dag"].write_text(
        FRESH_DAG.format(dag_id="gw_fresh", extra="    EmptyOperator(task_id='added')")
    )
    assert "added" in tasks()
    fresh_files["dag2"].write_text(FRESH_DAG.format(dag_id="gw_fresh_two", extra=""))
    assert "cfg_edited" in tasks("gw_fresh_two")
    wait_warm(warm)  # a new warm process took over and sees the same
    assert "plugin_gw_fresh_plugin" in tasks() and "cfg_edited" in tasks()
    log = warm.log_text()
    assert "replacing the warm CLI process" in log and "config" in log and "plugins" in log
    metrics = get(f"{warm.url}/metrics").body.decode()
    assert re.search(r'airflow_gateway_cli_runner_calls_total\{runner="warm"\} [1-9]', metrics)
    assert re.search(r'airflow_gateway_cli_warm_restarts_total\{reason="config"\} [1-9]', metrics)
    assert re.search(r'airflow_gateway_cli_warm_restarts_total\{reason="plugins"\} [1-9]', metrics)
    assert re.search(r"airflow_gateway_cli_warm_rss_bytes [1-9]", metrics)


def test_airflow_records_the_gateway_principal(pair: dict[str, GatewayServer], airflow: AirflowHome) -> None:
    """Airflow's log table names the principal (cli.pass_principal_as_user, default on), warm and cold."""
    wait_warm(pair["warm"])  # the freshness test may just have replaced its warm process
    for runner in ("warm", "cold"):
        # Setting the same value again changes nothing: repeat until the wanted runner served
        # it (a worker the earlier calls did not reach may only now see the freshness test's
        # last edit, and run this one call cold).
        for _ in range(10):
            status, body = call(pair[runner], "variables", set=f"who_{runner}", set_value="x")
            assert status == 200, body
            if body["runner"] == runner:
                break
        assert body["runner"] == runner
    with sqlite3.connect(airflow.home / "airflow.db") as db:
        owners = {row[0] for row in db.execute("SELECT owner FROM log WHERE extra LIKE '%who_%'")}
    assert owners == {PRINCIPAL}, owners


def _running_a_call(pid: int) -> bool:
    """A warm server's child running a call: its stdout is the call's pipe (a pooled child
    waiting for its call still has the server's own, the server log)."""
    try:
        return os.readlink(f"/proc/{pid}/fd/1").startswith("pipe:")
    except OSError:
        return False


def _warm_server_running_a_call(gateway: GatewayServer, within_s: float = 60.0) -> int:
    """The pid of the gateway's warm server that has forked a call (a child of its own)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        parents: dict[int, int] = {}
        servers_of_gateway: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
            if b"gateway/execution/warm/server.py" in cmdline:
                servers_of_gateway.add(int(entry.name))
        for pid in servers_of_gateway:
            ancestor = parents.get(pid, 0)
            while ancestor > 1 and ancestor != gateway.proc.pid:
                ancestor = parents.get(ancestor, 0)
            calls = [child for child, parent in parents.items() if parent == pid and _running_a_call(child)]
            if ancestor == gateway.proc.pid and calls:
                return pid
        time.sleep(0.05)
    raise AssertionError("no warm server of this gateway forked the call")


@pytest.mark.airflow_versions("airflow3")
def test_a_warm_process_dying_during_a_call_answers_the_calls_own_outcome(
    pair: dict[str, GatewayServer],
) -> None:
    """The warm server SIGKILLed while a real Airflow call runs: the call's own outcome as soon as
    it ends (it was a 504 "did not finish in time" at the timeout); the next call works."""
    warm = pair["warm"]
    wait_warm(warm)
    answers: list[tuple[int, dict[str, Any]]] = []
    args = {
        "dag_id": "gw_slow",
        "task_id": "lines",
        "execution_date": "2026-11-21",
        "task_params": '{"n": 8}',
    }
    thread = threading.Thread(target=lambda: answers.append(call(warm, "test", **args)))
    started = time.monotonic()
    thread.start()
    os.kill(_warm_server_running_a_call(warm), signal.SIGKILL)
    thread.join(300)
    status, body = answers[0]
    assert (status, body["runner"], body["exit_code"]) == (200, "warm", 0), json.dumps(body)[:3000]
    # Answered when the command ended, well before the call's 120 s timeout (a loaded machine
    # takes tens of seconds for this task).
    assert "gw-line 8" in body["output"]["stdout"] and time.monotonic() - started < 100, body[
        "duration_seconds"
    ]
    status, body = call(warm, "version")  # cold while a new warm process starts
    assert status == 200 and body["exit_code"] == 0, body
    wait_warm(warm)
    assert "the warm CLI process (pid" in warm.log_text() and "died during a call" in warm.log_text()
