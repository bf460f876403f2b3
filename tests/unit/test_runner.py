"""The subprocess runner: no shell, deadline kills the whole group, output is capped."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from gateway.cli.runner import SubprocessRunner, cli_environment


def runner(tmp_path: Path, cap: int = 1024) -> SubprocessRunner:
    return SubprocessRunner(env={"PATH": os.environ["PATH"]}, cwd=tmp_path / "work", max_output_bytes=cap)


def test_separate_streams_and_exit_code(tmp_path: Path) -> None:
    """stdout and stderr come back separately with the exit code."""
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    res = runner(tmp_path).run([sys.executable, "-c", code], timeout_s=30)
    assert (res.returncode, res.stdout, res.stderr, res.timed_out) == (3, "out\n", "err\n", False)


def test_stdin_is_closed(tmp_path: Path) -> None:
    """A prompt reads EOF at once instead of hanging."""
    res = runner(tmp_path).run([sys.executable, "-c", "input('sure? ')"], timeout_s=30)
    assert res.returncode == 1 and "EOFError" in res.stderr


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    """On timeout the child and its own children are killed, and the result says so."""
    marker = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time;"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(marker)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    started = time.monotonic()
    res = runner(tmp_path).run([sys.executable, "-c", code], timeout_s=1.5)
    assert res.timed_out and res.returncode is None
    assert time.monotonic() - started < 10
    grandchild = int(marker.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{grandchild}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{grandchild}").exists() or "Z" in Path(f"/proc/{grandchild}/stat").read_text().split()[2]


def test_output_is_capped_and_flagged(tmp_path: Path) -> None:
    """More output than the cap is cut, the flag is set, and the child still finishes."""
    res = runner(tmp_path, cap=100).run([sys.executable, "-c", "print('x' * 100000)"], timeout_s=30)
    assert res.truncated and len(res.stdout) == 100 and res.returncode == 0


def test_environment_is_an_allow_list(tmp_path: Path) -> None:
    """Only PATH/HOME/locale and AIRFLOW__* reach the CLI, plus AIRFLOW_HOME; the venv leads PATH."""
    env = cli_environment(
        {"PATH": "/usr/bin", "AIRFLOW__CORE__X": "1", "SECRET_TOKEN": "s", "AIRFLOW_GATEWAY__Y": "2"},
        airflow_home=tmp_path,
        executable="/opt/af/bin/airflow",
        extra={"AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
    )
    assert env == {
        "PATH": "/opt/af/bin:/usr/bin",
        "AIRFLOW__CORE__X": "1",
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
