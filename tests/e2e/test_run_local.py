"""The README's first command, scripts/run-local, brings up Airflow 3 and the gateway in front."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.support.http import get
from tests.support.servers import ROOT, free_port


def test_run_local_serves_the_api_and_proxies_airflow(tmp_path: Path) -> None:
    """It prints a URL and token that work for the CLI API, and Airflow answers through it."""
    gateway_port, airflow_port = free_port(), free_port()
    env = {
        **os.environ,
        "GATEWAY_PORT": str(gateway_port),
        "AIRFLOW_PORT": str(airflow_port),
        "AIRFLOW_GATEWAY_LOCAL_DIR": str(tmp_path / "local"),
    }
    log = tmp_path / "run-local.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / "scripts" / "run-local")], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while "airflow-gateway is ready." not in log.read_text():
            assert proc.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(1)
        text = log.read_text()
        token = re.search(r"Token \(header rest_api_plugin_http_token\): (\S+)", text)
        assert token, text
        base = f"http://127.0.0.1:{gateway_port}"
        reply = get(f"{base}/admin/rest_api/api?api=list_dags", headers={"rest_api_plugin_http_token": token.group(1)})
        assert reply.status == 200, reply.body[:2000]
        assert "example_gateway" in reply.json["output"]["stdout"]
        health = get(f"{base}/api/v2/monitor/health")  # Airflow's own endpoint, through the proxy
        assert health.status == 200 and "metadatabase" in health.json
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
