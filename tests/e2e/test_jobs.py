"""Long CLI calls as jobs (issue 15), through real gunicorn, on real Airflow 3 and 2.

One gateway per Airflow version (SQLite job store, two workers), with three named tokens:
alice and bob (operators) and root (an admin a policy lets read and cancel any job).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from gateway.identity.tokens import hash_token
from tests.support.airflow import AirflowHome
from tests.support.http import Reply, get, post_multipart, request
from tests.support.servers import GatewayServer, start_gateway
from tests.support.sse import EventStream

TOKENS = {name: f"{name}-token-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" for name in ("alice", "bob", "root")}
AUTH = {name: {"X-Gateway-Authorization": f"Bearer {value}"} for name, value in TOKENS.items()}
GROUPS = {"alice": ["ops"], "bob": ["ops"], "root": ["admins"]}
POLICY = """
[[rule]]
id = "ops-run"
effect = "allow"
groups = ["ops"]
apis = ["test", "backfill", "run", "clear", "trigger_dag", "deploy_dag", "refresh_dag", "refresh_all_dags",
        "list_*",
        "task_state", "version", "whoami"]

[[rule]]
id = "admins-all"
effect = "allow"
groups = ["admins"]
apis = ["*"]
"""
SLOW = "gw_slow"
DAG = "gw_example"
LINE = re.compile(r"gw-line (\d+)")  # the task's own lines, not the command Airflow logs
DONE = {"succeeded", "failed", "timed_out", "cancelled"}


def jobs_settings(tmp: Path) -> dict[str, str]:
    policies = tmp / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "jobs.toml").write_text(POLICY)
    tokens = [{"name": n, "sha256": hash_token(t), "groups": GROUPS[n]} for n, t in TOKENS.items()]
    return {
        "AUTH__TOKENS": json.dumps(tokens),
        "POLICY__DIR": str(policies),
        "JOBS__STREAM_MAX_SECONDS": "4",  # short SSE responses: reconnects happen in every test
    }


@pytest.fixture(scope="module")
def gw(airflow: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    tmp = tmp_path_factory.mktemp(f"jobs-{airflow.major}")
    server = start_gateway(airflow, tmp, settings=jobs_settings(tmp))
    yield server
    server.stop()


# --- helpers ----------------------------------------------------------------------------


def submit(gw: GatewayServer, who: str, api: str, **args: str) -> dict[str, Any]:
    """Submit with mode=job; returns the 202 envelope."""
    reply = get(gw.api(urlencode({"api": api, "mode": "job", **args})), headers=AUTH[who])
    assert reply.status == 202, reply.body[:2000]
    body = reply.json
    assert reply.headers["Location"] == f"/admin/rest_api/jobs/{body['output']['job_id']}"
    return body  # type: ignore[no-any-return]


def job_url(gw: GatewayServer, job_id: str, tail: str = "") -> str:
    return f"{gw.url}/admin/rest_api/jobs/{job_id}{tail}"


def status(gw: GatewayServer, who: str, job_id: str) -> Reply:
    return get(job_url(gw, job_id), headers=AUTH[who])


def wait_done(gw: GatewayServer, who: str, job_id: str, timeout: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = status(gw, who, job_id)
        assert reply.status == 200, reply.body[:500]
        if reply.json["state"] in DONE:
            return reply.json  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not end in {timeout}s: {reply.json}")


def wait_state(gw: GatewayServer, who: str, job_id: str, state: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if status(gw, who, job_id).json["state"] == state:
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {state}")


def sync_call(gw: GatewayServer, who: str, api: str, **args: str) -> tuple[int, dict[str, Any]]:
    reply = get(gw.api(urlencode({"api": api, **args})), headers=AUTH[who])
    return reply.status, reply.json


def comparable(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope fields that do not depend on when or how long the call ran."""
    # runner: synchronous calls are forked warm, jobs run cold (docs/cli-runner.md says why).
    drop = {
        "call_time",
        "response_time",
        "duration_seconds",
        "request_id",
        "output",
        "arguments",
        "job_id",
        "runner",
    }
    return {k: v for k, v in envelope.items() if k not in drop}


