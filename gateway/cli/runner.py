"""Run one CLI command: argv list, own process group, closed stdin, deadline, output cap.

:class:`CliRunner` is the small interface the rest of the gateway depends on; a faster
runner (e.g. a warm Airflow worker pool) can replace :class:`SubprocessRunner` later.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

KILL_GRACE_S = 3.0
_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class CliResult:
    """What a finished (or killed) command produced."""

    returncode: int | None
    stdout: str
    stderr: str
    truncated: bool
    timed_out: bool
    duration_s: float


class CliRunner(Protocol):
    """Runs a command and returns its result; never raises for the command's own failure."""

    def run(self, argv: Sequence[str], *, timeout_s: float) -> CliResult: ...


class ConcurrencyLimitReached(Exception):
    """More CLI calls are running in this worker than configured."""


class SubprocessRunner:
    """Runs commands with :func:`subprocess.Popen`, never through a shell.

    :param env: the complete environment for the child (nothing else is inherited).
    :param cwd: a fixed working directory, so relative paths land in one known place.
    :param max_output_bytes: cap per stream; the rest is discarded and ``truncated`` set.
    :param max_concurrent: CLI calls allowed at once in this process.
    :param queue_timeout_s: how long a call waits for a free slot before giving up.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        cwd: Path,
        max_output_bytes: int,
        max_concurrent: int = 4,
        queue_timeout_s: float = 30.0,
    ) -> None:
        self.env = dict(env)
        self.cwd = cwd
        self.max_output_bytes = max_output_bytes
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._queue_timeout_s = queue_timeout_s

    def run(self, argv: Sequence[str], *, timeout_s: float) -> CliResult:
        if not self._slots.acquire(timeout=self._queue_timeout_s):
            raise ConcurrencyLimitReached()
        try:
            return self._run(list(argv), timeout_s)
        finally:
            self._slots.release()

    def _run(self, argv: list[str], timeout_s: float) -> CliResult:
        self.cwd.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            close_fds=True,
        )
        buffers = {"stdout": bytearray(), "stderr": bytearray()}
        truncated = False
        timed_out = False
        deadline = started + timeout_s
        with selectors.DefaultSelector() as selector:
            assert proc.stdout is not None and proc.stderr is not None  # noqa: S101
            selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
            selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                for key, _ in selector.select(timeout=min(remaining, 1.0)):
                    chunk = os.read(key.fd, _CHUNK)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    buffer = buffers[key.data]
                    room = self.max_output_bytes - len(buffer)
                    if len(chunk) > room:
                        truncated = True
                    if room > 0:
                        buffer += chunk[:room]
        if timed_out:
            kill_group(proc)
        else:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc)
        proc.stdout.close()
        proc.stderr.close()
        return CliResult(
            returncode=None if timed_out else proc.returncode,
            stdout=buffers["stdout"].decode("utf-8", "replace"),
            stderr=buffers["stderr"].decode("utf-8", "replace"),
            truncated=truncated,
            timed_out=timed_out,
            duration_s=time.monotonic() - started,
        )


def kill_group(proc: subprocess.Popen[bytes], grace_s: float = KILL_GRACE_S) -> None:
    """SIGTERM the child's whole process group, then SIGKILL it after ``grace_s``."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    # Airflow's own children may outlive the leader: always sweep the group.
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cli_environment(
    base: Mapping[str, str], *, airflow_home: Path | None, executable: str, extra: Mapping[str, str]
) -> dict[str, str]:
    """The child's environment: a small allow-list plus ``AIRFLOW__*`` and ``AIRFLOW_HOME``.

    The Airflow venv's ``bin`` goes first on ``PATH`` because executors start
    ``airflow tasks run`` by name.
    """
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "PYTHONWARNINGS"}
    env = {k: v for k, v in base.items() if k in keep or k.startswith("AIRFLOW__")}
    bin_dir = str(Path(executable).parent) if os.sep in executable else None
    path = env.get("PATH", os.defpath)
    if bin_dir and bin_dir not in path.split(os.pathsep):
        path = bin_dir + os.pathsep + path
    env["PATH"] = path
    if airflow_home is not None:
        env["AIRFLOW_HOME"] = str(airflow_home)
    elif "AIRFLOW_HOME" in base:
        env["AIRFLOW_HOME"] = base["AIRFLOW_HOME"]
    env.update(extra)
    return env
