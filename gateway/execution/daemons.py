"""Detached long-running CLI processes (scheduler, workers, ...), visible to every worker.

Each daemon gets a JSON record and a log file in the state directory.  Records carry the
process start time from ``/proc`` so a recycled pid is never mistaken for our daemon,
and only processes recorded here can be stopped.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gateway.core.errors import Refused
from gateway.execution import proctree


@dataclass(frozen=True, slots=True)
class DaemonRecord:
    """One daemon the gateway started."""

    id: str
    api: str
    argv: tuple[str, ...]
    pid: int
    started_at: float
    proc_start: str | None
    log_path: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["argv"] = list(self.argv)
        return data


class DaemonError(Refused):
    """A daemon could not be started or stopped; ``status`` is the HTTP code."""


def _cpu_seconds(pid: int) -> float:
    """CPU time used by ``pid`` and its waited-for children (/proc/PID/stat), 0.0 if unreadable."""
    fields = proctree.stat_fields(pid)
    if fields is None:
        return 0.0
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_demand(pid: int) -> tuple[int, bool] | None:
    """Nanoseconds ``pid`` has run or waited on a run queue, and whether it waits on disk now.

    Read from ``/proc/PID/schedstat`` and ``/proc/PID/stat``; None if either is unreadable.
    Time spent waiting for a core counts: a process starved on a loaded machine still
    wants CPU, unlike one that sleeps.
    """
    try:
        run_ns, delay_ns, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return None
    fields = proctree.stat_fields(pid)
    if fields is None:
        return None
    return int(run_ns) + int(delay_ns), fields[0] == "D"


def _private(path: Path) -> int:
    """A file descriptor for writing ``path`` afresh, readable by the gateway's user only."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)