def wait_for_line(gw: GatewayServer, who: str, job_id: str, timeout: float = 120.0) -> None:
    """Watch the job's SSE output (reconnecting) until the task has printed a line."""
    last_id: str | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stream = EventStream(
            job_url(gw, job_id, "/output"), {**AUTH[who], **({"Last-Event-ID": last_id} if last_id else {})}
        )
        try:
            for event in stream:
                assert event.name == "output", event
                last_id = event.id
                if LINE.search(event.json["text"]):
                    return
        finally:
            stream.close()
    raise AssertionError(f"no line from job {job_id} in {timeout}s")


def slow_processes(marker: str) -> list[int]:
    """Pids of processes whose command line holds ``marker`` (the slow task's bash loop)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


# --- tests ------------------------------------------------------------------------------


def test_a_job_ends_with_the_synchronous_envelope(gw: GatewayServer) -> None:
    """`test` as a job: 202 at once, then the same envelope as the synchronous call, except that
    the command's output is stored once: the envelope points at the job's output rows."""
    args = {"dag_id": DAG, "task_id": "first", "execution_date": "2026-11-05", "task_params": '{"x": "job"}'}
    started = time.monotonic()
    accepted = submit(gw, "alice", "test", **args)
    assert time.monotonic() - started < 5, "submission must not wait for the command"
    assert accepted["status"] == "OK" and accepted["http_response_code"] == 202
    job = wait_done(gw, "alice", accepted["output"]["job_id"])
    code, sync = sync_call(gw, "alice", "test", **args)
    assert job["state"] == "succeeded" and job["exit_code"] == 0
    assert code == 200 and comparable(job["envelope"]) == comparable(sync)
    job_id = accepted["output"]["job_id"]
    reference = job["envelope"]["output"]
    assert reference == {
        "location": f"/admin/rest_api/jobs/{job_id}/output",
        "chars": job["output_chars"],
        "truncated": False,
    }
    rows = get(job_url(gw, job_id, "/output?format=json"), headers=AUTH["alice"]).json
    printed = "".join(c["text"] for c in rows["chunks"] if c["stream"] == "stdout")
    assert "first ds=2026-11-05 x=job" in printed and "first ds=2026-11-05 x=job" in sync["output"]["stdout"]
    assert job["duration_seconds"] > 0 and job["started_at"] >= job["created_at"]


@pytest.mark.parametrize("api", ["clear", "backfill", "run", "refresh_all_dags", "refresh_dag", "deploy_dag"])
def test_each_long_api_runs_as_a_job(gw: GatewayServer, airflow: AirflowHome, api: str) -> None:
    """Every long API completes as a job with a successful envelope (or is refused up front)."""
    args: dict[str, str] = {
        "clear": {"dag_id": DAG, "task_regex": "first", "start_date": "2026-11-02", "end_date": "2026-11-02"},
        # Airflow 3: a real backfill (it only creates runs), of its own DAG (one active backfill per DAG).
        "backfill": {"dag_id": SLOW, "start_date": "2026-08-01", "end_date": "2026-08-01"}
        if airflow.major == "3"
        else {"dag_id": DAG, "start_date": "2026-09-01", "end_date": "2026-09-02", "dry_run": "on"},
        "run": {"dag_id": DAG, "task_id": "second", "execution_date": "2026-11-07", "local": "on"},
        "refresh_all_dags": {},
        "refresh_dag": {"dag_id": DAG},
        "deploy_dag": {},
    }[api]
    if api == "run" and airflow.major == "3":
        # Refused while planning (Airflow 3 has no `tasks run` for users): no job is created.
        before = get(f"{gw.url}/admin/rest_api/jobs", headers=AUTH["alice"]).json["jobs"]
        reply = get(gw.api(urlencode({"api": "run", "mode": "job", **args})), headers=AUTH["alice"])
        assert reply.status == 400 and "api=test" in reply.json["output"]
        assert get(f"{gw.url}/admin/rest_api/jobs", headers=AUTH["alice"]).json["jobs"] == before
        return
    if api == "run":  # Airflow 2 runs a task instance of an existing DAG run
        code, body = sync_call(
            gw, "alice", "trigger_dag", dag_id=DAG, run_id="gw_job_run", execution_date="2026-11-07"
        )
        assert code == 200, body
    if api == "deploy_dag":
        source = (Path(__file__).parent.parent / "dags" / "gw_example.py").read_text()
        source = source.replace('dag_id="gw_example"', 'dag_id="gw_job_deployed"')
        reply = post_multipart(
            f"{gw.url}/admin/rest_api/api/deploy_dag", {"mode": "job", "force": "on"},
            [("dag_file", "gw_job_deployed.py", source.encode())], headers=AUTH["alice"],
        )  # fmt: skip
        assert reply.status == 202, reply.body[:1000]
        job_id = reply.json["output"]["job_id"]
    else:
        job_id = submit(gw, "alice", api, **args)["output"]["job_id"]
    job = wait_done(gw, "alice", job_id)
    envelope = job["envelope"]
    assert (job["state"], envelope["status"], envelope["http_response_code"]) == ("succeeded", "OK", 200), (
        json.dumps(job, indent=1)[:3000]
    )
    assert envelope["job_id"] == job_id
    if api == "backfill" and airflow.major == "3":  # read back: Airflow 3 prints no id
        assert isinstance(envelope["backfill_id"], int) and envelope["backfill"]["dag_id"] == SLOW
    if api == "clear":  # read back on every version: the CLI prints no count
        assert isinstance(envelope["cleared"], int) and not isinstance(envelope["cleared"], bool), envelope


def test_output_streams_before_the_command_ends_and_resumes_without_loss(gw: GatewayServer) -> None:
    """SSE: lines arrive while the job still runs; a dropped connection resumes exactly."""
    job_id = submit(gw, "alice", "test", dag_id=SLOW, task_id="lines", execution_date="2026-11-10",
                    task_params='{"n": 14}')["output"]["job_id"]  # fmt: skip
    url = job_url(gw, job_id, "/output")
    seen: list[str] = []
    last_id: str | None = None
    state_at_first_line = None
    while state_at_first_line is None:  # each response lasts jobs.stream_max_seconds at most
        first = EventStream(url, {**AUTH["alice"], **({"Last-Event-ID": last_id} if last_id else {})})
        assert first.status == 200 and first.response.headers["Content-Type"].startswith("text/event-stream")
        for event in first:
            assert event.name == "output", event
            seen.append(event.json["text"])
            last_id = event.id
            if LINE.search(event.json["text"]):
                state_at_first_line = status(gw, "alice", job_id).json["state"]
                break
        first.close()  # drop the connection mid-job (or it ended: reconnect)
        assert first.retry is not None
    assert state_at_first_line == "running", "a line must arrive before the command ends"
    ended = None
    while ended is None:  # reconnect like EventSource, until the end event
        stream = EventStream(url, {**AUTH["alice"], "Last-Event-ID": str(last_id)})
        for event in stream:
            if event.name == "end":
                ended = event.json
                break
            assert int(event.json["offset"]) == int(last_id or 0), "resume must neither skip nor repeat"
            seen.append(event.json["text"])
            last_id = event.id
        stream.close()
    assert ended["state"] == "succeeded"
    streamed = "".join(seen)
    numbers = [int(n) for n in LINE.findall(streamed)]
    assert numbers == list(range(1, 15)), streamed[-3000:]
    full = get(f"{url}?format=json", headers=AUTH["alice"]).json
    assert "".join(c["text"] for c in full["chunks"]) == streamed and full["done"]


def test_cancel_kills_the_whole_tree(gw: GatewayServer) -> None:
    """DELETE kills the task's processes (bash and its sleep included) and records cancelled."""
    marker = "seq 1 61"  # only this job's bash loop has it
    if "airflow-1.10" in gw.env.get("AIRFLOW_GATEWAY__AIRFLOW__EXECUTABLE", ""):
        # 1.10's BashOperator runs its command from a temporary script file, so no command
        # line holds the loop: match the loop's `sleep 0.5` children instead (one is alive
        # nearly all the time while the loop runs; none once the tree is killed).
        marker = "sleep 0.5"
    job_id = submit(gw, "alice", "test", dag_id=SLOW, task_id="lines", execution_date="2026-11-11",
                    task_params='{"n": 61}')["output"]["job_id"]  # fmt: skip
    wait_for_line(gw, "alice", job_id)
    deadline = time.monotonic() + 5
    while not slow_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slow_processes(marker), "the task's loop should be running"
    reply = request("DELETE", job_url(gw, job_id), headers=AUTH["alice"])
    assert reply.status == 202 and reply.json["cancel_requested"]
    job = wait_done(gw, "alice", job_id, timeout=60)
    assert job["state"] == "cancelled" and job["envelope"]["status"] == "ERROR"
    deadline = time.monotonic() + 15
    while slow_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slow_processes(marker) == []
    again = request("DELETE", job_url(gw, job_id), headers=AUTH["alice"])
    assert again.status == 409


