"""Real servers on 127.0.0.1 for end-to-end tests: gunicorn running the gateway."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.airflow import AirflowHome
from tests.support.http import get

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """TERM the process group, then KILL it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, deadline_s: float = 90.0) -> None:
    """Poll ``url`` until it answers 200, failing with the server log if it does not."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-5000:]}")
        try:
            if get(url, timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    stop_group(proc)
    pytest.fail(f"server did not answer {url} in {deadline_s}s:\n{log.read_text()[-5000:]}")


@dataclass
class GatewayServer:
    """gunicorn running the gateway against one Airflow home."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    state_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    multiproc_dir: Path | None = None

    def api(self, query: str) -> str:
        return f"{self.url}/admin/rest_api/api?{query}"

    def stop(self) -> None:
        stop_group(self.proc)

    def log_text(self) -> str:
        return self.log.read_text()


def start_gateway(
    airflow: AirflowHome,
    tmp: Path,
    *,
    settings: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
    workers: int = 2,
    app: str | None = None,
    port: int | None = None,
) -> GatewayServer:
    """Start gunicorn with ``gunicorn.conf.py`` on a free loopback port.

    :param settings: gateway settings as ``AIRFLOW_GATEWAY__…`` variables (without prefix),
        e.g. ``{"REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "changeme"}``.
    :param app: a WSGI app URI overriding ``wsgi_app`` (test-only wiring).
    :param port: the port to bind, when something started before must know it (an Airflow
        reading the gateway's JWKS); else a free one.

    A fresh, empty ``PROMETHEUS_MULTIPROC_DIR`` is set before gunicorn's Python starts,
    as the production launchers do.
    """
    port = port or free_port()
    state = tmp / f"gateway-state-{port}"
    log = tmp / f"gateway-{port}.log"
    env = airflow.process_env()
    multiproc = tmp / f"prometheus-multiproc-{port}"
    multiproc.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "GATEWAY_BIND": f"127.0.0.1:{port}",
            "GATEWAY_WORKERS": str(workers),
            "AIRFLOW_GATEWAY__AIRFLOW__EXECUTABLE": str(airflow.executable),
            "AIRFLOW_GATEWAY__AIRFLOW__HOME": str(airflow.home),
            "AIRFLOW_GATEWAY__GATEWAY__STATE_DIR": str(state),
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        }
    )
    env["AIRFLOW_GATEWAY__CLI__RUNNER"] = airflow.gateway_runner
    for key, value in (settings or {}).items():
        env[f"AIRFLOW_GATEWAY__{key}"] = value
    env.update(extra_env or {})
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), *([app] if app else [])],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", proc, log)
    return GatewayServer(url=url, proc=proc, log=log, state_dir=state, env=env, multiproc_dir=multiproc)


def wait_warm(server: GatewayServer, headers: dict[str, str], within_s: float = 240.0) -> None:
    """Until every live worker has a ready warm process (its log says so) and ten ``version``
    calls in a row are served warm.  The calls alone are not enough: the kernel may hand all
    ten to one worker while another still warms up (a CI run saw exactly that)."""
    deadline = time.monotonic() + within_s
    streak = 0
    while streak < 10 or not every_worker_warm(server.log_text()):
        if time.monotonic() > deadline:
            pytest.fail(f"the warm runner never served 10 calls in a row:\n{server.log_text()[-4000:]}")
        body = get(f"{server.url}/admin/rest_api/api?api=version", headers=headers, timeout=120).json
        streak = streak + 1 if body.get("runner") == "warm" else 0
        if not streak:
            time.sleep(0.5)


_BOOTED = re.compile(r"Booting worker with pid: (\d+)")
_EXITED = re.compile(r"Worker exiting \(pid: (\d+)\)")
_WARM = re.compile(r"warm CLI process ready: pid (\d+)")
_NOT_WARM = re.compile(r"replacing the warm CLI process \(pid (\d+)\)")


def every_worker_warm(log: str) -> bool:
    """Whether the log shows at least one ready, not replaced, warm process per live worker."""
    workers = set(_BOOTED.findall(log)) - set(_EXITED.findall(log))
    warm = set(_WARM.findall(log)) - set(_NOT_WARM.findall(log))
    return bool(workers) and len(warm) >= len(workers)
