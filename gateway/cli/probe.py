"""Find out, once at start-up, which Airflow is installed and which dialect it speaks."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.cli.spec import Dialect

# Runs inside Airflow's own interpreter: reading package metadata is far quicker than
# `airflow version`, which imports Airflow (figures in docs/api-reference.md).
_METADATA_SCRIPT = (
    "import importlib.metadata as m, json;"
    "print(json.dumps({'version': m.version('apache-airflow'),"
    "'dists': sorted({(d.metadata['Name'] or '').lower() for d in m.distributions()})}))"
)


class ProbeError(RuntimeError):
    """The Airflow installation could not be found or understood."""


@dataclass(frozen=True, slots=True)
class AirflowInstall:
    """What start-up learnt about the local Airflow."""

    executable: str
    version: str
    distributions: frozenset[str]


def dialect_for(version: str) -> str:
    """``3.3.2`` -> ``"3"``, ``2.11.2`` -> ``"2"``, ``1.10.15`` -> ``"1.10"``."""
    major = version.split(".", 1)[0]
    if major in {"2", "3"}:
        return major
    if version.startswith("1.10"):
        return "1.10"
    raise ProbeError(f"Airflow {version} is not supported (supported: 3.x, 2.x, 1.10)")


def _interpreter_of(executable: Path) -> str | None:
    try:
        with executable.open("rb") as handle:
            first = handle.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if first.startswith("#!") and "python" in first:
        return first[2:].strip().split()[0]
    return None


def airflow_python(executable: str) -> str | None:
    """The Python interpreter named by the ``airflow`` script's shebang, if any."""
    return _interpreter_of(Path(executable))


def probe(executable: str, env: Mapping[str, str], timeout_s: float = 60.0) -> AirflowInstall:
    """Locate ``airflow`` and read its version and installed distributions.

    :raises ProbeError: if the executable is missing or reports nothing usable.
    """
    resolved = shutil.which(executable, path=env.get("PATH"))
    if resolved is None:
        raise ProbeError(f"airflow.executable {executable!r} was not found (set airflow.executable)")
    python = _interpreter_of(Path(resolved))
    argv = [python, "-c", _METADATA_SCRIPT] if python else [resolved, "version"]
    try:
        # Its own session: a signal to the gateway's process group (a container's init forwards
        # SIGTERM and SIGHUP to the whole group) must not kill the probe of a worker still
        # booting, which gunicorn would take for a boot failure and halt on.  One process, no
        # children: the timeout's kill leaves nothing behind.
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, env=dict(env), timeout=timeout_s,
            check=False, start_new_session=True,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProbeError(f"could not run {resolved}: {type(exc).__name__}") from None
    text = done.stdout.decode("utf-8", "replace").strip()
    if done.returncode != 0 or not text:
        raise ProbeError(f"{resolved} did not report its version (exit code {done.returncode})")
    last = text.splitlines()[-1].strip()
    if python:
        try:
            info = json.loads(last)
        except ValueError:
            raise ProbeError(f"{resolved}: unexpected metadata output") from None
        return AirflowInstall(resolved, str(info["version"]), frozenset(info["dists"]))
    return AirflowInstall(resolved, last, frozenset())


def select_dialect(name: str, dialects: Mapping[str, Dialect]) -> Dialect:
    """The dialect table called ``name``.

    :raises ProbeError: if there is no such table.
    """
    try:
        return dialects[name]
    except KeyError:
        raise ProbeError(f"no CLI dialect table for Airflow {name!r} (have {', '.join(dialects)})") from None
