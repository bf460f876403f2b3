"""Routes a CLI call to the job runner when it is made from a job's thread.

Builtin APIs (``deploy_dag``, ``refresh_dag``) and :meth:`ApiEndpoint.run_plan` call the
endpoint's runner themselves.  Wrapping that runner lets a job's thread send every call it
makes to the jobs' own runner (their own admission limit, the job's timeout, live output
and cancel) while request threads keep using the synchronous runner unchanged.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from gateway.cli.runner import NO_OPTIONS, CallOptions, CliResult, CliRunner, OutputCallback


@dataclass(frozen=True, slots=True)
class JobCall:
    """What every CLI call of one job shares."""

    on_output: OutputCallback
    cancel: threading.Event
    timeout_s: float


#: Set in a job's thread only.
CURRENT_JOB: ContextVar[JobCall | None] = ContextVar("gateway_current_job", default=None)


class JobAwareRunner:
    """A :class:`CliRunner` that is ``sync`` in request threads and ``jobs`` in job threads."""

    def __init__(self, sync: CliRunner, jobs: CliRunner) -> None:
        self.sync = sync
        self.jobs = jobs

    def run(self, argv: Sequence[str], *, timeout_s: float, options: CallOptions = NO_OPTIONS) -> CliResult:
        job = CURRENT_JOB.get()
        if job is None:
            return self.sync.run(argv, timeout_s=timeout_s, options=options)
        # A job's calls get the job's timeout (jobs.timeout), not the synchronous cli.timeouts.
        options = dataclasses.replace(options, on_output=job.on_output, cancel=job.cancel)
        return self.jobs.run(argv, timeout_s=job.timeout_s, options=options)
