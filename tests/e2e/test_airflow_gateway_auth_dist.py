"""airflow-gateway-auth as a distribution: its wheel installs into Airflow's own environments
with nothing else (issue 25)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.airflow import airflow_venv
from tests.support.assertions import AUTH_SRC


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel`` of a copy of the sources (building in the checkout would write there)."""
    tmp = tmp_path_factory.mktemp("airflow-gateway-auth-dist")
    source = tmp / "src"
    shutil.copytree(
        AUTH_SRC.parent, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    )
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
         "-w", str(tmp / "dist"), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (built,) = (tmp / "dist").glob("airflow_gateway_auth-*.whl")
    return built


def test_wheel_holds_the_package(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {"__init__", "verify", "roles", "settings", "airflow3", "airflow3_routes", "fab", "fab_backend"}
    assert {f"airflow_gateway_auth/{m}.py" for m in modules} | {"airflow_gateway_auth/py.typed"} <= names


@pytest.mark.parametrize("major", ["3", "2"])
def test_installs_into_airflows_environment_with_nothing_more(wheel: Path, major: str) -> None:
    """``pip install --dry-run --no-index`` into the (shared, untouched) Airflow venv: every
    requirement is already there, only this distribution would be added."""
    venv = airflow_venv(major)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--dry-run", "--no-index",
         "--disable-pip-version-check", "--report", "-", "--quiet", str(wheel)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    installs = [item["metadata"]["name"] for item in json.loads(done.stdout)["install"]]
    assert installs == ["airflow-gateway-auth"]
