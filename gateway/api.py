"""``/admin/rest_api/api``: plan the call, run it, answer in the plugin's envelope."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from gateway import __version__
from gateway.audit import AuditRecord, begin
from gateway.body import read_form
from gateway.cli.daemons import DaemonError, DaemonManager
from gateway.cli.interpreter import BuiltinCall, Interpreter, Plan, PlanError
from gateway.cli.output import classify, condense_tracebacks, filter_loading_messages, last_json_line
from gateway.cli.probe import AirflowInstall
from gateway.cli.runner import CallOptions, CliRunner, ConcurrencyLimitReached
from gateway.cli.spec import ApiKind
from gateway.cli.values import Upload
from gateway.compat import Compat109
from gateway.config import GatewayConfig
from gateway.envelope import Envelope
from gateway.errors import Busy, GatewayError, PayloadTooLarge
from gateway.identity.context import CURRENT_CALLER
from gateway.identity.principal import Principal
from gateway.jobs.runner import CURRENT_JOB
from gateway.redact import MAX_SECRETS, Redactor

if TYPE_CHECKING:
    from gateway.jobs.service import JobService

MAX_RETURNED_FILE = 8 * 1024 * 1024


class LimitedRequest(Request):
    """Request with the gateway's body and form limits (the proxy path streams instead)."""


Handler = Callable[[BuiltinCall, Envelope], None]


