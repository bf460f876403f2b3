"""deploy/compose.yaml brought up for real: PostgreSQL, Redis, Airflow 3 and the gateway.

The images are the local stand-ins of tests/support/docker.py, all on the one Debian base made
with debootstrap (no registry is reachable): PostgreSQL and Redis from Debian's packages, the
Airflow stand-in, and the gateway image of this checkout. deploy/compose.yaml itself is what
runs, with only its image variables and secrets set, under Debian's docker-compose (1.29)
against the private engine: its default network (a user-defined bridge) works there, so no
override file is needed. Through the gateway's published loopback port the test calls the CLI
API, Airflow's API and UI (proxied), a job and a rate limit counted in Redis; then it restarts
the gateway container, and recreates it (a new container, empty file system, new instance id),
and checks after each that nothing was lost: the variable, the finished job with its output
and its listing, the Redis counters; new calls and jobs work. ``docker-compose down -v`` at the
end removes containers, volumes and the network. Skipped, with the reason, where no engine can
run.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest

from tests.support.docker import ROOT, Images, postgres_standin, redis_standin
from tests.support.http import Reply, get, request
from tests.support.servers import free_port

pytestmark = pytest.mark.timeout(2400)  # a fresh engine: the image builds come first
COMPOSE = ROOT / "deploy" / "compose.yaml"
#: The only addition to the file under test: no DNS lookup forwarded beyond this machine.
LOCAL_DNS = ROOT / "tests" / "docker" / "compose.local-dns.yaml"
PROJECT_PREFIX = "agwcompose"
RULE = "compose-whoami"
WHOAMI_PER_HOUR = 3  # an hour: the window cannot roll over while the gateway restarts
ENDED = {"succeeded", "failed", "timed_out", "cancelled"}
AIRFLOW_HEALTH = ("metadatabase", "scheduler", "triggerer", "dag_processor")
RUNNING = {"postgres", "redis", "api-server", "scheduler", "dag-processor", "triggerer", "gateway"}
T = TypeVar("T")


@dataclass
class Stack:
    """One compose project on the private engine, and the gateway it publishes on loopback."""

    images: Images
    project: str
    env: dict[str, str]
    port: int
    token: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def compose(self, *args: str, timeout: float = 300.0, check: bool = True) -> str:
        """``docker-compose -f deploy/compose.yaml -p <project> <args>``; its output."""
        done = subprocess.run(
            [compose_tool(), "-f", str(COMPOSE), "-f", str(LOCAL_DNS), "-p", self.project, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker-compose {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n{self.logs()}"
            )
        return done.stdout

    def logs(self, tail: int = 40) -> str:
        """The last lines of every service's log, for failure messages."""
        done = subprocess.run(
            [
                compose_tool(),
                "-f",
                str(COMPOSE),
                "-f",
                str(LOCAL_DNS),
                "-p",
                self.project,
                "logs",
                "--no-color",
                f"--tail={tail}",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return f"--- docker-compose logs --tail={tail} ---\n{done.stdout[-12000:]}{done.stderr[-2000:]}"

    def api(self, query: dict[str, str], *, method: str = "GET") -> Reply:
        return request(
            method,
            f"{self.url}/admin/rest_api/api?{urlencode(query)}",
            headers={"rest_api_plugin_http_token": self.token},
        )

    def jobs(self, path: str = "") -> Reply:
        return get(
            f"{self.url}/admin/rest_api/jobs{path}", headers={"rest_api_plugin_http_token": self.token}
        )

    def container(self, service: str) -> str:
        """The id of the service's (single) container."""
        ids = self.compose("ps", "-q", service).split()
        assert len(ids) == 1, (service, ids)
        return ids[0]

    def psql(self, sql: str) -> str:
        """A query in the gateway's database, on the postgres container's Unix socket."""
        return self.compose(
            "exec", "-T", "postgres", "psql", "-U", "airflow", "-d", "gateway", "-tAc", sql
        ).strip()


def compose_tool() -> str:
    path = shutil.which("docker-compose")
    # The engine runs here (the fixture did not skip), so a missing client is a failure, not a skip.
    assert path, "docker-compose is not installed (scripts/bootstrap.d/50-docker.sh installs it)"
    return path


def until(read: Callable[[], T], done: Callable[[T], bool], within_s: float, what: str, stack: Stack) -> T:
    """``read()`` until ``done``; on timeout, fail naming ``what`` with the last reading and the logs."""
    deadline = time.monotonic() + within_s
    while True:
        last: object
        try:
            value = read()
        except OSError as exc:  # docker-proxy accepts on the published port before gunicorn listens
            last = exc
        else:
            if done(value):
                return value
            last = value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within_s:.0f} s; last: {last!r:.1500}\n{stack.logs()}")
        time.sleep(1)


def wait_ready(stack: Stack, within_s: float = 300.0) -> dict[str, Any]:
    """The gateway's /readyz says ok: the CLI, Airflow's api-server and Redis all answer."""
    reply = until(
        lambda: get(f"{stack.url}/readyz", timeout=30),
        lambda r: r.status == 200 and r.json.get("status") == "ok",
        within_s,
        "the gateway ready (/readyz 200, status ok)",
        stack,
    )
    checks: dict[str, Any] = reply.json["checks"]
    return checks


def run_job(stack: Stack, query: dict[str, str]) -> dict[str, Any]:
    """Submit ``query`` as a job (mode=job), poll it until it ends; its record."""
    submitted = stack.api({**query, "mode": "job"})
    assert submitted.status == 202, submitted.body[:2000]
    job_id = submitted.json["output"]["job_id"]
    assert submitted.headers["Location"] == f"/admin/rest_api/jobs/{job_id}"
    record: dict[str, Any] = until(
        lambda: stack.jobs(f"/{job_id}").json,
        lambda job: job["state"] in ENDED,
        180,
        f"job {job_id} ({query}) ended",
        stack,
    )
    return record


def job_output(stack: Stack, job_id: str) -> str:
    reply = stack.jobs(f"/{job_id}/output?format=json")
    assert reply.status == 200 and reply.json["done"] is True, reply.body[:2000]
    return "".join(chunk["text"] for chunk in reply.json["chunks"] if chunk["stream"] == "stdout")


def logs_of(stack: Stack, container: str) -> str:
    """What a container printed, stdout and stderr."""
    done = stack.images.engine.docker("logs", container)
    return (done.stdout + done.stderr).decode(errors="replace")


def whoami_status(stack: Stack) -> Reply:
    return stack.api({"api": "whoami"})


def remove_stale_projects(stack: Stack) -> None:
    """Projects of a session that was killed before its teardown (the engine's lock allows one
    session at a time, so any other project of ours is stale): down -v, as the teardown would."""
    labels = stack.images.engine.docker(
        "ps", "-a", "--filter", "label=com.docker.compose.project",
        "--format", '{{.Label "com.docker.compose.project"}}',
    ).stdout.decode()  # fmt: skip
    for project in sorted(set(labels.split())):
        if project.startswith(PROJECT_PREFIX) and project != stack.project:
            Stack(stack.images, project, stack.env, stack.port, stack.token).compose(
                "down", "-v", timeout=300
            )


@pytest.fixture(scope="module")
def stack(docker_images: Images) -> Iterator[Stack]:
    engine = docker_images.engine
    seconds: dict[str, float] = {}
    postgres, seconds["postgres_standin"] = postgres_standin(engine, docker_images.debian, docker_images.work)
    redis, seconds["redis_standin"] = redis_standin(engine, docker_images.debian, docker_images.work)
    print(f"\ncompose image build seconds: {json.dumps(seconds)}")
    token = secrets.token_hex(16)
    rules = [{"id": RULE, "principal": "*", "api": "whoami", "limit": f"{WHOAMI_PER_HOUR}/hour"}]
    env = {
        **engine.env(),
        # Images: every one built locally (tests/support/docker.py); nothing is pulled.
        "POSTGRES_IMAGE": postgres,
        "REDIS_IMAGE": redis,
        "AIRFLOW_IMAGE": docker_images.airflow,
        "GATEWAY_IMAGE": docker_images.gateway,
        # The secrets the file requires.
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW_SECRET_KEY": secrets.token_hex(32),
        "AIRFLOW_JWT_SECRET": secrets.token_hex(32),
        "GATEWAY_TOKEN": token,
        "GATEWAY_PORT": str(free_port()),
        "GATEWAY_RATE_LIMIT_RULES": json.dumps(rules),
    }
    for name in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"):
        env.pop(name, None)
    created = Stack(docker_images, f"{PROJECT_PREFIX}{os.getpid()}", env, int(env["GATEWAY_PORT"]), token)
    remove_stale_projects(created)
    try:
        started = time.monotonic()
        # up waits for the healthchecks the file's depends_on name (PostgreSQL, Redis, the
        # api-server) and for airflow-init's `db migrate` to finish.
        created.compose("up", "-d", "--no-build", timeout=900)
        created.timings["up"] = time.monotonic() - started
        yield created
    finally:
        created.compose("down", "-v", "--remove-orphans", timeout=300)
        for kind in ("ps -a", "volume ls", "network ls"):
            left = engine.docker(
                *kind.split(), "-q", "--filter", f"label=com.docker.compose.project={created.project}"
            ).stdout.split()
            assert left == [], f"docker {kind}: left behind by {created.project}: {left}"


def test_compose_stack_serves_and_a_restarted_gateway_loses_nothing(stack: Stack) -> None:
    started = time.monotonic()
    checks = wait_ready(stack)
    assert checks["cli"]["airflow_version"] == "3.3.2", checks
    assert checks["rate_limits"]["storage"] == "redis", checks
    stack.timings["ready"] = time.monotonic() - started
    services = set(stack.compose("ps", "--services", "--filter", "status=running").split())
    assert services == RUNNING, stack.compose("ps")

    # 1. The CLI API: the Airflow CLI inside the gateway image, on the stack's PostgreSQL.
    version = stack.api({"api": "version"})
    assert version.status == 200 and version.json["output"]["stdout"].strip() == "3.3.2", version.body[:2000]
    key, value = f"compose_{secrets.token_hex(4)}", secrets.token_hex(8)
    written = stack.api({"api": "variables", "set": key, "set_value": value})
    assert written.status == 200, written.body[:2000]
    read = stack.api({"api": "variables", "get": key})
    assert read.status == 200 and read.json["output"]["stdout"].strip() == value, read.body[:2000]

    # 2. Airflow proxied: its health (every component of the stack reporting), its UI, and its
    # REST API with a token from its own login, reading the variable the CLI wrote.
    health = until(
        lambda: get(f"{stack.url}/api/v2/monitor/health"),
        lambda r: r.status == 200 and all(r.json[c]["status"] == "healthy" for c in AIRFLOW_HEALTH),
        240,
        "Airflow's scheduler, triggerer and dag-processor healthy (/api/v2/monitor/health)",
        stack,
    )
    assert health.json["metadatabase"]["status"] == "healthy"
    ui = get(f"{stack.url}/")
    assert ui.status == 200 and ui.content_type.startswith("text/html"), ui.body[:500]
    generated = "/opt/airflow/simple_auth_manager_passwords.json.generated"  # the api-server's admin
    password = json.loads(stack.compose("exec", "-T", "api-server", "cat", generated))["admin"]
    login = request(
        "POST",
        f"{stack.url}/auth/token",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"username": "admin", "password": password}).encode(),
    )
    assert login.status == 201, login.body[:500]
    bearer = {"Authorization": f"Bearer {login.json['access_token']}"}
    variable = get(f"{stack.url}/api/v2/variables/{key}", headers=bearer)
    assert variable.status == 200 and variable.json["value"] == value, variable.body[:500]

    # 3. A job: stored in PostgreSQL (the gateway database of postgres-init.sql) with its output.
    job = run_job(stack, {"api": "variables", "get": key})
    assert job["state"] == "succeeded" and job["exit_code"] == 0, job
    assert job_output(stack, job["job_id"]).strip() == value
    stored = stack.psql("SELECT id || ' ' || state FROM gateway_jobs").splitlines()
    assert f"{job['job_id']} succeeded" in stored, stored

    # 4. A rate limit counted in Redis: the rule's hourly budget used up.
    for _ in range(WHOAMI_PER_HOUR):
        allowed = whoami_status(stack)
        assert allowed.status == 200, allowed.body[:500]
    refused = whoami_status(stack)
    assert refused.status == 429 and f'"{RULE}"' in refused.headers["RateLimit-Policy"], refused.body[:500]
    assert stack.compose("exec", "-T", "redis", "redis-cli", "--scan").split(), "no keys in Redis"
    stack.timings["calls"] = time.monotonic() - started - stack.timings["ready"]

    # 5. Restart the gateway container, then recreate it (a new container: its /tmp state
    # directory and its instance id are new); after each, nothing is lost.
    first, printed = stack.container("gateway"), value  # what the first job printed
    for how in ("restart", "recreate"):
        began = time.monotonic()
        if how == "restart":
            stack.compose("restart", "gateway")
            assert stack.container("gateway") == first
        else:
            stack.compose("up", "-d", "--no-build", "--no-deps", "--force-recreate", "gateway")
            assert stack.container("gateway") != first
        state = stack.images.engine.docker(
            "inspect", "-f", "{{.State.StartedAt}}", stack.container("gateway")
        )
        wait_ready(stack)
        stack.timings[how] = time.monotonic() - began
        context = f"after the gateway's {how} (started {state.stdout.decode().strip()})"

        # The Redis counters survived: still refused within the hour.
        again = whoami_status(stack)
        assert again.status == 429, f"{context}: {again.status} {again.body[:500]!r}"
        # The variable (Airflow's database) and the finished job with its output and envelope.
        read = stack.api({"api": "variables", "get": key})
        assert read.status == 200 and read.json["output"]["stdout"].strip() == value, context
        kept = stack.jobs(f"/{job['job_id']}")
        assert kept.status == 200, f"{context}: {kept.body[:500]!r}"
        assert kept.json["state"] == "succeeded" and kept.json["envelope"]["status"] == "OK", context
        assert job_output(stack, job["job_id"]).strip() == printed, context
        listed = stack.jobs()
        assert job["job_id"] in {j["job_id"] for j in listed.json["jobs"]}, context
        # New calls and a new job work; Airflow's login still holds (its token, not the gateway's).
        value = secrets.token_hex(8)
        assert stack.api({"api": "variables", "set": key, "set_value": value}).status == 200, context
        fresh = run_job(stack, {"api": "variables", "get": key})
        assert fresh["state"] == "succeeded", f"{context}: {fresh}"
        assert job_output(stack, fresh["job_id"]).strip() == value, context
        if how == "recreate":
            assert fresh["instance"] != job["instance"], "a new container is a new gateway instance"
        proxied = get(f"{stack.url}/api/v2/variables/{key}", headers=bearer)
        assert proxied.status == 200 and proxied.json["value"] == value, context

    # 6. A reload: SIGHUP to the container, which dumb-init forwards to the whole process group
    # (gunicorn's master reloads; its workers must not die of it).  The container keeps running,
    # the gateway keeps answering and a job submitted just before the signal succeeds.
    began = time.monotonic()
    gateway = stack.container("gateway")
    running = stack.api({"api": "variables", "get": key, "mode": "job"})
    assert running.status == 202, running.body[:500]
    stack.images.engine.docker("kill", "-s", "HUP", gateway)
    until(
        lambda: logs_of(stack, gateway),
        lambda text: "configuration reloaded" in text,
        60,
        "the gateway's log saying the configuration was reloaded",
        stack,
    )
    reloaded = until(
        lambda: stack.api({"api": "variables", "get": key}),
        lambda r: r.status == 200,
        60,
        "an API call answered after the reload",
        stack,
    )
    assert reloaded.json["output"]["stdout"].strip() == value
    assert stack.container("gateway") == gateway, "the reload must not restart the container"
    ended = until(
        lambda: stack.jobs(f"/{running.json['output']['job_id']}"),
        lambda r: r.status == 200 and r.json["state"] not in ("queued", "running"),
        120,
        "the job started before the reload to end",
        stack,
    )
    assert ended.json["state"] == "succeeded", ended.json
    stack.timings["reload"] = time.monotonic() - began
    print(f"\ncompose stack seconds: {json.dumps({k: round(v, 1) for k, v in stack.timings.items()})}")
