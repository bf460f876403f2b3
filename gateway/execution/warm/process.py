"""One warm Airflow process, seen from the gateway worker that started it.

The channel is a ``SOCK_SEQPACKET`` socketpair inherited by the server alone: no port, no
path, nothing another process can connect to.  Each call sends one JSON message with
three pipe ends attached (``SCM_RIGHTS``): the child's stdout and stderr, and a status
pipe on which the server writes ``pid N`` when it has forked (or handed the call to a
pre-forked child) and ``exit CODE`` when it has reaped the child.  The child writes
``done CODE`` itself just before it exits, its output pipes closed: that code is the
call's answer, without waiting for the kernel to unmap the child (a copy of the server).
If the server dies first, the pipe's EOF comes with the child's exit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER = Path(__file__).resolve().with_name("server.py")
MAX_MESSAGE = 1024 * 1024
START_TIMEOUT_S = 10.0


class WarmUnavailable(Exception):
    """The warm process cannot take this call (it is gone, refused or did not warm up)."""


class WarmCall:
    """A call forked by the warm server: its pid, output pipes and exit status."""

    def __init__(self, pid: int, stdout: int, stderr: int, status: int, leftover: bytes) -> None:
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self._status = status
        self._buffer = b""
        self.returncode: int | None = None
        self._reported: int | None = None  # the child's own ``done`` line
        self._exited = False  # the server's ``exit`` line: reaped
        self._closed = False
        #: The server died before reaping the call (``returncode`` is then the child's own report).
        self.server_died = False
        self._take(leftover)  # a fast call's lines may have come with the ``pid`` line

    @property
    def lost(self) -> bool:
        """The server died and the child's exit code never came: it is unknown."""
        return self._closed and self.returncode is None

    def wait(self, timeout_s: float) -> bool:
        """Wait for the call's exit code; True once it is known (False: time is up, or :attr:`lost`).

        The child's own ``done`` line is enough: it is written after the child's last output,
        with nothing left to run but ``os._exit``.
        """
        deadline = time.monotonic() + timeout_s
        while self.returncode is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                return False
            self._read(remaining)
        return True

    def _read(self, timeout_s: float) -> None:
        if self._closed or not _readable(self._status, timeout_s):
            return
        chunk = os.read(self._status, 256)
        if not chunk:
            # Every writer is gone: the child has exited (it held the pipe) and so has the
            # server if no ``exit`` line came; the child's ``done`` line, if any, is the answer.
            self._closed = True
            if not self._exited:
                self.server_died = True
                self.returncode = self._reported
            return
        self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        self._buffer += chunk
        for line in self._buffer.split(b"\n")[:-1]:
            kind, _, value = line.decode("ascii", "replace").partition(" ")
            if kind == "exit":
                self.returncode = int(value)
                self._exited = True
            elif kind == "done":
                self._reported = int(value)
                if self.returncode is None:
                    self.returncode = self._reported
        self._buffer = self._buffer.rpartition(b"\n")[2]

    def reaped(self) -> bool:
        """The child has exited and is no longer ours to signal (EOF: it held the pipe too)."""
        self._read(0)
        return self._exited or self._closed

    def close(self) -> None:
        for fd in (self.stdout, self.stderr, self._status):
            os.close(fd)


def _readable(fd: int, timeout_s: float) -> bool:
    import select

    ready, _, _ = select.select([fd], [], [], timeout_s)
    return bool(ready)


@dataclass(frozen=True, slots=True)
class WarmFacts:
    """What the server reported once warm."""

    pid: int
    python: str
    airflow_version: str
    warm_s: float
    watch: tuple[str, ...]
    trees: tuple[str, ...]


