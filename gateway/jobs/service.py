"""Runs jobs in background threads of the gateway worker process that accepted them.

Why threads in the accepting process rather than a separate supervisor: the planned call,
the runner, the builtin handlers (deploy_dag...) and the caller's identity are all here
already, so a job is the synchronous call moved off the request thread; cancelling is
setting an :class:`threading.Event`.  The cost is that a job dies with its worker process:
shutdown cancels and records them, and a crash or kill is found by the next sweep (a
sibling worker, or the restarted gateway) and recorded as ``failed`` with the reason.

Jobs never take the synchronous calls' admission slots: ``jobs.max_running`` threads per
worker process run them through their own runner; more wait ``queued`` in memory, up to
``jobs.max_queued`` (then 503).  Request threads only insert a row and enqueue.

The store can fail under a running job (a backup holding SQLite's write lock, a full
disk, a PostgreSQL restart).  A job's transitions and output are then retried with
backoff until the store is back (:meth:`JobService._retry`); output stays pending in
memory meanwhile (capped by ``jobs.max_output_bytes``), and the job's end is recorded
when the store takes it.  A job thread never dies of a store error, and the maintenance
thread replaces one that died of anything else.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from werkzeug.wrappers import Request

from gateway.calls.service import CallContext
from gateway.cli.interpreter import BuiltinCall, Plan
from gateway.cli.spec import ApiKind
from gateway.core.errors import BadRequest, Busy, GatewayError, JobStoreUnavailable, TooManyRequests
from gateway.execution.job_routing import CURRENT_JOB, JobCall
from gateway.execution.proctree import process_start
from gateway.http.retirement import RETIRING
from gateway.jobs.output_recorder import OutputBuffer
from gateway.jobs.store import ACTIVE, Chunk, JobRow, JobStore, StoreError

if TYPE_CHECKING:
    from gateway.config.loader import JobsConfig
    from gateway.observability.metrics import Metrics
    from gateway.ratelimit.limiter import RateLimits

log = logging.getLogger("gateway.jobs")

FLUSH_INTERVAL_S = 0.2
CANCEL_POLL_S = 0.5
SWEEP_INTERVAL_S = 10.0
#: Seconds between tries to start a job held back by its principal's ``running_jobs`` cap.
DEFERRED_RETRY_S = 1.0
EXPIRE_INTERVAL_S = 300.0
STOP_WAIT_S = 10.0
#: Seconds between looks at the jobs of a worker retired by a reload.
DRAIN_POLL_S = 0.5
#: Backoff between tries of a store write that failed: doubling from the first to the last.
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 5.0
#: A store fault is logged at most this often per job thread (it may last minutes).
RETRY_LOG_EVERY_S = 30.0
LATE_CANCEL = "a cancel was requested after the command had ended: nothing was killed, this is its outcome"

AuditEmit = Callable[[str, dict[str, Any]], None]
#: Runs an authorized call and fills its context's envelope (:class:`gateway.calls.service.Dispatcher`).
Dispatch = Callable[[Plan | BuiltinCall, CallContext], None]


def instance_id(state_dir: Path) -> str:
    """Stable for one state directory on one host: ``<hostname>:<8 hex of the directory>``."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]
    return f"{socket.gethostname()}:{digest}"


@dataclass(slots=True)
class LocalJob:
    """A job this process owns, while it is queued or running."""

    row: JobRow
    planned: Plan | BuiltinCall
    ctx: CallContext
    output: OutputBuffer
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Releases the principal's ``queued_jobs`` slot (rate_limits caps) once the job starts or ends.
    queued_slot: Callable[[], None] | None = None


class StoppedWhileStoreDown(Exception):
    """The store stayed unreachable until the worker began to stop."""


T = TypeVar("T")


