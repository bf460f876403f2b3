"""Running a planned call: the one service every way into the gateway uses.

The API endpoint plans and authorizes a call, then hands it to :class:`Dispatcher`; a job
thread hands it the same call later.  :class:`CliCalls` runs Airflow CLI plans (timeouts,
the 503 of a full runner, output filtering, data extraction, daemons, read-backs) and is
what builtin APIs use when they end in a CLI command.  Nothing here calls back into the
endpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gateway.cli.interpreter import BuiltinCall, Interpreter, Plan
from gateway.cli.output import classify, condense_tracebacks, filter_loading_messages, last_json_line
from gateway.cli.spec import ApiKind
from gateway.config.loader import GatewayConfig
from gateway.core.envelope import Envelope
from gateway.execution.daemons import DaemonManager
from gateway.execution.job_routing import CURRENT_JOB
from gateway.execution.subprocess_runner import CallOptions, CliResult, CliRunner, ConcurrencyLimitReached

if TYPE_CHECKING:
    from gateway.cli.compat import Compat109
    from gateway.identity.client import IPAddress
    from gateway.identity.principal import Principal
    from gateway.observability.audit import AuditRecord

MAX_RETURNED_FILE = 8 * 1024 * 1024


class ReadBack(Protocol):
    """Reads back a fact the CLI does not print."""

    def before(self, plan: Plan) -> object:
        """Called before the call; what it returns is given back as ``prior``."""

    def __call__(self, plan: Plan, envelope: Envelope, started: float, prior: object) -> None:
        """Called after the call with its envelope and start time (Unix)."""


@dataclass(slots=True)
class CallContext:
    """One call's facts, set once by the API endpoint (or a job) and passed down."""

    envelope: Envelope
    record: AuditRecord
    principal: Principal
    address: IPAddress | None


class BuiltinHandler(Protocol):
    """An API answered in-process (``whoami``, ``deploy_dag``...): fills ``ctx.envelope``
    or raises a :class:`~gateway.core.errors.GatewayError`."""

    def __call__(self, call: BuiltinCall, ctx: CallContext) -> None: ...


