"""Kill a CLI call's whole process tree, whatever sessions its children made.

Killing the call's process group misses children that called ``setsid`` (BashOperator
runs bash in its own session).  Instead the call's first process becomes a *child
subreaper* (orphaned descendants reparent to it, not to PID 1, while it lives), and
:func:`kill_tree` walks ``/proc`` for every descendant, freezes them with SIGSTOP so none
can fork again, and SIGKILLs them all.

Standard library only and Python 3.8-compatible: the warm CLI server loads this file
into Airflow's own interpreter (Airflow 1.10 runs on Python 3.8).
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Callable, Iterable

PR_SET_CHILD_SUBREAPER = 36
_libc = None


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux >= 3.4)."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        return bool(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def lower_priority(nice: int, cgroup: str = "") -> None:
    """Run this process in ``cgroup`` and at ``nice``, in the scheduler's eyes too, after ``setsid``.

    ``cgroup`` is the idle CPU cgroup of :mod:`gateway.execution.cpugroup` ("" for none): its
    processes yield the CPU at once to any other that wakes.  Joining it is best effort (a
    call must not fail for its priority); the gateway checked at start that it can.

    With autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``, on by default
    in most distribution kernels) every session is a scheduling group of its own, and a
    process's nice value only weighs against its own group: a CLI call in its new session
    would get as much CPU as the whole gateway worker, whatever its nice value.  So the new
    group's nice is set too.  Best effort: raising a nice value needs no privilege.
    """
    if cgroup:
        try:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as handle:
                handle.write(str(os.getpid()))
        except OSError:
            pass
    if nice <= 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError:
        pass
    try:
        with open("/proc/self/autogroup", "w") as handle:
            handle.write(str(nice))
    except OSError:
        pass  # no autogroup support (kernel option off, or no /proc)


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw.rpartition(")")[2].split()
    return fields if len(fields) >= 20 else None


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a live process from a reused pid); None if dead.

    A zombie counts as dead: a killed process stays one until its parent reaps it.
    """
    fields = stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _stat(pid: int) -> tuple[int, int, int, str] | None:
    """(ppid, pgid, sid, starttime) of ``pid``, or None when it is gone."""
    fields = stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None  # zombies are already dead; their parent reaps them
    return int(fields[1]), int(fields[2]), int(fields[3]), fields[19]


def _table() -> dict[int, tuple[int, int, int, str]]:
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            found = _stat(int(name))
            if found is not None:
                table[int(name)] = found
    return table


def members(root: int, known: Iterable[tuple[int, str]] = ()) -> dict[int, str]:
    """Live processes of the call: ``root``'s descendants, its session and group, and ``known``.

    ``known`` are (pid, starttime) pairs seen earlier; a pid whose start time changed was
    reused by an unrelated process and is left alone.
    """
    table = _table()
    found: dict[int, str] = {}
    for pid, start in known:
        if pid in table and table[pid][3] == start:
            found[pid] = start
    if root in table:
        found[root] = table[root][3]
    for pid, (_ppid, pgid, sid, start) in table.items():
        if pid != os.getpid() and root in (pgid, sid):
            found[pid] = start
    children: dict[int, list[int]] = {}
    for pid, (ppid, _pgid, _sid, _start) in table.items():
        children.setdefault(ppid, []).append(pid)
    queue = list(found)
    while queue:
        for child in children.get(queue.pop(), ()):
            if child not in found and child != os.getpid():
                found[child] = table[child][3]
                queue.append(child)
    return found


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _never() -> bool:
    return False


def kill_tree(root: int, grace_s: float = 3.0, exited: Callable[[], bool] | None = None) -> set[int]:
    """SIGTERM the call's tree, wait up to ``grace_s``, then freeze and SIGKILL what is left.

    ``exited`` is an optional callable returning True once ``root`` itself has been reaped
    by its parent; when it has, the root's pid is not signalled again (it may be reused).
    Returns the pids that had to be SIGKILLed.
    """
    root_gone = exited or _never
    snapshot = members(root)
    _signal_all(snapshot, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        alive = members(root, snapshot.items())
        if root_gone():
            alive.pop(root, None)
        if not alive:
            return set()
        time.sleep(0.05)
    # Freeze until the set stops growing: a stopped process cannot fork again.
    frozen: dict[int, str] = {}
    for _ in range(50):
        alive = members(root, list(snapshot.items()) + list(frozen.items()))
        if root_gone():
            alive.pop(root, None)
        new = {pid: start for pid, start in alive.items() if pid not in frozen}
        if not new:
            break
        _signal_all(new, signal.SIGSTOP)
        frozen.update(new)
    _signal_all(frozen, signal.SIGKILL)
    return set(frozen)
