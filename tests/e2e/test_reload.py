"""Reload without dropping anything, through real gunicorn on real Airflow 3.

``SIGHUP`` is sent to the gateway's whole process group, as a container's init (dumb-init)
forwards it.  Under load from API calls, proxied requests, health checks and a job output
stream: the new configuration (a token added) takes effect, an invalid one is refused with
the old kept, no request fails, and a job running in a retired worker runs to its end with
every line streamed.  A server stopped while a retired worker waits for its job kills the
job's tree and records it.  Policies alone reload when their files change
(``policy.reload_interval``) and the audit says which version decided.

Airflow 3 only: reloading is the gateway's and gunicorn's, the same on every Airflow version.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from gateway.identity.tokens import hash_token
from gateway.jobs.wiring import SQLITE_NAME
from tests.e2e import test_jobs as jobs
from tests.e2e.test_jobs import LINE, job_url, slow_processes, submit, wait_done, wait_for_line
from tests.support.airflow import AirflowHome
from tests.support.http import get
from tests.support.processes import alive, children, in_group
from tests.support.servers import GatewayServer, start_gateway
from tests.support.sse import EventStream
from tests.support.upstreams import EchoUpstream

pytestmark = pytest.mark.airflow3

# alice's token is the jobs tests' (their helpers submit and watch as her); carol's is added by a reload.
TOKENS = {**jobs.TOKENS, "carol": "carol-token-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"}
AUTH = {name: {"X-Gateway-Authorization": f"Bearer {value}"} for name, value in TOKENS.items()}
POLICY = """
[[rule]]
id = "ops-run"
effect = "allow"
groups = ["ops"]
apis = ["test", "version", "whoami", "list_dags"]

[[rule]]
id = "ops-proxy"
effect = "allow"
groups = ["ops"]
proxy_paths = ["/*"]
"""
DENY_BOB = """
[[rule]]
id = "bob-no-version"
effect = "deny"
principals = ["bob"]
apis = ["version"]
"""


def config_text(*names: str, extra: str = "") -> str:
    """The gateway's TOML file with named tokens for ``names`` (all in group ops)."""
    tokens = ", ".join(
        f'{{ name = "{n}", sha256 = "{hash_token(TOKENS[n])}", groups = ["ops"] }}' for n in names
    )
    return f"[auth]\ntokens = [{tokens}]\n{extra}"


@dataclass
class Reloadable:
    server: GatewayServer
    config: Path
    policies: Path
    upstream: EchoUpstream

    @property
    def master(self) -> int:
        return self.server.proc.pid

    def hup(self) -> None:
        """SIGHUP to the process group, as a container's init forwards it."""
        os.killpg(self.master, signal.SIGHUP)

    def workers(self) -> set[int]:
        return children(self.master)

    def wait_log(
        self,
        text: str,
        after: int = 0,
        within_s: float = 60.0,
        poke: Callable[[], object] = lambda: None,
        count: int = 1,
    ) -> None:
        deadline = time.monotonic() + within_s
        while self.server.log_text()[after:].count(text) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} never logged; the server's own lines:\n{self.server_lines()}")
            poke()
            time.sleep(0.2)

    def server_lines(self, last: int = 60) -> str:
        """The log without per-request audit events (they drown the reload's story)."""
        lines = [line for line in self.server.log_text().splitlines() if '"gateway.request"' not in line]
        return "\n".join(line[:400] for line in lines[-last:])


def start(tmp: Path, airflow: AirflowHome, upstream: EchoUpstream, **settings: str) -> Reloadable:
    config, policies = tmp / "gateway.toml", tmp / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "rules.toml").write_text(POLICY)
    config.write_text(config_text("alice", "bob"))
    server = start_gateway(
        airflow, tmp,
        settings={"POLICY__DIR": str(policies), "PROXY__UPSTREAM": upstream.url, **settings},
        extra_env={"AIRFLOW_GATEWAY_CONFIG": str(config)},
    )  # fmt: skip
    return Reloadable(server, config, policies, upstream)


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoUpstream]:
    echo = EchoUpstream()
    yield echo
    echo.stop()


@pytest.fixture(scope="module")
def gw(
    airflow3: AirflowHome, upstream: EchoUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Reloadable]:
    tmp = tmp_path_factory.mktemp("reload")
    served = start(tmp, airflow3, upstream, POLICY__RELOAD_INTERVAL="0.5")
    yield served
    served.server.stop()


def api(gw: Reloadable, who: str, name: str, **args: str) -> tuple[int, dict[str, Any]]:
    reply = get(gw.server.api(urlencode({"api": name, **args})), headers=AUTH[who], timeout=120)
    return reply.status, reply.json