class DaemonManager:
    """Starts, lists and stops detached daemons.

    :param directory: state directory for records and logs (created if missing).
    :param env: environment for the daemons.
    :param cwd: working directory for the daemons.
    :param grace_s: how long (wall clock) a start waits at least to catch an early failure.
    :param quiet_s: after ``grace_s``, a daemon that has wanted (run or waited for) less
        than ``quiet_share`` of a core for this long, and was never seen waiting on disk,
        has finished starting and waits for work: it is running.  A daemon that dies once
        Airflow is imported (kerberos without kinit, flower without celery) wants a whole
        core until it dies, and on a loaded machine its wait for a core counts as wanting.
    :param quiet_share: see ``quiet_s``.
    :param cpu_grace_s: a daemon busy at work is running once it has used this much CPU
        time.  Twice the most measured for kerberos to fail without kinit (about 5 s on
        Airflow 3.3 on a fresh machine; 4 s was too close).
    :param max_wait_s: the longest a start waits.
    """

    def __init__(
        self,
        directory: Path,
        *,
        env: Mapping[str, str],
        cwd: Path,
        grace_s: float = 3.0,
        quiet_s: float = 1.5,
        quiet_share: float = 0.15,
        cpu_grace_s: float = 10.0,
        max_wait_s: float = 30.0,
    ) -> None:
        self.directory = directory
        self.env = dict(env)
        self.cwd = cwd
        self.grace_s = grace_s
        self.quiet_s = quiet_s
        self.quiet_share = quiet_share
        self.cpu_grace_s = cpu_grace_s
        self.max_wait_s = max_wait_s

    def start(
        self, api: str, argv: Sequence[str], *, shown_argv: Sequence[str] | None = None
    ) -> tuple[DaemonRecord, int | None]:
        """Start ``argv`` detached; returns the record and the exit code if it died at once.

        :param shown_argv: the argv as recorded and listed, secrets masked (the real one
            is never written down).
        """
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cwd.mkdir(parents=True, exist_ok=True)
        daemon_id = f"{api}-{secrets.token_hex(6)}"
        log_path = self.directory / f"{daemon_id}.log"
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        with open(log_fd, "ab", buffering=0) as log:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                close_fds=True,
            )
        record = DaemonRecord(
            id=daemon_id,
            api=api,
            argv=tuple(argv if shown_argv is None else shown_argv),
            pid=proc.pid,
            started_at=time.time(),
            proc_start=proctree.process_start(proc.pid),
            log_path=str(log_path),
        )
        self._write(record)
        code = self._wait_for_early_exit(proc)
        if code is None:
            # Reap it whenever it exits (no zombie left in this worker) and record how it ended.
            threading.Thread(
                target=lambda: self._write_exit(daemon_id, proc.wait()), name=f"reap-{daemon_id}", daemon=True
            ).start()
        else:
            self._write_exit(daemon_id, code)
        return record, code

    def _wait_for_early_exit(self, proc: subprocess.Popen[bytes]) -> int | None:
        """The exit code if the daemon ends during its start-up, else None (it is running)."""
        started = time.monotonic()
        samples: deque[tuple[float, int, bool]] = deque()  # (time, demand ns, on disk)
        while True:
            try:
                return proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            demand = _cpu_demand(proc.pid)
            if demand is None:
                samples.clear()  # unreadable: never judged quiet
            else:
                samples.append((now, *demand))
            while len(samples) > 1 and samples[1][0] <= now - self.quiet_s:
                samples.popleft()
            waited = now - started
            if waited >= self.max_wait_s:
                return None
            if waited < self.grace_s:
                continue
            if self._quiet(samples) or _cpu_seconds(proc.pid) >= self.cpu_grace_s:
                return None

    def _quiet(self, samples: deque[tuple[float, int, bool]]) -> bool:
        """Whether the samples span ``quiet_s`` and show the daemon wanting less than ``quiet_share``."""
        if not samples or samples[-1][0] - samples[0][0] < self.quiet_s:
            return False
        if any(on_disk for _, _, on_disk in samples):
            return False
        (first_t, first_ns, _), (last_t, last_ns, _) = samples[0], samples[-1]
        return (last_ns - first_ns) / 1e9 < self.quiet_share * (last_t - first_t)

    def _write(self, record: DaemonRecord) -> None:
        path = self.directory / f"{record.id}.json"
        tmp = path.with_suffix(".tmp")
        with open(_private(tmp), "w") as out:
            out.write(json.dumps(record.to_json()))
        os.replace(tmp, path)

    def _write_exit(self, daemon_id: str, code: int) -> None:
        with open(_private(self.directory / f"{daemon_id}.exit"), "w") as out:
            out.write(str(code))

    def _load(self, path: Path) -> DaemonRecord | None:
        try:
            data = json.loads(path.read_text())
            data["argv"] = tuple(data["argv"])
            return DaemonRecord(**data)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def alive(self, record: DaemonRecord) -> bool:
        """True while the recorded process (same pid *and* start time) is running."""
        return record.proc_start is not None and proctree.process_start(record.pid) == record.proc_start

    def get(self, daemon_id: str) -> DaemonRecord | None:
        return self._load(self.directory / f"{daemon_id}.json")

    def list(self) -> list[dict[str, Any]]:
        """Every recorded daemon, newest first, with ``alive`` and any known exit code."""
        if not self.directory.is_dir():
            return []
        rows = []
        for path in self.directory.glob("*.json"):
            record = self._load(path)
            if record is None:
                continue
            row = record.to_json()
            row["alive"] = self.alive(record)
            exit_file = self.directory / f"{record.id}.exit"
            row["exit_code"] = int(exit_file.read_text()) if exit_file.is_file() else None
            rows.append(row)
        return sorted(rows, key=lambda r: r["started_at"], reverse=True)

    def stop(self, daemon_id: str, grace_s: float = 10.0) -> dict[str, Any]:
        """SIGTERM the daemon's process group, SIGKILL after ``grace_s``.

        :raises DaemonError: 404 if the gateway did not start it.
        """
        record = self.get(daemon_id)
        if record is None:
            raise DaemonError(f"no daemon with id {daemon_id!r} was started by this gateway", 404)
        if not self.alive(record):
            return {"id": daemon_id, "stopped": False, "alive": False, "message": "not running"}
        os.killpg(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self.alive(record):
            time.sleep(0.1)
        killed = False
        if self.alive(record):
            os.killpg(record.pid, signal.SIGKILL)
            killed = True
            # SIGKILL is delivered asynchronously: answer once the process is really gone.
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and self.alive(record):
                time.sleep(0.05)
        return {"id": daemon_id, "stopped": True, "alive": self.alive(record), "sigkill": killed}
