"""Has anything a warm process read at import time changed since it warmed up?

A warm process reads ``airflow.cfg``, its plugins and the installed packages once.  The
gateway compares cheap ``stat`` fingerprints of those before each warm call (a few
syscalls, and a walk of the plugins folder); DAG files are not watched because the warm
process never parses them: each forked call does, as a cold process would.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_TREE_ENTRIES = 5000
Stamp = tuple[int, int, int]  # mtime_ns, size, inode; (0, 0, 0) for a missing path


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _walk(root: str) -> Iterable[str]:
    """``root`` and everything below it but ``__pycache__``, at most :data:`MAX_TREE_ENTRIES`."""
    yield root
    count = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in [*dirs, *sorted(files)]:
            count += 1
            if count > MAX_TREE_ENTRIES:
                return
            yield os.path.join(folder, name)


def airflow_env(env: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    """The part of an environment that configures Airflow."""
    return frozenset((k, v) for k, v in env.items() if k.startswith("AIRFLOW"))


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """Stamps of the watched files and trees, and the Airflow environment."""

    stamps: Mapping[str, Stamp] = field(default_factory=dict)
    env: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def take(cls, watch: Iterable[str], trees: Iterable[str], env: Mapping[str, str]) -> Fingerprint:
        stamps = {path: _stamp(path) for path in watch}
        for root in trees:
            stamps.update((path, _stamp(path)) for path in _walk(root))
        return cls(stamps, airflow_env(env))

    def changed(self, watch: Iterable[str], trees: Iterable[str], env: Mapping[str, str]) -> str | None:
        """What changed since this fingerprint was taken ("config", "plugins", ...), or None."""
        now = Fingerprint.take(watch, trees, env)
        if now.env != self.env:
            return "environment"
        for path, stamp in now.stamps.items():
            if self.stamps.get(path) != stamp:
                return _kind(path, trees)
        if now.stamps.keys() != self.stamps.keys():
            return "plugins"
        return None

    def newer_than(self, wall_ns: int) -> str | None:
        """A watched path modified after ``wall_ns`` (during warm-up), or None."""
        for path, (mtime_ns, _size, _ino) in self.stamps.items():
            if mtime_ns > wall_ns:
                return path
        return None


def _kind(path: str, trees: Iterable[str]) -> str:
    if any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in trees):
        return "plugins"
    if path.endswith(".cfg"):
        return "config"
    return "install"