class JobService:
    """Accepts, runs, watches and cancels jobs; one per gateway worker process.

    :param audit: ``audit(event, fields)`` writes one audit event.
    """

    def __init__(
        self,
        store: JobStore,
        config: JobsConfig,
        *,
        dispatch: Dispatch,
        instance: str,
        audit: AuditEmit,
        metrics: Metrics | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        """:param limits: the principals' caps on running and queued jobs (``[rate_limits]``)."""
        self.store = store
        self.limits = limits
        self._deferred: list[LocalJob] = []  # over their principal's running_jobs cap
        self.config = config
        self.dispatch = dispatch
        self.instance = instance
        self.audit = audit
        self.metrics = metrics
        self.pid = os.getpid()
        self.pid_start = process_start(self.pid) or "?"
        self._local: dict[str, LocalJob] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[LocalJob | None] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._maintenance: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        """Renew this instance's lease, recover jobs of dead processes of this instance and of
        instances whose lease expired, then start the threads."""
        try:
            self.store.renew_lease(self.instance, time.time())
            self.sweep_expired()
        except StoreError:
            log.warning("job store unavailable at start: the lease is renewed when it is back", exc_info=True)
        self.sweep()
        self._workers = [self._job_thread(n) for n in range(self.config.max_running)]
        self._maintenance = threading.Thread(
            target=self._maintain, name="gateway-jobs-maintenance", daemon=True
        )
        self._maintenance.start()
        atexit.register(self.stop)

    def stop(self) -> None:
        """Worker shutdown: kill running jobs' trees and record them, then stop the threads."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._lock:
            jobs = list(self._local.values())
        for job in jobs:
            job.cancel.set()
        for _ in self._workers:
            self._queue.put(None)
        deadline = time.monotonic() + STOP_WAIT_S
        for worker in self._workers:
            worker.join(max(deadline - time.monotonic(), 0))
        for job in jobs:  # queued ones, never started
            if job.row.state == "queued":
                try:
                    why = "the gateway worker stopped before the job started"
                    self.store.transition(
                        job.row.id, ("queued",), state="failed", finished_at=time.time(), reason=why
                    )
                except Exception:
                    log.exception("job %s: could not be recorded as failed (a later sweep will)", job.row.id)

    @property
    def stopping(self) -> bool:
        """This worker stops serving: its output streams end (clients resume on another worker)."""
        return self._stopping.is_set() or RETIRING.is_set()

    def drain(self, keep_going: Callable[[], bool]) -> None:
        """Let this process's jobs run to their end while ``keep_going()`` (a reload retired the
        worker; new workers take new requests).  What is left is stopped by :meth:`stop` at exit."""
        with self._lock:
            count = len(self._local)
        if count:
            log.warning("this worker was retired by a reload: waiting for its %d jobs to end", count)
        while count and keep_going() and not self._stopping.wait(DRAIN_POLL_S):
            with self._lock:
                count = len(self._local)
        if count:
            log.warning("the server is stopping: %d jobs of a retired worker are stopped", count)

    def _job_thread(self, n: int) -> threading.Thread:
        worker = threading.Thread(target=self._work, name=f"gateway-job-{n}", daemon=True)
        worker.start()
        return worker

    def _supervise(self) -> None:
        """Replace a job thread that died (it should not: :meth:`_work` catches everything)."""
        for n, worker in enumerate(self._workers):
            if not worker.is_alive() and not self._stopping.is_set():
                log.error("job thread %s died; starting a new one", worker.name)
                self._workers[n] = self._job_thread(n)

    # --- submission ------------------------------------------------------------------

    def submit(self, planned: Plan | BuiltinCall, ctx: CallContext) -> JobRow:
        """Record a queued job for an authorized, planned call and hand it to a job thread.

        :raises Busy: when ``jobs.max_queued`` jobs already wait in this process.
        :raises TooManyRequests: the principal's stored output is at its cap.
        :raises JobStoreUnavailable: the store cannot be reached (503).
        """
        with self._lock:
            active = len(self._local)  # queued and running in this process
        if active >= self.config.max_queued + self.config.max_running:
            raise Busy("Too many jobs waiting on this gateway worker; retry later", retry_after_s=5)
        try:
            return self._submit(planned, ctx)
        except StoreError:
            log.warning("job store unavailable: a job was refused", exc_info=True)
            raise JobStoreUnavailable() from None

    def _submit(self, planned: Plan | BuiltinCall, ctx: CallContext) -> JobRow:
        envelope, principal = ctx.envelope, ctx.principal
        self._check_quota((principal.name, principal.method))
        queued_slot = self.limits.slot("queued_jobs", principal, ctx.record) if self.limits else None
        dag_id = planned.values.get("dag_id")
        row = JobRow(
            id=uuid.uuid4().hex,
            principal=principal.name,
            auth_method=principal.method,
            api=planned.api.name,
            dag_id=dag_id if isinstance(dag_id, str) else None,
            state="queued",
            reason=None,
            instance=self.instance,
            owner_pid=self.pid,
            owner_start=self.pid_start,
            request_id=envelope.request_id,
            airflow_cmd=envelope.airflow_cmd,
            created_at=time.time(),
        )
        # The output is masked as the synchronous answer is: the request's own secrets.
        output = OutputBuffer(self.config.max_output_bytes, mask=ctx.record.answered)
        job = LocalJob(row=row, planned=planned, ctx=ctx, output=output, queued_slot=queued_slot)
        job.output.on_full = lambda: self._flush(job)
        try:
            self.store.create(row)
        except BaseException:
            self._release_queued(job)
            raise
        with self._lock:
            self._local[row.id] = job
        self._gauge("queued", 1)
        self._event("submitted", row)
        self._queue.put(job)
        return row

    def _check_quota(self, owner: tuple[str, str]) -> None:
        """Refuse a new job while ``owner``'s stored output is at its cap (429 until jobs expire).

        :raises TooManyRequests: over ``jobs.max_stored_output_per_principal``.
        """
        total, oldest = self.store.output_total(owner)
        cap = self.config.max_stored_output_per_principal
        if total < cap:
            return
        frees_in = (oldest + self.config.retention - time.time()) if oldest is not None else 60.0
        raise TooManyRequests(
            f"Your jobs keep {total} characters of output in the job store, the most one principal may"
            f" keep (jobs.max_stored_output_per_principal = {cap}); new jobs are refused until older ones"
            " expire (jobs.retention)",
            retry_after_s=int(min(max(frees_in, 60.0), 86400.0)),
        )

    def wanted(self, mode: str, request: Request, planned: Plan | BuiltinCall) -> bool:
        """Whether this call runs as a job: ``mode=job``, or ``Prefer: respond-async``.

        :raises BadRequest: ``mode=job`` for a daemon API (already detached).
        """
        asked = mode == "job" or (mode == "" and "respond-async" in request.headers.get("Prefer", "").lower())
        if asked and planned.api.kind is ApiKind.DAEMON:
            if mode == "job":
                raise BadRequest(
                    f"api '{planned.api.name}' starts a daemon, which runs detached: mode=job does not apply"
                )
            return False
        return asked

    def accept(self, planned: Plan | BuiltinCall, ctx: CallContext) -> dict[str, str]:
        """Submit the call and turn its envelope into the 202 answer; returns its headers."""
        envelope = ctx.envelope
        row = self.submit(planned, ctx)
        view = job_view(row)
        location = view["location"]
        envelope.http_response_code = 202
        envelope.output = {"job_id": row.id, "state": row.state, "location": location}
        envelope.extra["job"] = {k: v for k, v in view.items() if k != "envelope"}
        return {"Location": location, "Preference-Applied": "respond-async"}

    # --- cancel ----------------------------------------------------------------------

    def cancel(self, row: JobRow) -> tuple[bool, str]:
        """Cancel ``row``: at once when this process runs it, else flagged for its owner.

        Returns whether a cancel is under way, and what to tell the client.  A job that
        nothing runs any more (its owner process is gone) is recorded ``failed`` at once
        and said to be so, instead of being flagged for nobody.
        """
        if not self.store.request_cancel(row.id):
            ended = self.store.get(row.id) or row
            return False, f"the job already ended ({ended.state}); nothing to cancel"
        self._event("cancel_requested", row)
        with self._lock:
            job = self._local.get(row.id)
        if job is not None:
            job.cancel.set()
            return True, "cancel requested: the job's process tree is being killed"
        if row.instance != self.instance:
            return True, (
                f"cancel requested: flagged for the gateway instance that runs the job ({row.instance}),"
                " which kills it within about a second while it is running"
            )
        owner_alive = process_start(row.owner_pid) == row.owner_start
        if owner_alive and row.owner_pid != self.pid:
            return (
                True,
                f"cancel requested: its gateway worker (pid {row.owner_pid}) kills it within about a second",
            )
        reason = (
            "no gateway thread runs this job any more; it was found when a cancel was requested"
            if owner_alive
            else f"the gateway process that ran this job (pid {row.owner_pid} on {self.instance}) is gone"
        )
        if self.store.transition(row.id, ACTIVE, state="failed", reason=reason, finished_at=time.time()):
            row.state, row.reason = "failed", reason
            self._ended(row)
        return False, f"nothing runs this job: {reason}; it is recorded as failed"

    # --- the job threads -------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            deferred = False
            try:
                deferred = self._execute(job)
            except StoppedWhileStoreDown:
                log.error("job %s: the store stayed unreachable until the worker stopped", job.row.id)
            except Exception:
                log.exception("job %s failed in the gateway", job.row.id)
                try:
                    self._record_end(job, "failed", "internal error in the gateway (see its log)")
                except Exception:
                    log.exception("job %s: its end could not be recorded", job.row.id)
            finally:
                if not deferred:
                    self._release_queued(job)
                    with self._lock:
                        self._local.pop(job.row.id, None)

    def _retry(self, what: str, job: LocalJob, attempt: Callable[[], T]) -> T:
        """``attempt()`` until the store takes it: backoff doubling up to :data:`RETRY_MAX_S`.

        :raises StoppedWhileStoreDown: the worker began to stop first (a sweep records the job later).
        """
        delay, logged = RETRY_FIRST_S, 0.0
        while True:
            try:
                return attempt()
            except Exception as exc:
                now = time.monotonic()
                if now - logged >= RETRY_LOG_EVERY_S:
                    logged = now
                    log.warning("job %s: could not %s (%s: %s); retrying until the store is back",
                                job.row.id, what, type(exc).__name__, exc)  # fmt: skip
            if self._stopping.wait(delay):
                raise StoppedWhileStoreDown(what)
            delay = min(delay * 2, RETRY_MAX_S)

    def _release_queued(self, job: LocalJob) -> None:
        if job.queued_slot is not None:
            job.queued_slot()
            job.queued_slot = None

    def _execute(self, job: LocalJob) -> bool:
        """Run ``job``; True when it was held back (its principal's ``running_jobs`` cap)."""
        self._gauge("queued", -1)
        if job.cancel.is_set() or self._stopping.is_set():
            early = "cancelled" if not self._stopping.is_set() else "failed"
            why = "cancelled before it started" if early == "cancelled" else "the gateway worker stopped"
            self._finish_unstarted(job, early, why)
            return False
        running_slot = self.limits.try_slot("running_jobs", job.ctx.principal) if self.limits else None
        if self.limits is not None and running_slot is None:
            self._gauge("queued", 1)
            with self._lock:
                self._deferred.append(job)  # tried again by the maintenance thread
            return True
        self._release_queued(job)
        try:
            self._run_job(job)
        finally:
            if running_slot is not None:
                running_slot()
        return False

    def _run_job(self, job: LocalJob) -> None:
        row = job.row
        row.started_at = time.time()
        started = self._retry(
            "record the job's start", job,
            lambda: self.store.transition(row.id, ("queued",), state="running", started_at=row.started_at),
        )  # fmt: skip
        if not started:
            return  # ended elsewhere (a sweep, an expiry)
        row.state = "running"
        self._gauge("running", 1)
        self._event("started", row)
        envelope, planned = job.ctx.envelope, job.planned
        envelope.extra.pop("job", None)  # the 202 answer's; the finished one is the synchronous call's
        envelope.http_response_code, envelope.output = 200, None
        call = JobCall(
            on_output=job.output.add, cancel=job.cancel, timeout_s=self.config.timeout,
            max_output_bytes=self.config.max_output_bytes,
        )  # fmt: skip
        job_token = CURRENT_JOB.set(call)
        try:
            self.dispatch(planned, job.ctx)
        except GatewayError as exc:
            exc.apply(envelope)
        finally:
            CURRENT_JOB.reset(job_token)
        if call.truncated.is_set():
            job.output.mark_truncated()
        state, reason = self._outcome(job, call)
        if state == "cancelled":
            envelope.fail(499, envelope.output)
            envelope.extra["error"] = "the job was cancelled; its process tree was killed"
        elif reason == LATE_CANCEL:
            envelope.add_warning(LATE_CANCEL)
        self._record_end(job, state, reason)

    def _outcome(self, job: LocalJob, call: JobCall) -> tuple[str, str | None]:
        """The job's true end: ``cancelled`` only when the cancel killed one of its commands."""
        envelope, record = job.ctx.envelope, job.ctx.record
        if call.killed.is_set():
            if self._stopping.is_set():
                return "failed", "the gateway worker stopped and killed the job"
            return "cancelled", None
        if record.cli_outcome == "timeout":
            return "timed_out", f"the job ran longer than jobs.timeout ({self.config.timeout:g} s)"
        late = LATE_CANCEL if job.cancel.is_set() and not self._stopping.is_set() else None
        if envelope.status == "OK":
            return "succeeded", late
        error = envelope.extra.get("error")
        return "failed", error if isinstance(error, str) else late

    def _record_end(self, job: LocalJob, state: str, reason: str | None) -> None:
        """Store the job's output and final record, retrying until the store takes them."""
        row = job.row
        self._retry("store the job's output", job, lambda: job.output.flush(self._writer(job), final=True))
        finished = time.time()
        envelope = self._stored_envelope(job, finished)
        ended = self._retry(
            "record the job's end", job,
            lambda: self.store.transition(
                row.id, ACTIVE, state=state, reason=reason, finished_at=finished,
                exit_code=job.ctx.envelope.exit_code, envelope=envelope,
            ),
        )  # fmt: skip
        if not ended:
            return  # ended elsewhere meanwhile (a sweep of an instance that thought it dead)
        if row.state == "running":  # (the queued gauge was lowered when a job thread took it)
            self._gauge("running", -1)
        row.state, row.reason, row.finished_at, row.exit_code = (
            state,
            reason,
            finished,
            job.ctx.envelope.exit_code,
        )
        self._ended(row)

    def _stored_envelope(self, job: LocalJob, finished: float) -> str:
        """The finished envelope as stored: the command's output is not kept a second time.

        Its ``output`` rows already hold what the command printed; the envelope points at them.
        """
        body = job.ctx.envelope.to_dict(finished)
        body["job_id"] = job.row.id
        body = job.ctx.record.masked(body)  # kept for jobs.retention: no secret may persist (exports)
        output = body.get("output")
        if job.output.written and isinstance(output, dict) and {"stdout", "stderr"} <= output.keys():
            body["output"] = {
                "location": f"/admin/rest_api/jobs/{job.row.id}/output",
                "chars": job.output.written,
                "truncated": job.output.truncated,
            }
        return json.dumps(body, default=str)

    def _finish_unstarted(self, job: LocalJob, state: str, reason: str) -> None:
        row = job.row
        ended = self._retry(
            "record the job's end", job,
            lambda: self.store.transition(
                row.id, ("queued",), state=state, reason=reason, finished_at=time.time()
            ),
        )  # fmt: skip
        if ended:
            row.state, row.reason = state, reason
            self._ended(row)

    def _ended(self, row: JobRow) -> None:
        self._event("finished", row)
        if self.metrics is not None:
            self.metrics.job_finished(row.api, row.state)

    # --- output ----------------------------------------------------------------------

    def _writer(self, job: LocalJob) -> Callable[[list[Chunk], int, bool], None]:
        def write(chunks: list[Chunk], total: int, truncated: bool) -> None:
            self.store.append_output(job.row.id, chunks, total=total, truncated=truncated)

        return write

    def _flush(self, job: LocalJob) -> None:
        """Store pending output now; on a store fault it stays pending for the next flush."""
        try:
            job.output.flush(self._writer(job))
        except Exception as exc:
            log.warning("job %s: output not stored yet (%s: %s)", job.row.id, type(exc).__name__, exc)

    # --- maintenance -----------------------------------------------------------------

    def _maintain(self) -> None:
        last_poll = last_sweep = last_expire = last_deferred = last_lease = time.monotonic()
        while not self._stopping.wait(FLUSH_INTERVAL_S):
            try:
                now = time.monotonic()
                if now - last_lease >= self.config.lease_timeout / 6:
                    last_lease = now
                    self._renew_lease()
                if self._deferred and now - last_deferred >= DEFERRED_RETRY_S:
                    last_deferred = now
                    with self._lock:
                        deferred, self._deferred = self._deferred, []
                    for job in deferred:
                        self._queue.put(job)
                with self._lock:
                    jobs = list(self._local.values())
                self._supervise()
                for job in jobs:
                    if job.row.state == "running":
                        self._flush(job)
                now = time.monotonic()
                if jobs and now - last_poll >= CANCEL_POLL_S:
                    last_poll = now
                    for job_id in self.store.cancel_flags([j.row.id for j in jobs]):
                        with self._lock:
                            found = self._local.get(job_id)
                        if found is not None:
                            found.cancel.set()
                if now - last_sweep >= SWEEP_INTERVAL_S:
                    last_sweep = now
                    self.sweep()
                if now - last_expire >= EXPIRE_INTERVAL_S:
                    last_expire = now
                    self.expire()
            except Exception:
                log.exception("job maintenance failed; retrying")

    def _renew_lease(self) -> None:
        """Renew this instance's lease (every worker does, six times per ``jobs.lease_timeout``)
        and fail the jobs of instances whose lease expired."""
        try:
            self.store.renew_lease(self.instance, time.time())
            self.sweep_expired()
        except Exception as exc:
            log.warning("job lease: could not renew or check leases (%s: %s)", type(exc).__name__, exc)

    def sweep(self) -> int:
        """Mark ``failed`` the active jobs of this instance whose owner process is gone."""
        count = 0
        for row in self.store.active_of(self.instance):
            if process_start(row.owner_pid) == row.owner_start:
                continue
            reason = (
                f"the gateway process that ran this job (pid {row.owner_pid} on {self.instance}) is gone:"
                " the gateway was restarted or the worker died"
            )
            if self.store.transition(row.id, ACTIVE, state="failed", reason=reason, finished_at=time.time()):
                row.state, row.reason = "failed", reason
                count += 1
                self._ended(row)
        return count

    def sweep_expired(self) -> int:
        """Mark ``failed`` the active jobs of other instances whose lease expired (they are gone:
        host or container lost, every worker killed), with the reason."""
        count = 0
        now = time.time()
        for instance, renewed_at in self.store.expired_leases(now - self.config.lease_timeout):
            if instance == self.instance:
                continue  # this instance lives: its own dead processes are found by sweep()
            host = instance.rpartition(":")[0] or instance
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(renewed_at))
            reason = (
                f"instance {instance} stopped renewing its lease at {when} (jobs.lease_timeout ="
                f" {self.config.lease_timeout:g} s): the gateway instance is gone, and the Airflow process it"
                f" ran for this job on {host} could not be killed from here (it may still be running there)"
            )
            for row in self.store.active_of(instance):
                if self.store.transition(row.id, ACTIVE, state="failed", reason=reason, finished_at=now):
                    row.state, row.reason = "failed", reason
                    count += 1
                    self._ended(row)
        if count:
            log.warning("%d jobs of gateway instances that stopped renewing their lease marked failed", count)
        return count

    def expire(self) -> int:
        """Delete jobs that finished more than ``jobs.retention`` ago."""
        return self.store.expire(time.time() - self.config.retention)

    # --- audit and metrics -----------------------------------------------------------

    def _event(self, what: str, row: JobRow) -> None:
        fields: dict[str, Any] = {
            "job_event": what,
            "job_id": row.id,
            "principal": row.principal,
            "auth_method": row.auth_method,
            "api": row.api,
            "state": row.state,
            "reason": row.reason,
            "exit_code": row.exit_code,
            "request_id": row.request_id,
            "instance": self.instance,
        }
        if row.started_at is not None and row.finished_at is not None:
            fields["duration_s"] = round(row.finished_at - row.started_at, 3)
        try:
            self.audit("gateway.job", fields)
        except Exception:
            log.exception("job audit event could not be written")

    def _gauge(self, which: str, delta: int) -> None:
        if self.metrics is not None:
            self.metrics.job_gauge(which, delta)


def job_view(row: JobRow, *, envelope: bool = True) -> dict[str, Any]:
    """A job as the endpoints show it; ``envelope``: with the finished envelope (not in listings)."""
    end = row.finished_at
    view = {
        "job_id": row.id,
        "state": row.state,
        "api": row.api,
        "dag_id": row.dag_id,
        "principal": row.principal,
        "auth_method": row.auth_method,
        "airflow_cmd": row.airflow_cmd,
        "request_id": row.request_id,
        "exit_code": row.exit_code,
        "reason": row.reason,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": end,
        "duration_seconds": round(end - row.started_at, 3) if end and row.started_at else None,
        "cancel_requested": bool(row.cancel_requested),
        "output_chars": row.output_bytes,
        "output_truncated": bool(row.output_truncated),
        "instance": row.instance,
        "location": f"/admin/rest_api/jobs/{row.id}",
    }
    if envelope:
        view["envelope"] = json.loads(row.envelope) if row.envelope else None
    return view
