"""Run one CLI command: argv list, own session, closed stdin, deadline, output cap.

:class:`CliRunner` is the interface the rest of the gateway depends on.  Two runners
implement it: :class:`SubprocessRunner` starts ``airflow`` cold for every call, and
:class:`gateway.execution.warm.warm_runner.WarmRunner` forks each call from a warm Airflow process.  Both
share :class:`Admission` (how many calls may run or wait), :func:`pump` (reading the two
streams under a deadline and a cap) and :func:`gateway.execution.proctree.kill_tree` (nothing of
a call survives its timeout or cancellation).
"""

from __future__ import annotations

import dataclasses
import os
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gateway.core.errors import Busy
from gateway.execution import proctree

KILL_GRACE_S = 3.0
_CHUNK = 65536

#: Receives output as it is produced: ``(stream, data)`` with stream "stdout" or "stderr".
OutputCallback = Callable[[str, bytes], None]

# Runs in the gateway's own Python before the command: the command's first process
# becomes a child subreaper (so its orphans stay findable), then execs the exact argv.
_LAUNCHER = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)\n"
    # As proctree.lower_priority (this runs with -I -S: the gateway is not importable).
    "nice, cgroup = int(sys.argv[1]), sys.argv[2]\n"
    "if cgroup:\n"
    "    try:\n"
    "        with open(os.path.join(cgroup, 'cgroup.procs'), 'w') as f:\n"
    "            f.write(str(os.getpid()))\n"
    "    except OSError:\n"
    "        pass\n"
    "if nice > 0:\n"
    "    try:\n"
    "        os.setpriority(os.PRIO_PROCESS, 0, nice)\n"
    "        with open('/proc/self/autogroup', 'w') as f:\n"
    "            f.write(str(nice))\n"
    "    except OSError:\n"
    "        pass\n"
    "try:\n"
    "    os.execvp(sys.argv[3], sys.argv[3:])\n"
    "except OSError as exc:\n"
    "    sys.stderr.write('cannot run %s: %s\\n' % (sys.argv[3], exc.strerror))\n"
    "    sys.exit(127)\n"
)


