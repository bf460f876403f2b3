"""Real Airflow web servers on loopback: Airflow 3 ``api-server``, Airflow 2 and 1.10 ``webserver``.

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
        # Its own pid file: a second webserver of the same home (another test's) would otherwise
        # find AIRFLOW_HOME's and refuse to start ("already running").
        "--pid",
        str(tmp / f"webserver-{port}.pid"),
    ]
    url = f"http://127.0.0.1:{port}"
    proc = _start(argv, env, log, f"{url}/health")
    return AirflowServer(url=url, proc=proc, log=log, env=env)


def start_webserver110(
    airflow: AirflowHome, tmp: Path, *, rbac: bool, extra_env: dict[str, str] | None = None
) -> AirflowServer:
    """``airflow webserver`` (Airflow 1.10): Flask-Admin without authentication, or FAB with
    ``rbac = True`` and the user admin/admin.  Its gunicorn is found on ``PATH`` (the venv's bin).

    Workers are never recycled (``worker_refresh_interval``), so a test sees what a DAG refresh
    does, not what a fresh worker would read.
    """
    assert airflow.major == "1.10", "this is Airflow 1.10's web server"
    env = airflow.process_env()
    env.update(_SECRETS)
    env.update(
        {
            "AIRFLOW__WEBSERVER__RBAC": str(rbac),
            "AIRFLOW__WEBSERVER__WORKER_REFRESH_INTERVAL": "86400",
            "AIRFLOW__WEBSERVER__WEB_SERVER_WORKER_TIMEOUT": "240",
        }
    )
    env.update(extra_env or {})
    if rbac:
        # With rbac on, 1.10 first writes AIRFLOW_HOME/webserver_config.py (its FAB database
        # URI); without it create_user would create the user in an in-memory database.
        done = subprocess.run(
            [str(airflow.executable), "create_user", "--role", "Admin", "--username", USERNAME,
             "--password", PASSWORD, "--firstname", "Ad", "--lastname", "Min", "--email", "admin@example.invalid"],
            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert done.returncode == 0 and USERNAME in [
            r[0] for r in airflow.sql("SELECT username FROM ab_user")
        ], done.stdout + done.stderr
    port = free_port()
    log = tmp / f"webserver110-{port}.log"
    argv = [
        str(airflow.executable), "webserver", "--hostname", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--pid", str(tmp / "webserver.pid"),  # two webservers of one home would share AIRFLOW_HOME's
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    proc = _start(argv, env, log, f"{url}/health")
    return AirflowServer(url=url, proc=proc, log=log, env=env)
