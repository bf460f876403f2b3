"""Timeouts, output caps, the console command, and start-up failures, against real Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.airflow import AirflowHome
from tests.support.http import get
from tests.support.servers import ROOT, GatewayServer, start_gateway

TOKEN = {"rest_api_plugin_http_token": "t0k3n"}


@pytest.fixture(scope="module")
def tight_gateway(airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway with a tiny timeout for `version` and a tiny output cap."""
    server = start_gateway(
        airflow3,
        tmp_path_factory.mktemp("tight"),
        settings={
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "t0k3n",
            "CLI__TIMEOUTS__VERSION": "0.2",
            "CLI__MAX_OUTPUT_BYTES": "8",
        },
        workers=1,
    )
    yield server
    server.stop()


def test_timeout_is_504_and_kills_the_command(tight_gateway: GatewayServer) -> None:
    """A command over its timeout answers 504 with the envelope, and no airflow process is left."""
    reply = get(tight_gateway.api("api=version"), headers=TOKEN)
    body = reply.json
    assert reply.status == 504 and body["status"] == "ERROR" and body["exit_code"] is None
    assert "did not finish in time" in body["error"]
    assert "raise cli.timeouts.version" in body["error"] and "mode=job" in body["error"]  # issue 15
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert not [line for line in ps.splitlines() if "airflow version" in line and "ps -eo" not in line]


def test_output_cap_truncates_and_flags(tight_gateway: GatewayServer) -> None:
    """Output over the cap is cut and flagged in the envelope; the call still succeeds."""
    reply = get(tight_gateway.api("api=list_tasks&dag_id=gw_example"), headers=TOKEN)
    body = reply.json
    assert reply.status == 200, body
    assert body["output_truncated"] is True and "truncated" in body["warning"]


def run_command(
    airflow: AirflowHome, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **airflow.process_env(),
        "PYTHONPATH": str(ROOT),
        "AIRFLOW_GATEWAY__AIRFLOW__EXECUTABLE": str(airflow.executable),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "gateway.entry.commands", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


def test_check_config_reports_the_detected_dialect(airflow: AirflowHome, tmp_path: Path) -> None:
    """`airflow-gateway check-config` validates, probes Airflow and prints a secret-free summary."""
    done = run_command(
        airflow,
        "check-config",
        env={
            "AIRFLOW_GATEWAY__GATEWAY__STATE_DIR": str(tmp_path),
            "AIRFLOW_GATEWAY__REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "very-secret-token",
        },
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["airflow"]["dialect_detected"] == airflow.major
    assert summary["airflow"]["version"].startswith(f"{airflow.major}.")
    assert "very-secret-token" not in done.stdout + done.stderr


def test_bad_setting_stops_start_up_naming_it(airflow3: AirflowHome, tmp_path: Path) -> None:
    """A bad value fails check-config and gunicorn alike, naming the setting, no traceback."""
    env = {"AIRFLOW_GATEWAY__CLI__DEFAULT_TIMEOUT": "soon"}
    done = run_command(airflow3, "check-config", env=env)
    assert done.returncode == 2
    assert "cli.default_timeout has value 'soon'" in done.stderr and "Traceback" not in done.stderr
    gunicorn = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--check-config"],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert gunicorn.returncode != 0 and "cli.default_timeout" in gunicorn.stderr


def test_missing_airflow_is_a_readable_error(airflow3: AirflowHome) -> None:
    """Pointing at no Airflow fails start-up with a message naming airflow.executable."""
    done = run_command(
        airflow3, "check-config", env={"AIRFLOW_GATEWAY__AIRFLOW__EXECUTABLE": "/nonexistent/airflow"}
    )
    assert done.returncode == 2 and "airflow.executable" in done.stderr and "Traceback" not in done.stderr


def test_airflow_cfg_migration_through_gunicorn(airflow3: AirflowHome, tmp_path: Path) -> None:
    """A [rest_api_plugin] section with a custom underscore header works end to end."""
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text(
        "[rest_api_plugin]\nrest_api_plugin_http_token_header_name = my_team_token\n"
        "rest_api_plugin_expected_http_token = from-airflow-cfg\n"
    )
    server = start_gateway(airflow3, tmp_path, settings={"REST_API_PLUGIN__AIRFLOW_CFG": str(cfg)}, workers=1)
    try:
        url = server.api("api=rest_api_plugin_version")
        assert get(url, headers={"my_team_token": "from-airflow-cfg"}).status == 200
        assert get(url, headers={"rest_api_plugin_http_token": "from-airflow-cfg"}).status == 403
        assert get(url, headers={"my_team_token": "wrong"}).json["output"] == "Token Authentication Failed"
    finally:
        server.stop()
