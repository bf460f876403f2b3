"""The warm runner: CLI calls forked from a warm Airflow process, cold when it cannot.

One warm process per gunicorn worker, started by the worker in the background at boot
(calls run cold until it is warm).  It is replaced when what it read at import time
changes (``airflow.cfg``, plugins, the install, the Airflow environment), when its RSS
passes ``cli.warm_max_rss_bytes``, and when it dies: calls run cold until the new one is
warm.  After ``cli.warm_max_calls`` calls or ``cli.warm_max_age`` it is only *due*: it
serves until its successor is warm, so routine replacement costs no cold call.  A call
that finds no warm process runs cold (logged and counted), never fails for that reason.
Why one per worker rather than one per instance: docs/cli-runner.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.execution import proctree
from gateway.execution.subprocess_runner import (
    KILL_GRACE_S,
    NO_OPTIONS,
    CallOptions,
    CliResult,
    SubprocessRunner,
    os_user_name,
    pump,
    result_of,
)
from gateway.execution.warm.freshness import Fingerprint
from gateway.execution.warm.process import WarmProcess, WarmUnavailable
from gateway.execution.warm.steps import COLD_COMMANDS

log = logging.getLogger("gateway.cli.warm")

WARM_UP_TIMEOUT_S = 300.0
RETRY_AFTER_FAILURE_S = (10.0, 600.0)  # first and longest pause between failed warm-ups
#: Reasons that make a warm process due for replacement, not wrong: it keeps serving until
#: its successor is warm (the others retire it at once and calls run cold meanwhile).
DUE = frozenset({"max_calls", "max_age"})


class WarmObserver(Protocol):
    """Where the runner reports what it does (metrics)."""

    def cli_fallback(self, reason: str) -> None: ...

    def warm_restart(self, reason: str) -> None: ...

    def warm_rss(self, rss_bytes: int) -> None: ...


@dataclass(frozen=True, slots=True)
class WarmLimits:
    """When a warm process is replaced even though nothing changed."""

    max_calls: int = 2000
    max_age_s: float = 3600.0
    max_rss_bytes: int = 1024 * 1024 * 1024
    #: children each warm process keeps forked ahead of calls, and how long it keeps them idle
    pool_size: int = 2
    pool_idle_s: float = 300.0


class WarmRunner:
    """A :class:`~gateway.execution.subprocess_runner.CliRunner` forking calls from a warm Airflow process.

    :param cold: the cold runner, for fallbacks; its admission limits warm calls too.
    :param python: Airflow's own interpreter; ``None`` (unknown) means every call runs cold.
    :param steps: the dialect's warm-up table; ``None`` (no table) means every call runs cold.
    """

    name = "warm"

    def __init__(
        self,
        *,
        cold: SubprocessRunner,
        python: str | None,
        executable: str,
        steps: Mapping[str, Sequence[str]] | None,
        state_dir: Path,
        limits: WarmLimits = WarmLimits(),  # frozen, so one shared default is safe
        observer: WarmObserver | None = None,
    ) -> None:
        self.cold = cold
        self.admission = cold.admission
        self.python = python
        self.executable = executable
        self.steps = steps
        self.state_dir = state_dir
        self.limits = limits
        self.observer = observer
        self._lock = threading.Lock()
        self._current: WarmProcess | None = None
        self._fingerprint = Fingerprint()
        self._spawning = False
        self._next_try = 0.0
        self._failures = 0
        self._closed = False

    # -- the CliRunner interface -------------------------------------------------------

    def run(self, argv: Sequence[str], *, timeout_s: float, options: CallOptions = NO_OPTIONS) -> CliResult:
        self.admission.acquire()
        try:
            warm, reason = self._checkout(argv)
            if warm is None:
                return self._cold(argv, timeout_s, options, reason)
            try:
                return self._run_warm(warm, argv, timeout_s, options)
            except WarmUnavailable as exc:  # raised before the fork only: running it cold is safe
                self._retire(warm, "died")
                log.warning("warm CLI process unavailable (%s); running the call cold", exc)
                return self._cold(argv, timeout_s, options, "unavailable")
            finally:
                self._checkin(warm)
        finally:
            self.admission.release()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Begin warming up in the background (calls run cold meanwhile)."""
        with self._lock:
            self._spawn_locked("start")

    def close(self) -> None:
        """Stop the warm process (worker exit)."""
        with self._lock:
            self._closed = True
            current, self._current = self._current, None
        if current is not None:
            current.close()

    @property
    def process(self) -> WarmProcess | None:
        return self._current

    def _spawn_locked(self, reason: str) -> None:
        if self._spawning or self._closed or self.python is None or self.steps is None:
            return
        if time.monotonic() < self._next_try:
            return
        self._spawning = True
        if reason != "start":
            self._report_restart(reason)
        threading.Thread(target=self._spawn, name="warm-cli-spawn", daemon=True).start()

    def _spawn(self) -> None:
        assert self.python is not None and self.steps is not None  # noqa: S101 - checked by the caller
        process = WarmProcess(
            python=self.python,
            executable=self.executable,
            env=self.cold.env,
            cwd=self.cold.cwd,
            steps=self.steps,
            log_path=self.state_dir / "warm" / "server.log",
            nice=self.cold.nice,
            cgroup=self.cold.cgroup,
            pool_size=self.limits.pool_size,
            pool_idle_s=self.limits.pool_idle_s,
        )
        try:
            facts = process.start(WARM_UP_TIMEOUT_S)
        except (WarmUnavailable, OSError, ValueError) as exc:
            with self._lock:
                self._spawning = False
                self._failures += 1
                first, longest = RETRY_AFTER_FAILURE_S
                pause = min(first * 2 ** (self._failures - 1), longest)
                self._next_try = time.monotonic() + pause
            log.warning(
                "warm CLI process did not start (%s); CLI calls run cold, next try in %.0f s", exc, pause
            )
            return
        fingerprint = Fingerprint.take(facts.watch, facts.trees, self.cold.env)
        changed = fingerprint.newer_than(process.started_wall_ns)
        with self._lock:
            self._spawning = False
            self._failures = 0
            if self._closed:
                process.close()
                return
            previous, self._current, self._fingerprint = self._current, process, fingerprint
            if previous is not None:  # a due process served while this one warmed up
                self._retire_locked(previous, "its successor is warm", spawn=False)
        log.info(
            "warm CLI process ready: pid %s, Airflow %s on Python %s, warm-up %.1f s, RSS %d MiB",
            facts.pid, facts.airflow_version, facts.python, facts.warm_s, process.rss_bytes() >> 20,
        )  # fmt: skip
        if changed is not None:  # edited while warming up: this one may have read the old file
            with self._lock:
                self._retire_locked(process, "config" if changed.endswith(".cfg") else "plugins")

    # -- per call ------------------------------------------------------------------------

    def _checkout(self, argv: Sequence[str]) -> tuple[WarmProcess | None, str]:
        """The warm process to fork this call from, or (None, why it runs cold)."""
        if not argv or argv[0] != self.executable:
            return None, "not_airflow"
        if len(argv) > 1 and argv[1] in COLD_COMMANDS:
            return None, "cold_command"
        with self._lock:
            current = self._current
            if current is None:
                self._spawn_locked("unavailable")
                return None, "warming_up" if self._spawning else "unavailable"
            reason = self._stale(current)
            if reason in DUE:
                self._replace_when_warm_locked(current, reason)
            elif reason is not None:
                self._retire_locked(current, reason)
                return None, reason
            current.in_flight += 1
            current.calls += 1
            return current, ""

    def _stale(self, current: WarmProcess) -> str | None:
        """Why ``current`` must not serve (checked first), or is due (:data:`DUE`), or None."""
        if not current.alive():
            return "died"
        rss = current.rss_bytes()
        if self.observer is not None:
            self.observer.warm_rss(rss)
        if rss >= self.limits.max_rss_bytes:
            return "max_rss"
        facts = current.facts
        assert facts is not None  # noqa: S101 - only warm processes are current
        changed = self._fingerprint.changed(facts.watch, facts.trees, self.cold.env)
        if changed is not None:
            return changed
        if current.calls >= self.limits.max_calls:
            return "max_calls"
        if time.monotonic() - current.started_at >= self.limits.max_age_s:
            return "max_age"
        return None

    def _replace_when_warm_locked(self, warm: WarmProcess, reason: str) -> None:
        """``warm`` keeps serving while a successor warms up (:meth:`_spawn` swaps them)."""
        if not warm.due:
            warm.due = True
            log.info("the warm CLI process (pid %s) is due (%s): it serves until its successor is warm",
                     warm.pid, reason)  # fmt: skip
        self._spawn_locked(reason)

    def _checkin(self, warm: WarmProcess) -> None:
        with self._lock:
            warm.in_flight -= 1
            done = warm.retired and warm.in_flight == 0
        if done:
            _close_later(warm)

    def _retire(self, warm: WarmProcess, reason: str) -> None:
        with self._lock:
            self._retire_locked(warm, reason)

    def _retire_locked(self, warm: WarmProcess, reason: str, *, spawn: bool = True) -> None:
        """Take ``warm`` out of service (closed once its calls end); ``spawn``: start a new one."""
        if warm.retired:
            return
        warm.retired = True
        if self._current is warm:
            self._current = None
        log.info("replacing the warm CLI process (pid %s): %s", warm.pid, reason)
        if warm.in_flight == 0:
            _close_later(warm)
        if spawn:
            self._spawn_locked(reason)

    def _report_restart(self, reason: str) -> None:
        if self.observer is not None:
            self.observer.warm_restart(reason)

    def _cold(self, argv: Sequence[str], timeout_s: float, options: CallOptions, reason: str) -> CliResult:
        if reason not in ("not_airflow", "cold_command"):
            log.info("CLI call runs cold: %s", reason)
            if self.observer is not None:
                self.observer.cli_fallback(reason)
        return self.cold.run_admitted(argv, timeout_s=timeout_s, options=options)

    def _run_warm(
        self, warm: WarmProcess, argv: Sequence[str], timeout_s: float, options: CallOptions
    ) -> CliResult:
        started = time.monotonic()
        deadline = started + timeout_s
        user = os_user_name(options.user) if options.user is not None else None
        call = warm.begin(argv, user)
        try:
            pumped = pump(
                {"stdout": call.stdout, "stderr": call.stderr}, deadline=deadline,
                max_bytes=self.cold.max_output_bytes, on_output=options.on_output, cancel=options.cancel,
            )  # fmt: skip
            if not (pumped.timed_out or pumped.cancelled) and not call.wait(
                max(deadline - time.monotonic(), 0.1)
            ):
                pumped.timed_out = not call.lost  # a lost exit code is not a timeout
            if pumped.timed_out or pumped.cancelled:
                proctree.kill_tree(call.pid, KILL_GRACE_S, exited=call.reaped)
                call.wait(KILL_GRACE_S)
        finally:
            call.close()
        lost = call.lost and not (pumped.timed_out or pumped.cancelled)
        if call.server_died or not warm.alive():
            # Noticed at the status pipe's EOF, as soon as the child ended; the next call
            # runs cold while a new warm process starts.  The call must not run again cold:
            # it ran, and its own exit code (when it reported one) is the answer.
            self._retire(warm, "died")
            log.warning(
                "the warm CLI process (pid %s) died during a call; %s", warm.pid,
                "its exit code is unknown" if lost else f"the call's own exit code {call.returncode} is used",
            )  # fmt: skip
        return result_of(pumped, call.returncode, started, runner=self.name, lost=lost)


def _close_later(warm: WarmProcess) -> None:
    """Close a retired process without holding up the call that retired it."""
    threading.Thread(target=warm.close, name="warm-cli-close", daemon=True).start()
