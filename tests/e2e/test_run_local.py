"""The README's first command, scripts/run-local, brings up Airflow 3 and the gateway in front."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.http import get
from tests.support.processes import with_environment
from tests.support.servers import ROOT, free_port

DAG = "example_gateway"
RUN_ID = "run_local_check"


@dataclass
class RunLocal:
    proc: subprocess.Popen[bytes]
    output: Path
    local_dir: Path
    gateway_port: int
    airflow_port: int
    token: str

    def api(self, api: str, **args: str) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in {"api": api, **args}.items())
        reply = get(
            f"http://127.0.0.1:{self.gateway_port}/admin/rest_api/api?{query}",
            headers={"rest_api_plugin_http_token": self.token},
        )
        assert reply.status == 200, reply.body[:3000]
        body: dict[str, Any] = reply.json
        return body


def _descendants(root: int) -> set[int]:
    """``root`` and every process below it (run-local starts each daemon in its own session)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
        found.update(children)
        frontier.extend(children)
    return found


def _listeners(pids: set[int]) -> list[str]:
    """``host:port`` of the TCP sockets these processes listen on (from /proc, no tools needed)."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:  # gone meanwhile
            continue
        inodes.update(link[len("socket:[") : -1] for link in links if link.startswith("socket:["))
    addresses = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            raw, port = fields[1].split(":")
            # /proc shows the address as 32-bit words in host (little-endian) byte order.
            packed = b"".join(int(raw[k : k + 8], 16).to_bytes(4, "little") for k in range(0, len(raw), 8))
            host = socket.inet_ntop(family, packed)
            addresses.append(
                f"[{host}]:{int(port, 16)}" if family == socket.AF_INET6 else f"{host}:{int(port, 16)}"
            )
    return addresses


@pytest.fixture(scope="module")
def run_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunLocal]:
    """scripts/run-local on free, non-default ports, with logs of an earlier start in place."""
    tmp = tmp_path_factory.mktemp("run-local")
    local_dir = tmp / "local"
    local_dir.mkdir()
    (local_dir / "gateway.log").write_text("earlier-start-marker\n")
    gateway_port, airflow_port = free_port(), free_port()
    env = {
        **os.environ,
        "GATEWAY_PORT": str(gateway_port),
        "AIRFLOW_PORT": str(airflow_port),
        "AIRFLOW_GATEWAY_LOCAL_DIR": str(local_dir),
    }
    output = tmp / "run-local.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / "scripts" / "run-local")], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while "airflow-gateway is ready." not in output.read_text():
            assert proc.poll() is None, output.read_text()[-4000:]
            assert time.monotonic() < deadline, output.read_text()[-4000:]
            time.sleep(1)
        token = re.search(r"Token \(header rest_api_plugin_http_token\): (\S+)", output.read_text())
        assert token, output.read_text()
        yield RunLocal(proc, output, local_dir, gateway_port, airflow_port, token.group(1))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # Nothing the script started outlives it (a scheduler hanging after SIGTERM once did).
        left = with_environment(f"AIRFLOW_GATEWAY_LOCAL_DIR={local_dir}")
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert left == [], f"processes of run-local left behind: {left}"


def test_run_local_serves_the_api_and_proxies_airflow(run_local: RunLocal) -> None:
    """It prints a URL and token that work for the CLI API, and Airflow answers through it."""
    assert DAG in run_local.api("list_dags")["output"]["stdout"]
    health = get(f"http://127.0.0.1:{run_local.gateway_port}/api/v2/monitor/health")
    assert health.status == 200 and "metadatabase" in health.json


def test_a_dag_triggered_through_the_gateway_succeeds(run_local: RunLocal) -> None:
    """Tasks reach the Execution API on the chosen AIRFLOW_PORT (not Airflow's default 8080)."""
    run_local.api("unpause", dag_id=DAG)
    run_local.api("trigger_dag", dag_id=DAG, run_id=RUN_ID)
    deadline = time.monotonic() + 300
    state = None
    while time.monotonic() < deadline:
        body = run_local.api("list_dag_runs", dag_id=DAG, output="json")
        runs = body.get("data") or json.loads(body["output"]["stdout"] or "[]")
        state = next((r.get("state") for r in runs if r.get("run_id") == RUN_ID), None)
        if state in {"success", "failed"}:
            break
        time.sleep(3)
    logs = "".join(
        (run_local.local_dir / f"{name}.log").read_text(errors="replace")[-3000:] for name in ("scheduler",)
    )
    assert state == "success", f"run state {state!r}\n{logs}"


def test_triggerer_runs_and_every_listener_is_on_loopback(run_local: RunLocal) -> None:
    """Airflow's health shows a live triggerer; no process of run-local listens beyond 127.0.0.1."""
    deadline = time.monotonic() + 180
    triggerer: dict[str, Any] = {}
    while time.monotonic() < deadline:
        health = get(f"http://127.0.0.1:{run_local.gateway_port}/api/v2/monitor/health").json
        triggerer = health.get("triggerer", {})
        if triggerer.get("status") == "healthy":
            break
        time.sleep(2)
    assert triggerer.get("status") == "healthy", triggerer
    listeners = _listeners(_descendants(run_local.proc.pid))
    assert f"127.0.0.1:{run_local.gateway_port}" in listeners
    assert f"127.0.0.1:{run_local.airflow_port}" in listeners
    assert all(address.startswith("127.0.0.1:") for address in listeners), listeners


def test_no_test_tools_and_logs_of_earlier_starts_kept(run_local: RunLocal) -> None:
    """run-local installs no system packages (the bootstrap's test tools are skipped) and rotates logs."""
    assert "skipping the test tools" in run_local.output.read_text()
    assert (run_local.local_dir / "gateway.log.1").read_text() == "earlier-start-marker\n"
    assert "earlier-start-marker" not in (run_local.local_dir / "gateway.log").read_text()