def test_another_principal_cannot_read_or_cancel(gw: GatewayServer) -> None:
    """bob sees nothing of alice's job; root (admins-all) reads, lists and may cancel it."""
    job_id = submit(gw, "alice", "list_tasks", dag_id=DAG)["output"]["job_id"]
    assert status(gw, "bob", job_id).status == 404
    assert get(job_url(gw, job_id, "/output?format=json"), headers=AUTH["bob"]).status == 404
    assert request("DELETE", job_url(gw, job_id), headers=AUTH["bob"]).status == 404
    bobs = get(f"{gw.url}/admin/rest_api/jobs", headers=AUTH["bob"]).json
    assert job_id not in {j["job_id"] for j in bobs["jobs"]} and not bobs["all_principals"]
    everyone = get(f"{gw.url}/admin/rest_api/jobs?api=list_tasks", headers=AUTH["root"]).json
    assert job_id in {j["job_id"] for j in everyone["jobs"]} and everyone["all_principals"]
    assert status(gw, "root", job_id).json["principal"] == "alice"
    job = wait_done(gw, "alice", job_id)
    assert job["state"] == "succeeded" and not job["cancel_requested"]
    assert request("DELETE", job_url(gw, job_id), headers=AUTH["root"]).status == 409  # may, but it ended
    mine = get(f"{gw.url}/admin/rest_api/jobs?state=succeeded", headers=AUTH["alice"]).json["jobs"]
    assert job_id in {j["job_id"] for j in mine}


