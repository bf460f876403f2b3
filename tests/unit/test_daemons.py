"""DaemonManager's start-up check: a daemon that dies soon after it starts is an error (issue 14)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gateway.cli.daemons import DaemonManager

# Dies 4 s after it starts, having used almost no CPU: what a daemon starved of CPU on a
# loaded machine looks like while it is still importing Airflow, before it fails.
SLOW_DEATH = [sys.executable, "-c", "import time; time.sleep(4); raise SystemExit(3)"]
BUSY = [sys.executable, "-c", "import time\nend = time.time() + 60\nwhile time.time() < end: pass"]


def manager(tmp_path: Path, **kwargs: float) -> DaemonManager:
    return DaemonManager(tmp_path / "daemons", env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path / "cwd", **kwargs)


def test_a_daemon_dying_after_the_wall_clock_grace_is_still_caught(tmp_path: Path) -> None:
    """Past the 3 s wall-clock grace but before using its CPU grace: the start reports its exit code."""
    record, code = manager(tmp_path).start("kerberos", SLOW_DEATH)
    assert code == 3
    assert (tmp_path / "daemons" / f"{record.id}.exit").read_text() == "3"


def test_a_busy_daemon_is_running_once_it_used_its_cpu_grace(tmp_path: Path) -> None:
    """A daemon at work returns as started after the CPU grace, long before max_wait_s."""
    dm = manager(tmp_path, grace_s=0.5, cpu_grace_s=0.5, max_wait_s=50)
    began = time.monotonic()
    record, code = dm.start("scheduler", BUSY)
    try:
        assert code is None and dm.alive(record)
        assert time.monotonic() - began < 45
    finally:
        dm.stop(record.id)


def test_an_idle_daemon_is_running_after_max_wait(tmp_path: Path) -> None:
    """A daemon that stays up but idle is reported started after max_wait_s."""
    dm = manager(tmp_path, grace_s=0.2, cpu_grace_s=100, max_wait_s=1.0)
    record, code = dm.start("serve_logs", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert code is None and dm.alive(record)
    finally:
        dm.stop(record.id)