class WarmProcess:
    """Start a warm server and send it calls; :meth:`start` blocks until it is warm.

    :param python: Airflow's own interpreter (from the ``airflow`` script's shebang).
    :param executable: the ``airflow`` console script every call runs.
    :param env: the environment of the server, and so of every call (as the cold runner's).
    :param cwd: the working directory of every call.
    :param steps: the dialect's warm-up table (:data:`gateway.execution.warm.steps.WARM_UP`).
    :param log_path: where the server's own output goes (warm-up warnings, crashes).
    :param nice: each call's CPU priority, as the cold runner's.
    :param cgroup: the idle CPU cgroup the server, and so every call, runs in.
    :param pool_size: children the server keeps forked ahead of calls (0: fork per call).
    :param pool_idle_s: seconds without a call after which the server empties its pool.
    """

    def __init__(
        self,
        *,
        python: str,
        executable: str,
        env: Mapping[str, str],
        cwd: Path,
        steps: Mapping[str, Sequence[str]],
        log_path: Path,
        nice: int = 0,
        cgroup: str | None = None,
        pool_size: int = 0,
        pool_idle_s: float = 60.0,
    ) -> None:
        self.python = python
        self.executable = executable
        self.env = dict(env)
        self.cwd = cwd
        self.steps = {key: list(value) for key, value in steps.items()}
        self.log_path = log_path
        self.nice = nice
        self.cgroup = cgroup
        self.pool_size = pool_size
        self.pool_idle_s = pool_idle_s
        self.started_at = time.monotonic()
        self.started_wall_ns = time.time_ns()
        self.calls = 0
        self.in_flight = 0
        self.retired = False
        self.due = False  # replaced once a successor is warm (it serves meanwhile)
        self.facts: WarmFacts | None = None
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float) -> WarmFacts:
        """Spawn the server and wait until it reports warm; raises :class:`WarmUnavailable`."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            args = [
                str(theirs.fileno()),
                self.executable,
                str(self.cwd),
                json.dumps(self.steps),
                str(self.nice),
                self.cgroup or "",
                str(self.pool_size),
                str(self.pool_idle_s),
            ]
            self._proc = subprocess.Popen(
                [self.python, str(SERVER), *args],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        theirs.close()
        self._sock = ours
        ours.settimeout(timeout_s)
        try:
            reply = ours.recv(MAX_MESSAGE)
        except OSError as exc:
            self.close(kill=True)
            raise WarmUnavailable(
                f"no answer from the warm process within {timeout_s:.0f} s ({exc})"
            ) from None
        finally:
            ours.settimeout(None)
        message: dict[str, Any] = (
            json.loads(reply) if reply else {"ready": False, "error": "exited while warming up"}
        )
        if not message.get("ready"):
            self.close(kill=True)
            raise WarmUnavailable(f"warm-up failed: {message.get('error')} (see {self.log_path})")
        self.facts = WarmFacts(
            pid=int(message["pid"]),
            python=str(message.get("python", "")),
            airflow_version=str(message.get("airflow_version", "")),
            warm_s=float(message.get("warm_s", 0.0)),
            watch=tuple(message.get("watch", ())),
            trees=tuple(message.get("trees", ())),
        )
        return self.facts

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def rss_bytes(self) -> int:
        """The server's resident memory (its forked children not included)."""
        try:
            with open(f"/proc/{self.pid}/status", "rb") as handle:
                for line in handle:
                    if line.startswith(b"VmRSS:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def begin(self, argv: Sequence[str], user: str | None) -> WarmCall:
        """Ask the server to fork a call; returns once it has (or raises :class:`WarmUnavailable`)."""
        if self._sock is None or not self.alive():
            raise WarmUnavailable("the warm process is not running")
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        mine = [out_r, err_r, status_r]
        try:
            payload = json.dumps({"argv": list(argv), "user": user, "nice": self.nice}).encode("utf-8")
            with self._lock:
                self._sock.sendmsg(
                    [payload],
                    [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(_fd_array(out_w, err_w, status_w)))],
                )
        except OSError as exc:
            for fd in mine:
                os.close(fd)
            raise WarmUnavailable(f"cannot reach the warm process ({exc})") from None
        finally:
            for fd in (out_w, err_w, status_w):
                os.close(fd)
        buffer = b""
        deadline = time.monotonic() + START_TIMEOUT_S
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            chunk = os.read(status_r, 256) if remaining > 0 and _readable(status_r, remaining) else b""
            if not chunk:
                for fd in mine:
                    os.close(fd)
                raise WarmUnavailable("the warm process did not start the call")
            buffer += chunk
        line, _, rest = buffer.partition(b"\n")
        kind, _, value = line.decode("ascii", "replace").partition(" ")
        if kind != "pid":
            for fd in mine:
                os.close(fd)
            raise WarmUnavailable(f"the warm process refused the call ({value})")
        return WarmCall(int(value), out_r, err_r, status_r, rest)

    def close(self, *, kill: bool = False, timeout_s: float = 10.0) -> None:
        """Close the channel (the server exits on it) and reap the server."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is None:
            return
        if kill:
            self._proc.kill()
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _fd_array(*fds: int) -> bytes:
    import array

    return array.array("i", fds).tobytes()