def test_bad_job_requests_are_clear_errors(gw: GatewayServer) -> None:
    """A bad mode, a refused call, unknown ids and bad offsets: JSON errors, no job created."""
    reply = get(gw.api("api=version&mode=later"), headers=AUTH["alice"])
    assert reply.status == 400 and "mode" in reply.json["output"]
    reply = get(gw.api("api=pause&dag_id=gw_example&mode=job"), headers=AUTH["alice"])
    assert reply.status == 403  # policy first: no job
    reply = get(gw.api("api=test&dag_id=gw_example&mode=job"), headers=AUTH["alice"])
    assert reply.status == 400  # validation first: no job
    assert status(gw, "alice", "nope").status == 404
    reply = get(gw.api("api=scheduler&mode=job"), headers=AUTH["root"])
    assert reply.status == 400 and "daemon" in reply.json["output"]
    job_id = submit(gw, "alice", "version")["output"]["job_id"]
    assert get(job_url(gw, job_id, "/output?offset=-1"), headers=AUTH["alice"]).status == 400
    assert wait_done(gw, "alice", job_id)["state"] == "succeeded"


def test_prefer_respond_async_audit_and_metrics(gw: GatewayServer) -> None:
    """Prefer: respond-async submits too; the audit log and /metrics record jobs."""
    reply = get(gw.api("api=version"), headers={**AUTH["alice"], "Prefer": "respond-async"})
    assert reply.status == 202 and reply.headers["Preference-Applied"] == "respond-async"
    job_id = reply.json["output"]["job_id"]
    assert wait_done(gw, "alice", job_id)["state"] == "succeeded"
    events = [json.loads(line) for line in gw.log_text().splitlines() if '"gateway.job"' in line]
    mine = [e for e in events if e.get("job_id") == job_id]
    assert [e["job_event"] for e in mine] == ["submitted", "started", "finished"], mine
    assert all(e["principal"] == "alice" for e in mine) and mine[-1]["state"] == "succeeded"
    metrics = get(f"{gw.url}/metrics").body.decode()
    assert 'airflow_gateway_jobs_total{api="version",state="succeeded"}' in metrics
    assert "airflow_gateway_jobs_active" in metrics
