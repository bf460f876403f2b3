"""An idle CPU cgroup for CLI work, so that a waking request never waits behind a CLI call.

Why not nice values alone: measured on a 2-core machine saturated by CLI calls (kernel 6.18,
EEVDF, tick-only preemption at HZ=250), a request's thread that wakes while a CLI call runs
waits for the call's slice to end, up to a tick, at every hop of the request: nice 10, the
autogroup's nice, ``SCHED_IDLE`` (only honoured between siblings of one group) and longer
slices all left a proxied request's p99 far above its idle value.  A cgroup with
``cpu.idle = 1`` is preempted by any non-idle waker at once, and gets CPU only when nobody
else wants it (figures in ``docs/cli-runner.md``, "CPU priority" and run 6).

The price is that CLI work can starve while the host's CPU is saturated by other processes;
each call's timeout still bounds it (504), and ``cli.idle_cgroup = "off"`` falls back to
``cli.nice`` alone.

Where the group goes (``cli.idle_cgroup = "auto"``):

- **cgroup v1** (a ``cpu`` hierarchy): a child of the gateway's own ``cpu`` cgroup.
- **cgroup v2**: a sibling of the gateway's own cgroup, when its parent is ours to write and
  has the ``cpu`` controller enabled for its children, as systemd's ``Delegate=yes`` with
  ``DelegateSubgroup=`` leaves it.  The gateway never enables controllers or moves other
  processes itself.

Any other case (read-only cgroup file system, as in an unprivileged container) falls back,
and says why.  The group is shared by the gateway instances under one parent and left in
place (an empty cgroup costs nothing; the next start reuses it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

NAME = "airflow-gateway-cli"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where CLI processes run: ``path`` (a cgroup directory) or nowhere special, and why."""

    path: str | None
    reason: str


class _Unsupported(Exception):
    """This process's cgroups leave no place for the group (not an error: the fallback)."""


def prepare(
    setting: str, *, proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")
) -> Placement:
    """Find or create the idle cgroup ``setting`` asks for ("auto", "off" or a directory)."""
    if setting == "off":
        return Placement(None, "cli.idle_cgroup is off")
    try:
        path = Path(setting) if setting != "auto" else _auto(proc_cgroup.read_text(), root)
        if setting != "auto" or not path.is_dir():
            path.mkdir(exist_ok=True)
        idle = path / "cpu.idle"
        if idle.read_text().strip() != "1":
            idle.write_text("1")
        if not os.access(path / "cgroup.procs", os.W_OK):
            raise PermissionError(f"{path / 'cgroup.procs'} is not writable")
    except _Unsupported as exc:
        return Placement(None, str(exc))
    except OSError as exc:
        return Placement(None, f"cannot use an idle cgroup: {exc}")
    return Placement(str(path), f"CLI calls run in the idle cgroup {path}")


def _auto(membership: str, root: Path) -> Path:
    """The idle group's path for this process's cgroup ``membership`` (``/proc/self/cgroup``)."""
    unified = None
    for line in membership.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, own = rest.partition(":")
        if "cpu" in controllers.split(","):
            mount = next((d for d in _v1_mounts(root) if "cpu" in d.name.split(",")), None)
            if mount is None:
                raise _Unsupported(f"no cgroup v1 cpu hierarchy under {root}")
            return mount / own.lstrip("/") / NAME
        if hierarchy == "0" and controllers == "":
            unified = own
    if unified is None or not (root / "cgroup.controllers").exists():
        raise _Unsupported("no cgroup cpu controller for this process")
    own_dir = root / unified.lstrip("/")
    if own_dir == root:
        raise _Unsupported("this process is in the root cgroup v2, which is not delegated")
    parent = own_dir.parent
    if "cpu" not in (parent / "cgroup.subtree_control").read_text().split():
        raise _Unsupported(f"the cpu controller is not enabled for the children of {parent}")
    if not os.access(parent, os.W_OK):
        raise _Unsupported(f"{parent} is not delegated to this user")
    return parent / NAME


def _v1_mounts(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if (p / "cpu.shares").exists())
    except OSError:
        return []
