"""prometheus_client's multiprocess directory, prepared without importing prometheus_client.

prometheus_client chooses between in-process and mmap-file values when it is *imported*
(``values.ValueClass``), so ``PROMETHEUS_MULTIPROC_DIR`` must be in the environment
before any process that records metrics imports it.  The launchers (``airflow-gateway
serve``, the container entrypoint, the test fixture) set and wipe it before Python
starts; ``gunicorn.conf.py`` is the safety net for a plain ``gunicorn -c gunicorn.conf.py``.
Nothing here may import prometheus_client.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import MutableMapping
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
_DB_FILE = re.compile(r"^[a-z_]+_(?P<pid>\d+)\.db$")


class MultiprocError(RuntimeError):
    """The multiprocess directory cannot be set up safely."""


def wipe(directory: Path, *, keep_pid: int | None = None) -> int:
    """Delete the metric files of earlier runs (all but ``keep_pid``'s); returns how many.

    Stale files would add old counts, and dead workers' live gauges, to every scrape.
    """
    removed = 0
    for path in directory.glob("*.db"):
        match = _DB_FILE.match(path.name)
        if keep_pid is not None and match and int(match.group("pid")) == keep_pid:
            continue
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def ensure_env(environ: MutableMapping[str, str], default: Path) -> Path:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` (to ``default`` when unset) and create the directory.

    :raises MultiprocError: when prometheus_client is already imported in this process
        with the variable unset: its value class is fixed, and setting it now would leave
        workers reporting per-process numbers.
    """
    value = environ.get(ENV)
    if not value:
        if "prometheus_client" in sys.modules:
            raise MultiprocError(
                f"{ENV} is not set and prometheus_client is already imported: set {ENV} before starting"
                " the gateway (airflow-gateway serve does), or /metrics would show one worker's numbers"
            )
        value = environ[ENV] = str(default)
    directory = Path(value)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def prepare(environ: MutableMapping[str, str], default: Path) -> Path:
    """:func:`ensure_env`, then :func:`wipe`: what a launcher does before Python starts."""
    directory = ensure_env(environ, default)
    wipe(directory, keep_pid=os.getpid())
    return directory
