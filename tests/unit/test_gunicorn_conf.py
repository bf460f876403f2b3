"""gateway/entry/gunicorn_conf.py: gunicorn's settings come from [server], whatever name set them.

Real gunicorn (``--print-config``: the settings module runs as for a start and gunicorn prints
what it read, nothing is bound), in a clean environment so the test's own variables do not leak
in. gunicorn then loads the app, which fails here for want of an Airflow (the e2e tests start
it for real): only what was printed is checked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _print_config(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--print-config"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "configuration error" not in done.stderr and "workers" in done.stdout, done.stderr[-2000:]
    pairs = (line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def test_server_settings_reach_gunicorn_from_the_file_and_both_env_names(tmp_path: Path) -> None:
    (tmp_path / "gw.toml").write_text("[server]\nworkers = 3\nkeepalive = 7\naccess_log = '-'\n")
    printed = _print_config(
        tmp_path,
        {
            "AIRFLOW_GATEWAY_CONFIG": str(tmp_path / "gw.toml"),
            "AIRFLOW_GATEWAY__GATEWAY__STATE_DIR": str(tmp_path / "state"),
            "AIRFLOW_GATEWAY__SERVER__GRACEFUL_TIMEOUT": "12",
            "GATEWAY_THREADS": "20",
            "GATEWAY_BIND": "127.0.0.1:9",
        },
    )
    assert printed["workers"] == "3" and printed["keepalive"] == "7" and printed["accesslog"] == "-"
    assert printed["graceful_timeout"] == "12" and printed["threads"] == "20"
    assert printed["bind"] == "['127.0.0.1:9']"
    assert printed["timeout"] == "150"  # cli.default_timeout (120) + 30


def test_defaults_and_the_thread_floor(tmp_path: Path) -> None:
    printed = _print_config(
        tmp_path,
        {
            "AIRFLOW_GATEWAY__GATEWAY__STATE_DIR": str(tmp_path / "state"),
            "AIRFLOW_GATEWAY__CLI__MAX_WAITING": "9",
        },
    )
    assert printed["workers"] == "2" and printed["bind"] == "['127.0.0.1:8000']"
    assert printed["accesslog"] == "None"
    # never fewer than the CLI (3 + 9) and job output streams (8) can hold, plus 4
    assert printed["threads"] == str(3 + 9 + 8 + 4)


def test_a_bad_server_setting_stops_gunicorn_naming_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--print-config"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "GATEWAY_WORKERS": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "configuration error: server.workers has value '0'" in done.stderr
    assert "GATEWAY_WORKERS='0'" in done.stderr