@dataclass(frozen=True, slots=True)
class CliResult:
    """What a finished, timed-out or cancelled command produced."""

    returncode: int | None
    stdout: str
    stderr: str
    truncated: bool
    timed_out: bool
    duration_s: float
    cancelled: bool = False
    #: "warm" (forked from a warm Airflow process) or "cold" (a new ``airflow`` process).
    runner: str = "cold"
    #: The warm process died during the call and the command's exit code never reached the
    #: gateway: it ran (or part of it did), with an unknown outcome.
    lost: bool = False


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Per-call facts beyond argv and timeout.

    :param user: the name Airflow records as the CLI user (its ``log`` table,
        ``triggering_user_name``); ``None`` keeps the gateway's OS user.
    :param on_output: called with each chunk of output as it arrives (jobs stream it).
    :param cancel: set it to kill the call's whole tree early.
    :param auxiliary: a read-back after the command, not the command itself: in a job, a
        cancel stops it without making the job cancelled, and its output is not the job's.
    """

    user: str | None = None
    on_output: OutputCallback | None = None
    cancel: threading.Event | None = field(default=None, compare=False)
    auxiliary: bool = False


NO_OPTIONS = CallOptions()


class CliRunner(Protocol):
    """Runs a command and returns its result; never raises for the command's own failure.

    :raises ConcurrencyLimitReached: when admission refuses the call.
    """

    def run(
        self, argv: Sequence[str], *, timeout_s: float, options: CallOptions = NO_OPTIONS
    ) -> CliResult: ...


class AuxiliaryCalls:
    """A :class:`CliRunner` whose every call is marked ``auxiliary`` (the read-backs' runner)."""

    def __init__(self, runner: CliRunner) -> None:
        self.runner = runner

    def run(self, argv: Sequence[str], *, timeout_s: float, options: CallOptions = NO_OPTIONS) -> CliResult:
        return self.runner.run(
            argv, timeout_s=timeout_s, options=dataclasses.replace(options, auxiliary=True)
        )


class ConcurrencyLimitReached(Busy):
    """CLI capacity is full: too many calls are running and waiting in this worker.

    A :class:`~gateway.core.errors.Busy`: it reaches the client as a 503 with ``Retry-After``
    wherever it is raised, with no mapping at the call sites."""


class Admission:
    """At most ``max_running`` calls run and ``max_waiting`` wait, each up to ``wait_s``.

    A call beyond both is refused at once, so CLI load can hold at most
    ``max_running + max_waiting`` of a worker's threads; the rest stay free for the proxy.
    """

    def __init__(self, max_running: int, max_waiting: int = 0, wait_s: float = 0.0) -> None:
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.wait_s = wait_s
        self._running = threading.BoundedSemaphore(max_running)
        self._lock = threading.Lock()
        self._waiting = 0

    def acquire(self) -> None:
        if self._running.acquire(blocking=False):
            return
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise ConcurrencyLimitReached()
            self._waiting += 1
        try:
            if not self._running.acquire(timeout=self.wait_s):
                raise ConcurrencyLimitReached()
        finally:
            with self._lock:
                self._waiting -= 1

    def release(self) -> None:
        self._running.release()


@dataclass(slots=True)
class Pumped:
    """The two streams read by :func:`pump`, and why reading stopped."""

    stdout: bytearray
    stderr: bytearray
    truncated: bool = False
    timed_out: bool = False
    cancelled: bool = False


def pump(
    streams: Mapping[str, int],
    *,
    deadline: float,
    max_bytes: int,
    on_output: OutputCallback | None = None,
    cancel: threading.Event | None = None,
) -> Pumped:
    """Read ``{"stdout": fd, "stderr": fd}`` until both close, the deadline passes or ``cancel`` is set.

    Each stream keeps at most ``max_bytes``; the rest is read and dropped (the child never
    blocks on a full pipe) and ``truncated`` is set.  ``on_output`` sees only kept bytes.
    """
    result = Pumped(bytearray(), bytearray())
    buffers = {"stdout": result.stdout, "stderr": result.stderr}
    tick = 0.2 if cancel is not None else 1.0
    with selectors.DefaultSelector() as selector:
        for name, fd in streams.items():
            selector.register(fd, selectors.EVENT_READ, name)
        while selector.get_map():
            if cancel is not None and cancel.is_set():
                result.cancelled = True
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                result.timed_out = True
                break
            for key, _ in selector.select(timeout=min(remaining, tick)):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = buffers[key.data]
                room = max_bytes - len(buffer)
                if len(chunk) > room:
                    result.truncated = True
                    chunk = chunk[: max(room, 0)]
                if chunk:
                    buffer += chunk
                    if on_output is not None:
                        on_output(key.data, chunk)
    return result


def result_of(
    pumped: Pumped, returncode: int | None, started: float, *, runner: str, lost: bool = False
) -> CliResult:
    """The :class:`CliResult` of a pumped call (no exit code when it was killed or ``lost``)."""
    killed = pumped.timed_out or pumped.cancelled
    return CliResult(
        returncode=None if killed else returncode,
        stdout=pumped.stdout.decode("utf-8", "replace"),
        stderr=pumped.stderr.decode("utf-8", "replace"),
        truncated=pumped.truncated,
        timed_out=pumped.timed_out,
        duration_s=time.monotonic() - started,
        cancelled=pumped.cancelled,
        runner=runner,
        lost=lost,
    )


_USER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+-")


def os_user_name(name: str) -> str:
    """``name`` as a safe user name for Airflow's records: other characters become ``_``, 64 at most."""
    return "".join(c if c in _USER_CHARS else "_" for c in name[:64]) or "_"


def call_environment(env: Mapping[str, str], user: str | None) -> dict[str, str]:
    """``env`` for one call: with ``user``, Airflow's ``getpass.getuser()`` returns it."""
    if user is None:
        return dict(env)
    safe = os_user_name(user)
    return {**env, "LOGNAME": safe, "USER": safe}


class SubprocessRunner:
    """Runs each command as a new process, never through a shell.

    :param env: the complete environment for the child (nothing else is inherited).
    :param cwd: a fixed working directory, so relative paths land in one known place.
    :param max_output_bytes: cap per stream; the rest is discarded and ``truncated`` set.
    :param admission: how many calls may run and wait at once in this process.
    """

    name = "cold"

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        cwd: Path,
        max_output_bytes: int,
        admission: Admission | None = None,
        nice: int = 0,
        cgroup: str | None = None,
    ) -> None:
        """:param nice: the calls' CPU priority (:func:`gateway.execution.proctree.lower_priority`),
        so that CLI work yields to the requests the gateway serves.
        :param cgroup: the idle CPU cgroup the calls run in (:mod:`gateway.execution.cpugroup`)."""
        self.env = dict(env)
        self.cwd = cwd
        self.max_output_bytes = max_output_bytes
        self.admission = admission or Admission(4)
        self.nice = nice
        self.cgroup = cgroup

    def run(self, argv: Sequence[str], *, timeout_s: float, options: CallOptions = NO_OPTIONS) -> CliResult:
        self.admission.acquire()
        try:
            return self.run_admitted(argv, timeout_s=timeout_s, options=options)
        finally:
            self.admission.release()

    def run_admitted(self, argv: Sequence[str], *, timeout_s: float, options: CallOptions) -> CliResult:
        """Run without taking a slot (the caller holds one)."""
        self.cwd.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(self.nice), self.cgroup or "", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=call_environment(self.env, options.user),
            cwd=self.cwd,
            start_new_session=True,
            close_fds=True,
        )
        assert proc.stdout is not None and proc.stderr is not None  # noqa: S101
        try:
            streams = {"stdout": proc.stdout.fileno(), "stderr": proc.stderr.fileno()}
            deadline = started + timeout_s
            pumped = pump(
                streams, deadline=deadline, max_bytes=self.max_output_bytes,
                on_output=options.on_output, cancel=options.cancel,
            )  # fmt: skip
            if not (pumped.timed_out or pumped.cancelled):
                try:
                    proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    pumped.timed_out = True
            if pumped.timed_out or pumped.cancelled:
                kill_process(proc)
        finally:
            proc.stdout.close()
            proc.stderr.close()
        return result_of(pumped, proc.returncode, started, runner=self.name)


def kill_process(proc: subprocess.Popen[bytes], grace_s: float = KILL_GRACE_S) -> None:
    """Kill ``proc`` and every process of its tree (see :mod:`gateway.execution.proctree`), then reap it."""
    proctree.kill_tree(proc.pid, grace_s, exited=lambda: proc.poll() is not None)
    if proc.poll() is None:
        proc.kill()
    proc.wait()


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