@dataclass
class Load:
    """Clients calling the gateway until stopped; every answer but 200 is a failure."""

    gw: Reloadable
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def run(self, kind: str, call: Callable[[], int]) -> None:
        while not self.stop.is_set():
            try:
                status = call()
            except Exception as exc:  # a dropped connection is exactly what must not happen
                self.failures.append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if status != 200:
                self.failures.append(f"{kind}: HTTP {status}")
            time.sleep(0.05)

    def keep_alive(self) -> None:
        """One kept-alive connection, reopened only when the gateway says ``Connection: close``."""
        url = self.gw.server.url.removeprefix("http://")
        host, port = url.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)

        def call() -> int:
            nonlocal conn
            conn.request("GET", "/upstream/kept-alive", headers=AUTH["alice"])
            response = conn.getresponse()
            response.read()
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
            return response.status

        self.run("kept-alive proxy", call)
        conn.close()

    def __enter__(self) -> Load:
        url = self.gw.server.url
        calls: dict[str, Callable[[], int]] = {
            "api version": lambda: api(self.gw, "alice", "version")[0],
            "proxy": lambda: get(f"{url}/upstream/x?y=1", headers=AUTH["alice"], timeout=60).status,
            "healthz": lambda: get(f"{url}/healthz", timeout=60).status,
        }
        self.threads = [threading.Thread(target=self.run, args=item, daemon=True) for item in calls.items()]
        self.threads.append(threading.Thread(target=self.keep_alive, daemon=True))
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=130)


def follow(gw: Reloadable, job_id: str, into: dict[str, Any]) -> None:
    """Read the job's output as EventSource does (reconnecting with Last-Event-ID) until its end."""
    texts: list[str] = []
    last_id: str | None = None
    offsets_ok = True
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        stream = EventStream(
            job_url(gw.server, job_id, "/output"),
            {**AUTH["alice"], **({"Last-Event-ID": last_id} if last_id else {})},
        )
        try:
            for event in stream:
                if event.name == "end":
                    into.update(texts="".join(texts), end=event.json, offsets_ok=offsets_ok)
                    return
                offsets_ok &= int(event.json["offset"]) == int(last_id or 0)
                texts.append(event.json["text"])
                last_id = event.id
        except Exception as exc:  # the stream breaking is allowed: EventSource reconnects
            into.setdefault("breaks", []).append(repr(exc))
        finally:
            stream.close()
    into.update(texts="".join(texts), end=None, offsets_ok=offsets_ok)


def audit_versions(server: GatewayServer) -> list[str | None]:
    """``policy_version`` of each API call's audit event, in log order."""
    found = []
    for line in server.log_text().splitlines():
        if line.startswith("{") and '"gateway.request"' in line:
            event = json.loads(line)
            if event.get("route") == "api" and event.get("decision"):
                found.append(event.get("policy_version"))
    return found


def test_sighup_under_load_drops_nothing_and_the_job_in_a_retired_worker_ends(gw: Reloadable) -> None:
    gw.config.write_text(config_text("alice", "bob"))
    (gw.policies / "rules.toml").write_text(POLICY)
    assert api(gw, "carol", "version")[0] == 401
    job_id = submit(gw.server, "alice", "test", dag_id="gw_slow", task_id="lines",
                    execution_date="2026-12-01", task_params='{"n": 60}')["output"]["job_id"]  # fmt: skip
    wait_for_line(gw.server, "alice", job_id)
    old_workers = gw.workers()
    # The reload meets a steady gateway: its workers' CLI calls already run warm.
    gw.wait_log("warm CLI process ready", count=len(old_workers))
    streamed: dict[str, Any] = {}
    follower = threading.Thread(target=follow, args=(gw, job_id, streamed), daemon=True)
    follower.start()
    with Load(gw) as load:
        time.sleep(1.5)
        # A new token, and a changed policy file (a new version decides from now on).
        gw.config.write_text(config_text("alice", "bob", "carol"))
        (gw.policies / "rules.toml").write_text(POLICY + "\n# reviewed\n")
        mark = len(gw.server.log_text())
        gw.hup()
        gw.wait_log("configuration reloaded", after=mark)
        deadline = time.monotonic() + 60
        while api(gw, "carol", "version")[0] != 200:
            assert time.monotonic() < deadline, gw.server_lines()
            time.sleep(0.3)
        # The job still runs, in a worker the reload retired.  (Whether that worker already
        # says it waits for its job depends on its requests in flight: it finishes them first.)
        owner = job_owner(gw, job_id)
        assert owner in old_workers and alive(owner), (owner, old_workers)
        assert wait_running(gw, job_id)
        # An invalid configuration is refused; the running one stays (carol still gets in).
        gw.config.write_text(config_text("alice", "bob", "carol", extra='[cli]\ndefault_timeout = "soon"\n'))
        mark = len(gw.server.log_text())
        gw.hup()
        gw.wait_log(
            "configuration error on reload (SIGHUP); the running configuration stays in force", after=mark
        )
        assert "cli.default_timeout" in gw.server.log_text()[mark:]
        time.sleep(3)  # the workers started with the kept configuration serve under load
        assert api(gw, "carol", "version")[0] == 200
        job = wait_done(gw.server, "alice", job_id)
        follower.join(timeout=120)
    assert load.failures == [], load.failures[:20]
    assert all(
        load.counts.get(kind, 0) >= 5 for kind in ("api version", "proxy", "healthz", "kept-alive proxy")
    ), load.counts
    assert job["state"] == "succeeded", job
    assert streamed.get("end", {}).get("state") == "succeeded", streamed
    assert streamed["offsets_ok"], "resuming must neither skip nor repeat"
    assert [int(n) for n in LINE.findall(streamed["texts"])] == list(range(1, 61))
    # Its job over, the retired worker leaves.
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in old_workers):
        assert time.monotonic() < deadline, "a retired worker stayed after its job ended"
        time.sleep(0.3)
    assert "jobs of a retired worker are stopped" not in gw.server.log_text()
    versions = audit_versions(gw.server)
    assert len(set(versions)) >= 2 and None not in versions, versions[-10:]