class CliCalls:
    """Runs planned Airflow CLI calls and fills the call's envelope.

    :param read_backs: per API, run after a successful call (:mod:`gateway.dags.readback`).
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        interpreter: Interpreter,
        runner: CliRunner,
        daemons: DaemonManager,
        read_backs: Mapping[str, ReadBack] | None = None,
    ) -> None:
        self.config = config.cli
        #: ``[rest_api_plugin] filter_loading_messages_in_cli_response``, the plugin's own setting.
        self.filter_loading_messages = config.rest_api_plugin.filter_loading_messages_in_cli_response
        self.interpreter = interpreter
        self.runner = runner
        self.daemons = daemons
        self.read_backs = dict(read_backs or {})

    def timeout_for(self, api: str) -> float:
        """The configured CLI timeout of ``api``."""
        return self.config.timeouts.get(api, self.config.default_timeout)

    def options(self, principal: Principal | None) -> CallOptions:
        """The principal's name as Airflow's CLI user, when configured."""
        if principal is None or not self.config.pass_principal_as_user:
            return CallOptions()
        return CallOptions(user=principal.name)

    def output_of(self, plan: Plan, timeout_s: float | None = None) -> CliResult:
        """Run ``plan`` for its output only (a builtin's helper command; no envelope).

        :raises ConcurrencyLimitReached: a :class:`~gateway.core.errors.Busy`.
        """
        return self.runner.run(plan.argv, timeout_s=timeout_s or self.timeout_for(plan.api.name))

    def run(self, plan: Plan, ctx: CallContext) -> None:
        """Run ``plan`` and make ``ctx.envelope`` its answer, as a synchronous call shows it."""
        try:
            self._run(plan, ctx)
        finally:
            # An exported file holds secret values: gone once returned (or failed).
            if plan.command.returns_file and plan.command.returns_file in plan.files:
                plan.files[plan.command.returns_file].unlink(missing_ok=True)

    def _run(self, plan: Plan, ctx: CallContext) -> None:
        envelope, record = ctx.envelope, ctx.record
        read_back = self.read_backs.get(plan.api.name)
        prior = read_back.before(plan) if read_back is not None else None
        started = time.time()
        try:
            result = self.runner.run(
                plan.argv, timeout_s=self.timeout_for(plan.api.name), options=self.options(ctx.principal)
            )
        except ConcurrencyLimitReached:
            record.cli_outcome = "busy"
            raise
        record.cli_runner = envelope.extra["runner"] = result.runner
        outcome = classify(result, plan.outcome_rules + self.interpreter.dialect.outcome)
        record.cli_duration_s = result.duration_s
        record.cli_outcome = (
            "timeout"
            if result.timed_out
            else "cancelled"
            if result.cancelled
            else ("ok" if outcome.status < 400 else "failed")
        )
        stdout, stderr = result.stdout, result.stderr
        if self.filter_loading_messages:
            keep = plan.translation.logs_are_output
            stdout = filter_loading_messages(stdout, logs_are_output=keep)
            stderr = filter_loading_messages(stderr, logs_are_output=keep)
        output = {"stdout": condense_tracebacks(stdout), "stderr": condense_tracebacks(stderr), "stdin": ""}
        envelope.output = output
        envelope.exit_code = result.returncode
        envelope.duration_seconds = round(result.duration_s, 3)
        if result.truncated:
            envelope.extra["output_truncated"] = True
            envelope.add_warning(self._truncated())
        if outcome.warning:
            envelope.add_warning(outcome.warning)
        if outcome.status >= 400:
            envelope.fail(outcome.status, output)
            envelope.extra["error"] = self._timed_out(plan) if result.timed_out else outcome.message
            return
        envelope.http_response_code = outcome.status
        if plan.wants_data:
            _attach_data(plan, result.stdout, envelope)
        if read_back is not None:
            read_back(plan, envelope, started, prior)

    def _truncated(self) -> str:
        """The truncation warning, naming the setting that cut the output."""
        if (job := CURRENT_JOB.get()) is not None:
            return f"output truncated at {job.max_output_bytes} bytes per stream (jobs.max_output_bytes)"
        return f"output truncated at {self.config.max_output_bytes} bytes per stream (cli.max_output_bytes)"

    def _timed_out(self, plan: Plan) -> str:
        """A 504's error: which setting to raise, and that a job has no such limit."""
        name = plan.api.name
        if (job := CURRENT_JOB.get()) is not None:
            return f"the job ran longer than jobs.timeout ({job.timeout_s:g} s) and was killed"
        return (
            f"the command did not finish in time ({self.timeout_for(name):g} s) and was killed: raise"
            f" cli.timeouts.{name}, or run it as a job (add mode=job, or send Prefer: respond-async) to get"
            " a job id at once and watch its output live"
        )

    def start_daemon(self, plan: Plan, ctx: CallContext) -> None:
        """Start a daemon API's process detached; a process that exits at once is an error."""
        envelope, audit = ctx.envelope, ctx.record
        record, code = self.daemons.start(plan.api.name, plan.argv, shown_argv=audit.argv)
        envelope.extra["daemon"] = {"id": record.id, "pid": record.pid, "log_path": record.log_path}
        envelope.output = {"pid": record.pid, "log_path": record.log_path, "id": record.id}
        audit.cli_outcome = "ok" if code is None else "failed"
        if code is not None:
            envelope.exit_code = code
            tail = _tail(record.log_path)
            envelope.fail(400 if code == 2 else 500, {"stdout": tail, "stderr": "", "stdin": ""})
            envelope.extra["error"] = f"the daemon exited at once with exit code {code}"


class Dispatcher:
    """Runs an authorized call of any kind: a builtin, a daemon or a CLI command.

    :param compat: the 1.0.9 compatibility mode, which answers some APIs in-process.
    """

    def __init__(
        self, cli: CliCalls, builtins: Mapping[str, BuiltinHandler], *, compat: Compat109 | None = None
    ) -> None:
        self.cli = cli
        self.builtins = dict(builtins)
        self.compat = compat

    def __call__(self, planned: Plan | BuiltinCall, ctx: CallContext) -> None:
        if isinstance(planned, BuiltinCall):
            self.builtins[planned.handler](planned, ctx)
        elif planned.api.kind is ApiKind.DAEMON:
            self.cli.start_daemon(planned, ctx)
        elif self.compat is None or not self.compat.answer_in_process(planned, ctx.envelope):
            self.cli.run(planned, ctx)


def _attach_data(plan: Plan, raw_stdout: str, envelope: Envelope) -> None:
    try:
        if plan.command.returns_file:
            path = plan.files[plan.command.returns_file]
            if path.stat().st_size > MAX_RETURNED_FILE:
                envelope.add_warning("the exported file is too large to return; it was removed")
                return
            envelope.extra["data"] = json.loads(path.read_text("utf-8"))
        elif plan.command.json == "flag":
            envelope.extra["data"] = last_json_line(raw_stdout)
        elif plan.command.json == "stdout":
            envelope.extra["data"] = json.loads(filter_loading_messages(raw_stdout))
    except (OSError, ValueError):
        envelope.add_warning("the command printed no JSON; see output.stdout")


def _tail(path: str, limit: int = 16384) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(size - limit, 0))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return condense_tracebacks(filter_loading_messages(text))
