"""Real Airflow web servers on loopback: Airflow 3 ``api-server`` and Airflow 2 ``webserver``.

Each takes 10-30 s of CPU to start, so tests share them through session fixtures
(``airflow3_api``, ``airflow2_web`` in ``tests/conftest.py``).  Both get a known admin
login: ``admin`` / ``admin`` (simple auth manager on 3, FAB on 2).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.airflow import AirflowHome
from tests.support.servers import free_port, stop_group, wait_http

USERNAME = "admin"
PASSWORD = "admin"  # test-only credential for a loopback Airflow
# Fixed test secrets so that every process of one home agrees (loopback only).
_SECRETS = {
    "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret-for-loopback-airflow-only",
    "AIRFLOW__API__SECRET_KEY": "test-secret-key-for-loopback-airflow-only",
    "AIRFLOW__WEBSERVER__SECRET_KEY": "test-secret-key-for-loopback-airflow-only",
}


@dataclass
class AirflowServer:
    """A running Airflow web server: its URL, process and log."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        stop_group(self.proc)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _start(argv: list[str], env: dict[str, str], log: Path, health_url: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=log.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_http(health_url, proc, log, deadline_s=240)
    return proc


def start_api_server(
    airflow: AirflowHome, tmp: Path, *, extra_env: dict[str, str] | None = None
) -> AirflowServer:
    """``airflow api-server`` (Airflow 3) with one worker and the simple auth manager user admin/admin."""
    assert airflow.major == "3", "api-server is Airflow 3's web server"
    port = free_port()
    passwords = tmp / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USERNAME: PASSWORD}))
    env = airflow.process_env()
    env.update(_SECRETS)
    env.update(
        {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        }
    )
    env.update(extra_env or {})
    log = tmp / f"api-server-{port}.log"
    argv = [
        str(airflow.executable),
        "api-server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    url = f"http://127.0.0.1:{port}"
    proc = _start(argv, env, log, f"{url}/api/v2/version")
    return AirflowServer(url=url, proc=proc, log=log, env=env)


def start_webserver(
    airflow: AirflowHome, tmp: Path, *, extra_env: dict[str, str] | None = None
) -> AirflowServer:
    """``airflow webserver`` (Airflow 2, FAB) with one worker and the user admin/admin."""
    assert airflow.major == "2", "webserver is Airflow 2's web server"
    airflow.cli(
        "users",
        "create",
        "--username",
        USERNAME,
        "--password",
        PASSWORD,
        "--role",
        "Admin",
        "--firstname",
        "Ad",
        "--lastname",
        "Min",
        "--email",
        "admin@example.invalid",
    )
    port = free_port()
    env = airflow.process_env()
    env.update(_SECRETS)
    env.update(extra_env or {})
    log = tmp / f"webserver-{port}.log"
    argv = [
        str(airflow.executable),
        "webserver",
        "--hostname",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    url = f"http://127.0.0.1:{port}"
    proc = _start(argv, env, log, f"{url}/health")
    return AirflowServer(url=url, proc=proc, log=log, env=env)