def job_owner(gw: Reloadable, job_id: str) -> int:
    """The pid of the gateway worker that runs the job, as the job store records it."""
    with closing(sqlite3.connect(gw.server.state_dir / SQLITE_NAME)) as db:
        (pid,) = db.execute("SELECT owner_pid FROM gateway_jobs WHERE id = ?", (job_id,)).fetchone()
    return int(pid)


def wait_running(gw: Reloadable, job_id: str) -> bool:
    reply = get(job_url(gw.server, job_id), headers=AUTH["alice"])
    return reply.status == 200 and reply.json["state"] == "running"


def test_policies_reload_alone_when_their_files_change(gw: Reloadable) -> None:
    rules = gw.policies / "rules.toml"
    rules.write_text(POLICY)
    gw.config.write_text(config_text("alice", "bob"))
    assert until_status(gw, "bob", 200)
    (gw.policies / "zz-deny.toml").write_text(DENY_BOB)
    assert until_status(gw, "bob", 403)
    status, body = api(gw, "bob", "version")
    assert "bob-no-version" in json.dumps(body)
    # An invalid file is logged and the policies in force are kept.
    mark = len(gw.server.log_text())
    (gw.policies / "zz-deny.toml").write_text(DENY_BOB + '\n[[rule]]\nid = "broken"\neffect = "maybe"\n')
    # (policy files are looked at when a decision is due, at most every reload_interval)
    gw.wait_log("policy files changed but are invalid", after=mark, poke=lambda: api(gw, "bob", "version"))
    assert api(gw, "bob", "version")[0] == 403
    (gw.policies / "zz-deny.toml").unlink()
    assert until_status(gw, "bob", 200)
    versions = audit_versions(gw.server)
    assert len(set(versions[-20:])) >= 2


def until_status(gw: Reloadable, who: str, wanted: int, within_s: float = 30.0) -> bool:
    """Until every worker answers ``wanted`` (five in a row, spread over the workers)."""
    deadline = time.monotonic() + within_s
    streak = 0
    while streak < 5:
        if time.monotonic() > deadline:
            pytest.fail(f"{who} never got {wanted} five times in a row:\n{gw.server.log_text()[-3000:]}")
        streak = streak + 1 if api(gw, who, "version")[0] == wanted else 0
        time.sleep(0.1)
    return True


def test_a_stopping_server_kills_the_job_a_retired_worker_waits_for(
    airflow3: AirflowHome, upstream: EchoUpstream, tmp_path: Path
) -> None:
    served = start(tmp_path, airflow3, upstream)
    try:
        marker = "seq 1 97"
        job_id = submit(served.server, "alice", "test", dag_id="gw_slow", task_id="lines",
                        execution_date="2026-12-02", task_params='{"n": 97}')["output"]["job_id"]  # fmt: skip
        wait_for_line(served.server, "alice", job_id)
        mark = len(served.server.log_text())
        served.hup()
        served.wait_log("retired by a reload: waiting for its 1 jobs to end", after=mark)
        assert slow_processes(marker)
        started = time.monotonic()
        os.killpg(served.master, signal.SIGTERM)  # as the container's init forwards it
        served.server.proc.wait(timeout=60)
        # (graceful_timeout is 30 s: waiting for the job, or for gunicorn's reload, would take longer)
        assert time.monotonic() - started < 25, "the server must not wait for the retired worker's job"
        deadline = time.monotonic() + 15
        while slow_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert slow_processes(marker) == [], "the job's tree must not outlive the server"
        # The retired worker records the job's end before it exits (not killed by the cleanup below).
        deadline = time.monotonic() + 30
        while in_group(served.master) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not in_group(served.master), "a worker outlived the stopped server"
    finally:
        served.server.stop()
    # The job store says why (read with a fresh gateway on the same state directory).
    again = start_gateway(
        airflow3, tmp_path, settings={"POLICY__DIR": str(served.policies)},
        extra_env={"AIRFLOW_GATEWAY_CONFIG": str(served.config), "AIRFLOW_GATEWAY__GATEWAY__STATE_DIR": str(served.server.state_dir)},
    )  # fmt: skip
    try:
        job = get(f"{again.url}/admin/rest_api/jobs/{job_id}", headers=AUTH["alice"]).json
        assert job["state"] == "failed" and "stopped" in job["reason"], job
    finally:
        again.stop()
