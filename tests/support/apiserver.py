"""A real ``airflow api-server`` (Airflow 3, simple auth manager) on a loopback port."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.airflow import AirflowHome
from tests.support.servers import free_port, stop_group, wait_http

ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-test-password"


@dataclass
class ApiServer:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        stop_group(self.proc)


def start_api_server(airflow: AirflowHome, tmp: Path) -> ApiServer:
    """Start one api-server worker with the simple auth manager and a known admin password."""
    port = free_port()
    passwords = tmp / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
    env = airflow.process_env()
    env.update(
        {
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": "test-only-jwt-secret-0123456789abcdef",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        }
    )
    log = tmp / f"api-server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(airflow.executable),
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env=env,
            cwd=airflow.home,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/api/v2/monitor/health", proc, log, deadline_s=180)
    return ApiServer(url=url, proc=proc, log=log)
