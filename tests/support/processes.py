"""Processes seen from ``/proc``, for tests that check nothing of a call survives."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

PROC = Path("/proc")


def gone(pid: int, within_s: float = 10.0) -> bool:
    """True once ``pid`` has exited (a zombie counts: it is dead, its parent reaps it)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _stat(entry: Path) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), None once gone."""
    try:
        return (entry / "stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def _live() -> Iterator[tuple[int, list[str]]]:
    """Every live (not zombie) process but this one, with its stat fields."""
    for entry in PROC.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            fields = _stat(entry)
            if fields is not None and fields[0] != "Z":
                yield int(entry.name), fields


def alive(pid: int) -> bool:
    """Whether ``pid`` runs now (a zombie does not)."""
    fields = _stat(PROC / str(pid))
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> set[int]:
    """Live children of ``pid``."""
    return {child for child, fields in _live() if int(fields[1]) == pid}


def in_group(pgid: int) -> list[int]:
    """Live processes of the process group ``pgid``."""
    return [pid for pid, fields in _live() if int(fields[2]) == pgid]


def with_environment(entry: str) -> list[int]:
    """Live processes whose environment holds ``entry`` (``NAME=value``)."""
    found = []
    for pid, _ in _live():
        try:
            environ = (PROC / str(pid) / "environ").read_bytes()
        except OSError:
            continue
        if entry.encode() in environ.split(b"\0"):
            found.append(pid)
    return found