class ApiEndpoint:
    """Serves the CLI API.

    :param authorize: called with (principal, plan or builtin call, request) before
        anything runs; raises a :class:`~gateway.errors.GatewayError` to refuse.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        interpreter: Interpreter,
        runner: CliRunner,
        daemons: DaemonManager,
        install: AirflowInstall,
        authorize: Callable[[Principal, Plan | BuiltinCall, Request], None] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.config = config
        self.interpreter = interpreter
        self.runner = runner
        self.daemons = daemons
        self.install = install
        self.authorize = authorize
        self.redactor = redactor or Redactor()
        self.jobs: JobService | None = None  # set by the app: mode=job / Prefer: respond-async
        #: Per API, run after a successful call with (plan, envelope, start time): read-backs.
        self.after_run: dict[str, Callable[[Plan, Envelope, float], None]] = {}
        compat = config.compatibility == "1.0.9"
        self.compat = Compat109(interpreter.catalogue, install.version) if compat else None
        self.builtins: dict[str, Handler] = {
            "rest_api_plugin_version": self._plugin_version,
            "list_daemons": self._list_daemons,
            "stop_daemon": self._stop_daemon,
        }

    def register_builtin(self, name: str, handler: Handler) -> None:
        """Let other features (whoami, deploy_dag, ...) answer builtin APIs."""
        self.builtins[name] = handler

    def parse(self, environ: dict[str, Any]) -> tuple[Request, MultiDict[str, str], MultiDict[str, str]]:
        request = LimitedRequest(environ)
        request.max_content_length = self.config.limits.max_body_bytes
        request.max_form_memory_size = self.config.limits.max_form_memory_bytes
        form = read_form(request, max_form_bytes=self.config.limits.max_form_memory_bytes)
        return request, request.args, form

    def uploads(self, request: Request) -> dict[str, list[Upload]]:
        """The multipart files, read with the deploy size limit (413 past it)."""
        if request.method != "POST":
            return {}
        limit = self.config.deploy.max_upload_bytes
        found: dict[str, list[Upload]] = {}
        for name, storage in request.files.items(multi=True):
            data = storage.stream.read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(
                    f"Uploaded file too large (limit {limit} bytes: deploy.max_upload_bytes)"
                )
            found.setdefault(name, []).append(Upload(storage.filename or "", data))
        return found

    def __call__(
        self, environ: dict[str, Any], principal: Principal, api_name: str | None = None
    ) -> Response:
        """Serve one call; ``api_name`` comes from the ``/api/<name>`` route when used."""
        request, query, form = self.parse(environ)
        redact = self.redactor
        uploads = self.uploads(request)
        shown_form = form.to_dict()
        shown_form.update({name: files[0].filename for name, files in uploads.items()})
        envelope = Envelope(
            call_time=environ["gateway.call_time"],
            request_id=environ["gateway.request_id"],
            arguments=redact.arguments(query.to_dict()),
            post_arguments=redact.arguments(shown_form),
        )
        record = environ.get("gateway.audit")
        if record is None:  # used without the audit layer (unit tests of this module)
            record = begin(environ, redact)
        all_args = {name: source.getlist(name) for source in (form, query) for name in source}
        record.secrets |= redact.secrets_in(all_args)
        if len(record.secrets) > MAX_SECRETS:  # each free-text scrub checks every one
            raise PayloadTooLarge(f"Too many secret values in one call (limit {MAX_SECRETS})")
        record.arguments = redact.arguments(all_args)
        args: dict[str, list[str]] = {}
        for source in (query, form):
            for name in source:
                if name in args:
                    envelope.fail(400, f"argument '{name}' is given both in the query and in the body")
                    return self._answer(envelope, record)
                args[name] = source.getlist(name)
        named = (args.pop("api", None) or [None])[0]
        if api_name is not None and named not in (None, api_name):
            envelope.fail(400, f"argument 'api' contradicts the URL path (api '{api_name}')")
            return self._answer(envelope, record)
        api_name = api_name or named
        mode = (args.pop("mode", None) or [""])[0]
        if mode not in ("", "sync", "job"):
            envelope.fail(400, "argument 'mode' must be 'job' (run as a job) or 'sync'")
            return self._answer(envelope, record)
        try:
            if self.compat is not None:
                api_name, args = self.compat.normalise(api_name, args, envelope)
            record.api = api_name if api_name in self.interpreter.catalogue else None
            planned = self.interpreter.plan(api_name, args, uploads)
        except PlanError as exc:
            envelope.fail(exc.status, exc.message)
            return self._answer(envelope, record)
        if self.authorize is not None:
            try:
                self.authorize(principal, planned, request)
            except GatewayError as exc:
                # Policies set decision and rule_id themselves; this covers any other refusal.
                if record.decision is None and exc.code == 403:
                    record.decision = "deny"
                raise
            if environ.get("gateway.policy_decision") is not None:
                envelope.extra["policy"] = environ["gateway.policy_decision"]
        if record.decision is None:
            record.decision = "allow"
        for warning in planned.warnings:
            envelope.add_warning(warning)
        if self.jobs is not None and self.jobs.wanted(mode, request, planned):
            return self._answer(envelope, record, self.jobs.accept(planned, envelope, record, principal))
        if isinstance(planned, BuiltinCall):
            self.builtins[planned.handler](planned, envelope)
        else:
            envelope.airflow_cmd = redact.text(planned.display, record.secrets)
            record.argv = redact.argv(planned.argv, record.secrets)
            if planned.api.kind is ApiKind.DAEMON:
                self._start_daemon(planned, envelope, record)
            elif self.compat is None or not self.compat.answer_in_process(planned, envelope):
                self._run(planned, envelope, record, self.call_options(principal))
        return self._answer(envelope, record)

    def _answer(self, envelope: Envelope, record: AuditRecord, headers: dict[str, str] | None = None) -> Response:
        record.envelope_status = envelope.status  # the audit keeps the gateway's own finding
        record.exit_code = envelope.exit_code
        if self.compat is not None:
            self.compat.shape(envelope, record.api)
        return envelope.response(time.time(), headers)

    def timeout_for(self, api: str) -> float:
        """The configured CLI timeout of ``api``."""
        return self.config.cli.timeouts_s.get(api, self.config.cli.default_timeout_s)

    def call_options(self, principal: Principal | None) -> CallOptions:
        """Per-call runner options: the principal's name as Airflow's CLI user, when configured."""
        if principal is None or not self.config.cli.pass_principal_as_user:
            return CallOptions()
        return CallOptions(user=principal.name)

    def run_plan(
        self, plan: Plan, envelope: Envelope, record: AuditRecord | None = None, principal: Principal | None = None
    ) -> None:
        """Run a planned CLI call and fill the envelope (for builtin handlers that end in one)."""
        if principal is None and (caller := CURRENT_CALLER.get(None)) is not None:
            principal = caller.principal
        envelope.airflow_cmd = plan.display
        self._run(plan, envelope, record, self.call_options(principal))

    def _run(self, plan: Plan, envelope: Envelope, record: AuditRecord | None, options: CallOptions) -> None:
        try:
            self._run_plan(plan, envelope, record, options)
        finally:
            # An exported file holds secret values: gone once returned (or failed).
            if plan.command.returns_file and plan.command.returns_file in plan.files:
                plan.files[plan.command.returns_file].unlink(missing_ok=True)

    def _run_plan(self, plan: Plan, envelope: Envelope, record: AuditRecord | None, options: CallOptions) -> None:
        if record is None:  # a builtin's helper run: the builtin call itself is what gets audited
            record = AuditRecord(request_id=envelope.request_id, method="", path="", remote_addr=None)
        started = time.time()
        try:
            result = self.runner.run(plan.argv, timeout_s=self.timeout_for(plan.api.name), options=options)
        except ConcurrencyLimitReached:
            record.cli_outcome = "busy"
            raise Busy(headers={"Retry-After": "1"}) from None
        record.cli_runner = envelope.extra["runner"] = result.runner
        rules = plan.outcome_rules + self.interpreter.dialect.outcome
        outcome = classify(result, rules)
        record.cli_duration_s = result.duration_s
        record.cli_outcome = "timeout" if result.timed_out else ("ok" if outcome.status < 400 else "failed")
        stdout, stderr = result.stdout, result.stderr
        if self.config.cli.filter_loading_messages:
            keep = plan.translation.logs_are_output
            stdout = filter_loading_messages(stdout, logs_are_output=keep)
            stderr = filter_loading_messages(stderr, logs_are_output=keep)
        output = {"stdout": condense_tracebacks(stdout), "stderr": condense_tracebacks(stderr), "stdin": ""}
        envelope.output = output
        envelope.exit_code = result.returncode
        envelope.duration_seconds = round(result.duration_s, 3)
        if result.truncated:
            envelope.extra["output_truncated"] = True
            envelope.add_warning(f"output truncated at {self.config.cli.max_output_bytes} bytes per stream")
        if outcome.warning:
            envelope.add_warning(outcome.warning)
        if outcome.status >= 400:
            envelope.fail(outcome.status, output)
            envelope.extra["error"] = self._timed_out(plan) if result.timed_out else outcome.message
            return
        envelope.http_response_code = outcome.status
        if plan.wants_data:
            self._attach_data(plan, result.stdout, envelope)
        if (after := self.after_run.get(plan.api.name)) is not None:
            after(plan, envelope, started)

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

    def _attach_data(self, plan: Plan, raw_stdout: str, envelope: Envelope) -> None:
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

    def _start_daemon(self, plan: Plan, envelope: Envelope, audit: AuditRecord) -> None:
        record, code = self.daemons.start(plan.api.name, plan.argv, shown_argv=audit.argv)
        envelope.extra["daemon"] = {"id": record.id, "pid": record.pid, "log_path": record.log_path}
        envelope.output = {"pid": record.pid, "log_path": record.log_path, "id": record.id}
        audit.cli_outcome = "ok" if code is None else "failed"
        if code is not None:
            envelope.exit_code = code
            tail = _tail(record.log_path)
            envelope.fail(400 if code == 2 else 500, {"stdout": tail, "stderr": "", "stdin": ""})
            envelope.extra["error"] = f"the daemon exited at once with exit code {code}"

    def _plugin_version(self, call: BuiltinCall, envelope: Envelope) -> None:
        envelope.output = __version__
        envelope.extra["airflow_version"] = self.install.version
        envelope.extra["dialect"] = self.interpreter.dialect.name

    def _list_daemons(self, call: BuiltinCall, envelope: Envelope) -> None:
        rows = self.daemons.list()
        for row in rows:  # records store the masked argv; older ones may not have
            row["argv"] = self.redactor.argv(row["argv"])
        envelope.output = rows
        envelope.extra["data"] = rows

    def _stop_daemon(self, call: BuiltinCall, envelope: Envelope) -> None:
        try:
            envelope.output = self.daemons.stop(str(call.values["id"]))
        except DaemonError as exc:
            envelope.fail(exc.status, exc.message)


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
