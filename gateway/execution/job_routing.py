"""Routes a CLI call to the job runner when it is made from a job's thread.

Builtin APIs (``deploy_dag``, ``refresh_dag``) and :class:`gateway.calls.service.CliCalls` call the
runner themselves.  Wrapping that runner lets a job's thread send every call it makes to
the jobs' own runner (their own admission limit, the job's timeout, live output and
cancel) while request threads keep using the synchronous runner unchanged.  It also
records what the job's record must tell: whether a call was really killed by the cancel
(a cancel that comes after the last command ended kills nothing), and whether output
was dropped.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

from gateway.execution.subprocess_runner import NO_OPTIONS, CallOptions, CliResult, CliRunner, OutputCallback


@dataclass(frozen=True, slots=True)
class JobCall:
    """What every CLI call of one job shares.

    :param max_output_bytes: the jobs' runner's cap per stream (``jobs.max_output_bytes``).
    :param killed: set once a command of the job (not a read-back) was killed because of ``cancel``.
    :param truncated: set once a call's output passed the runner's cap.
    """

    on_output: OutputCallback
    cancel: threading.Event
    timeout_s: float
    max_output_bytes: int
    killed: threading.Event = field(default_factory=threading.Event)
    truncated: threading.Event = field(default_factory=threading.Event)


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
        on_output = None if options.auxiliary else job.on_output
        options = dataclasses.replace(options, on_output=on_output, cancel=job.cancel)
        result = self.jobs.run(argv, timeout_s=job.timeout_s, options=options)
        if result.cancelled and not options.auxiliary:  # a read-back cut short is said by its warning
            job.killed.set()
        if result.truncated:
            job.truncated.set()
        return result
