"""Start-up mistakes are reported naming the setting, without a traceback (issue 13, finding 10).

Runs gunicorn itself with gunicorn.conf.py (``--check-config``: the configuration is loaded
and checked as for a real start, then gunicorn exits).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config.loader import ConfigError, load_config
from tests.support.servers import ROOT


def _start(tmp_path: Path, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_GATEWAY__", "PROMETHEUS_"))}
    env.update({"PYTHONPATH": str(ROOT), "AIRFLOW_GATEWAY__GATEWAY__STATE_DIR": str(tmp_path / "state")})
    env.update({f"AIRFLOW_GATEWAY__{k}": v for k, v in settings.items()})
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--check-config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        pytest.param({"GATEWAY__STATE_DIR": "{blocker}/state"}, "gateway.state_dir", id="state_dir"),
        pytest.param({"AUDIT__FILE": "{blocker}/audit.log"}, "audit.file", id="audit-file"),
        pytest.param({"CLI__FILES_DIR": "{blocker}/files"}, "cli.files_dir", id="files_dir"),
        pytest.param({"CLI__TIMEOUTS__TSET": "10"}, "cli.timeouts.tset", id="misspelt-api"),
    ],
)
def test_start_up_fails_naming_the_setting(tmp_path: Path, settings: dict[str, str], named: str) -> None:
    # A regular file where a directory must be: unwritable even for root.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    result = _start(tmp_path, {k: v.format(blocker=blocker) for k, v in settings.items()})
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"configuration error: {named}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("command", ["check-config", "serve"])
@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        pytest.param("GATEWAY__STATE_DIR", "{blocker}/state", "gateway.state_dir", id="state_dir"),
        pytest.param("AUDIT__FILE", "{blocker}/audit.log", "audit.file", id="audit-file"),
    ],
)
def test_the_commands_fail_naming_an_unwritable_path_setting(
    tmp_path: Path, command: str, setting: str, value: str, named: str
) -> None:
    """``airflow-gateway check-config`` and ``serve`` raised a bare OSError traceback (the
    state directory is made before gunicorn's own check runs, and by the app itself)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_GATEWAY__", "PROMETHEUS_"))}
    env.update({"PYTHONPATH": str(ROOT), "AIRFLOW_GATEWAY__GATEWAY__STATE_DIR": str(tmp_path / "state")})
    env[f"AIRFLOW_GATEWAY__{setting}"] = value.format(blocker=blocker)
    result = subprocess.run(
        [sys.executable, "-m", "gateway.entry.commands", command],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr[-2000:]
    assert lines[0].startswith(f"airflow-gateway: configuration error: {named} has value '{blocker}/")
    assert "not a directory" in lines[0].lower()


def test_known_apis_in_timeouts_are_accepted_and_a_typo_gets_a_hint() -> None:
    config = load_config(
        {"AIRFLOW_GATEWAY__CLI__TIMEOUTS__TEST": "300", "AIRFLOW_GATEWAY__CLI__TIMEOUTS__BACKFILL": "900"}
    )
    assert dict(config.cli.timeouts) == {"test": 300.0, "backfill": 900.0}
    with pytest.raises(ConfigError, match="did you mean 'test'"):
        load_config({"AIRFLOW_GATEWAY__CLI__TIMEOUTS__TSET": "10"})
