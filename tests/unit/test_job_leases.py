"""Job leases (issue 27): an instance that stops renewing loses its jobs to the truth, and the
principals' caps on queued and running jobs (``[rate_limits]``) in the job service."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.calls.service import CallContext
from gateway.config.settings import RateLimitsConfig
from gateway.core.errors import TooManyRequests
from gateway.jobs.service import JobService
from gateway.jobs.store import JobStore
from gateway.ratelimit.limiter import RateLimits
from tests.unit.test_jobs_faults import ALICE, call, config, context
from tests.unit.test_jobs_store import row


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(sqlite_path=tmp_path / "jobs.sqlite3")


@pytest.fixture
def services() -> Iterator[list[JobService]]:
    started: list[JobService] = []
    yield started
    for service in started:
        service.stop()


def service(store: JobStore, instance: str, started: list[JobService], **over: Any) -> JobService:
    svc = JobService(
        store, config(**over), dispatch=lambda planned, ctx: None, instance=instance, audit=lambda e, f: None
    )
    started.append(svc)
    return svc


def test_leases_are_renewed_and_expired_ones_listed_only_with_active_jobs(store: JobStore) -> None:
    store.renew_lease("gone:1", 100.0)
    store.renew_lease("alive:2", 100.0)
    store.renew_lease("alive:2", 200.0)  # renewed: the row is updated, not duplicated
    assert store.expired_leases(150.0) == []  # gone:1 owns no active job
    store.create(row("j1", instance="gone:1"))
    store.create(row("j2", instance="alive:2"))
    store.create(row("j3", instance="gone:1", state="succeeded"))
    assert store.expired_leases(150.0) == [("gone:1", 100.0)]
    assert store.expired_leases(250.0) == [("gone:1", 100.0), ("alive:2", 200.0)]


def test_an_instance_that_stopped_renewing_has_its_jobs_failed_with_the_reason(
    store: JobStore, services: list[JobService]
) -> None:
    store.renew_lease("deadhost:abcd1234", time.time() - 100)
    store.create(row("run", instance="deadhost:abcd1234", state="running"))
    store.create(row("wait", instance="deadhost:abcd1234", state="queued"))
    store.create(row("done", instance="deadhost:abcd1234", state="succeeded"))
    survivor = service(store, "livehost:00000000", services, lease_timeout=30.0)
    assert survivor.sweep_expired() == 2
    for job_id in ("run", "wait"):
        found = store.get(job_id)
        assert found is not None and found.state == "failed" and found.finished_at is not None
        assert found.reason is not None
        assert "instance deadhost:abcd1234 stopped renewing its lease at " in found.reason
        assert "could not be killed" in found.reason and "deadhost" in found.reason
    assert store.get("done").state == "succeeded"  # type: ignore[union-attr]
    assert survivor.sweep_expired() == 0


def test_a_live_instance_keeps_its_jobs_and_never_sweeps_itself(
    store: JobStore, services: list[JobService]
) -> None:
    store.create(row("mine", instance="me:1", state="running"))
    me = service(store, "me:1", services, lease_timeout=30.0)
    store.renew_lease("me:1", time.time() - 100)  # even a late renewal of its own
    assert me.sweep_expired() == 0
    store.renew_lease("other:2", time.time())
    store.create(row("theirs", instance="other:2", state="running"))
    assert service(store, "third:3", services).sweep_expired() == 1  # me:1's late lease, not other:2's
    assert store.get("theirs").state == "running" and store.get("mine").state == "failed"  # type: ignore[union-attr]


def test_the_maintenance_thread_renews_and_sweeps(store: JobStore, services: list[JobService]) -> None:
    store.renew_lease("gone:9", time.time() - 10)
    store.create(row("orphan", instance="gone:9", state="running"))
    live = service(store, "live:1", services, lease_timeout=1.2)
    live.start()
    deadline = time.monotonic() + 5
    while store.get("orphan").state != "failed" and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)
    assert store.get("orphan").state == "failed"  # type: ignore[union-attr]
    before = {i: t for i, t in store._run("SELECT instance, renewed_at FROM gateway_job_leases").fetchall()}
    time.sleep(0.5)
    after = {i: t for i, t in store._run("SELECT instance, renewed_at FROM gateway_job_leases").fetchall()}
    assert after["live:1"] > before["live:1"]  # renewed every sixth of the lease


def test_a_job_ended_elsewhere_is_killed_here(store: JobStore, services: list[JobService]) -> None:
    """When another instance failed this one's job (its lease looked expired), the job stops here."""
    release = threading.Event()

    def dispatch(planned: Any, ctx: CallContext) -> None:
        from gateway.execution.job_routing import CURRENT_JOB

        job = CURRENT_JOB.get()
        assert job is not None
        job.cancel.wait(20)
        if job.cancel.is_set():
            job.killed.set()
        release.set()

    svc = JobService(store, config(), dispatch=dispatch, instance="slow:1", audit=lambda e, f: None)
    services.append(svc)
    svc.start()
    job = svc.submit(call(), context())
    deadline = time.monotonic() + 10
    while store.get(job.id).state != "running" and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)
    store.transition(job.id, ("running",), state="failed", reason="instance slow:1 stopped renewing")
    assert release.wait(10), "the job's call was not cancelled"
    assert store.get(job.id).reason == "instance slow:1 stopped renewing"  # type: ignore[union-attr]


# --- caps on jobs ---------------------------------------------------------------------


def caps(**values: int) -> RateLimits:
    table = {"id": "job-caps", "principal": "*", **values}
    return RateLimits(RateLimitsConfig(rules=RateLimitsConfig.rules.parse([table])))


def test_queued_jobs_cap_refuses_with_429(store: JobStore, services: list[JobService]) -> None:
    gate = threading.Event()
    svc = JobService(
        store, config(max_running=1), dispatch=lambda p, c: gate.wait(20), instance="q:1",
        audit=lambda e, f: None, limits=caps(queued_jobs=1),
    )  # fmt: skip
    services.append(svc)
    svc.start()
    first = svc.submit(call(), context())
    deadline = time.monotonic() + 10
    while store.get(first.id).state != "running" and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)
    svc.submit(call(), context())  # queued: holds the one queued slot
    refused = context()
    with pytest.raises(TooManyRequests) as caught:
        svc.submit(call(), refused)
    assert caught.value.code == 429 and refused.record.rate_limit == "job-caps"
    gate.set()


def test_running_jobs_cap_holds_jobs_queued_until_one_ends(
    store: JobStore, services: list[JobService]
) -> None:
    gates = [threading.Event(), threading.Event()]
    started: list[int] = []

    def dispatch(planned: Any, ctx: CallContext) -> None:
        n = len(started)
        started.append(n)
        gates[n].wait(20)

    svc = JobService(
        store, config(max_running=2), dispatch=dispatch, instance="r:1", audit=lambda e, f: None,
        limits=caps(running_jobs=1),
    )  # fmt: skip
    services.append(svc)
    svc.start()
    one, two = svc.submit(call(), context()), svc.submit(call(), context())
    time.sleep(1.5)  # two job threads, one slot: the second job waits
    assert started == [0]
    assert store.get(two.id).state == "queued"  # type: ignore[union-attr]
    gates[0].set()
    deadline = time.monotonic() + 10
    while store.get(two.id).state != "running" and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)
    assert store.get(one.id).state == "succeeded" and store.get(two.id).state == "running"  # type: ignore[union-attr]
    gates[1].set()
    assert ALICE.name == "alice"
