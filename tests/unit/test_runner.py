"""The subprocess runner: no shell, deadline kills the whole group, output is capped."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.execution.subprocess_runner import (
    Admission,
    CallOptions,
    ConcurrencyLimitReached,
    SubprocessRunner,
    call_environment,
    cli_environment,
)
from tests.support.processes import gone


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
    assert (
        not Path(f"/proc/{grandchild}").exists()
        or "Z" in Path(f"/proc/{grandchild}/stat").read_text().split()[2]
    )


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


# A child in its own session that ignores SIGTERM, started by a parent that then exits:
# BashOperator's shape (issue 13, finding 7).  Killing the process group missed it.
_ESCAPER = """
import os, signal, subprocess, sys, time
code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
open(sys.argv[1], "w").write(str(p.pid))
signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(600)
"""


def test_timeout_kills_children_in_other_sessions(tmp_path: Path) -> None:
    """Nothing of a timed-out call survives, even a setsid child that ignores SIGTERM."""
    marker = tmp_path / "escaper.pid"
    res = runner(tmp_path).run([sys.executable, "-c", _ESCAPER, str(marker)], timeout_s=2)
    assert res.timed_out
    assert gone(int(marker.read_text()))


def test_cancel_kills_the_tree_and_says_so(tmp_path: Path) -> None:
    """Setting the cancel event ends the call early; output so far reaches the callback."""
    marker = tmp_path / "escaper.pid"
    cancel = threading.Event()
    seen: list[tuple[str, bytes]] = []
    code = "import sys, time; print('first', flush=True); time.sleep(600)"

    def on_output(stream: str, data: bytes) -> None:
        seen.append((stream, data))
        cancel.set()

    res = runner(tmp_path).run(
        [sys.executable, "-c", code], timeout_s=60, options=CallOptions(on_output=on_output, cancel=cancel)
    )
    assert res.cancelled and not res.timed_out and res.returncode is None
    assert seen == [("stdout", b"first\n")] and res.stdout == "first\n"
    del marker


def test_admission_refuses_beyond_running_and_waiting() -> None:
    """With every slot and every waiting place taken, a call is refused at once."""
    admission = Admission(1, max_waiting=1, wait_s=30)
    admission.acquire()
    waiter = threading.Thread(target=lambda: (admission.acquire(), admission.release()))
    waiter.start()
    deadline = time.monotonic() + 10
    while admission._waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(ConcurrencyLimitReached):
        admission.acquire()
    assert time.monotonic() - started < 5  # refused, not queued for wait_s
    admission.release()
    waiter.join(10)


def test_admission_wait_times_out() -> None:
    admission = Admission(1, max_waiting=1, wait_s=0.1)
    admission.acquire()
    with pytest.raises(ConcurrencyLimitReached):
        admission.acquire()


def test_principal_becomes_the_os_user_name() -> None:
    """Airflow's getpass.getuser() reads LOGNAME first; odd characters cannot reach it."""
    env = call_environment({"PATH": "/bin", "USER": "gw"}, "alice@example.com")
    assert env["LOGNAME"] == env["USER"] == "alice@example.com"
    assert call_environment({}, "x\n\x00y z")["USER"] == "x__y_z"
    assert call_environment({"USER": "gw"}, None) == {"USER": "gw"}


def test_user_reaches_the_command(tmp_path: Path) -> None:
    res = runner(tmp_path).run(
        [sys.executable, "-c", "import getpass; print(getpass.getuser())"],
        timeout_s=30,
        options=CallOptions(user="svc-reporting"),
    )
    assert res.stdout == "svc-reporting\n"


def test_missing_executable_is_an_exit_code_not_a_crash(tmp_path: Path) -> None:
    res = runner(tmp_path).run([str(tmp_path / "nope")], timeout_s=30)
    assert res.returncode == 127 and "cannot run" in res.stderr
