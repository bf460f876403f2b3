"""Daemon records, exported files and state directories (issue 13, findings 9 and 11)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from gateway.execution import daemons as daemons_module
from gateway.execution.subprocess_runner import NO_OPTIONS, CallOptions, CliResult
from tests.unit.gateway_app import TOKEN, FakeRunner, unit_gateway

AUTH = {"rest_api_plugin_http_token": TOKEN}
BROKER = "http://guest:Broker-Secret21@rabbit:15672/api/"


class _True(subprocess.Popen):  # type: ignore[type-arg]
    """The daemon's argv with /bin/true in place of the (absent) Airflow executable."""

    def __init__(self, args: list[str], **kwargs: Any) -> None:
        super().__init__(["/bin/true", *args[1:]], **kwargs)


def test_list_daemons_masks_argv_like_the_starting_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 9: the daemon's secret shows in neither answer, nor in its record on disk."""
    monkeypatch.setattr(daemons_module.subprocess, "Popen", _True)
    with unit_gateway(tmp_path) as gw:
        client = Client(gw.app)
        gw.app.calls.daemons.grace_s = 0.5
        gw.app.api.interpreter.distributions = frozenset({"apache-airflow-providers-celery"})
        started = client.get(
            "/admin/rest_api/api", query_string={"api": "flower", "broker_api": BROKER}, headers=AUTH
        )
        listed = client.get("/admin/rest_api/api", query_string={"api": "list_daemons"}, headers=AUTH)
        daemon_dir = gw.app.config.daemon_dir
    assert "Broker-Secret21" not in started.get_data(as_text=True), started.get_data(as_text=True)
    assert listed.status_code == 200
    [row] = listed.json["output"]
    assert row["api"] == "flower" and "Broker-Secret21" not in json.dumps(listed.json)
    records = list(daemon_dir.glob("*.json"))
    assert records and all("Broker-Secret21" not in p.read_text() for p in records)
    assert stat.S_IMODE(daemon_dir.stat().st_mode) == 0o700
    for path in daemon_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_exported_variables_are_removed_after_being_returned(tmp_path: Path) -> None:
    """Finding 11: the export file (secret values) is gone once its data is in the answer."""
    files = tmp_path / "files"

    class Exporting(FakeRunner):
        def run(self, argv: Any, *, timeout_s: float, options: CallOptions = NO_OPTIONS) -> CliResult:
            self.calls.append(list(argv))
            Path(argv[-1]).write_text(json.dumps({"db_password": "Exported-Secret22"}))
            return CliResult(0, "1 variables successfully exported\n", "", False, False, 0.1)

    with unit_gateway(tmp_path, runner=Exporting()) as gw:
        files.mkdir(exist_ok=True)
        reply = Client(gw.app).get(
            "/admin/rest_api/api", query_string={"api": "variables", "export": "vars.json"}, headers=AUTH
        )
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.json["data"] == {"db_password": "Exported-Secret22"}
    assert list(files.iterdir()) == []


def test_the_metrics_directory_is_created_0700(tmp_path: Path) -> None:
    from gateway.observability.multiprocess_dir import ensure_env

    directory = ensure_env({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m")}, tmp_path / "unused")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
