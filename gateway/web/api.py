"""``/admin/rest_api/api``: parse, plan, authorize, dispatch; answer in the plugin's envelope.

That is all this module does.  Running the call belongs to :mod:`gateway.calls.service`, jobs to
:mod:`gateway.jobs`; neither calls back into the endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from gateway.calls.service import CallContext, Dispatcher
from gateway.cli.compat import Compat109
from gateway.cli.interpreter import BuiltinCall, Interpreter, Plan, command_line
from gateway.cli.values import Upload, Value
from gateway.config.loader import DeployConfig, LimitsConfig
from gateway.core.envelope import Envelope
from gateway.core.errors import BadRequest, GatewayError, PayloadTooLarge
from gateway.core.redact import MAX_SECRETS, Redactor
from gateway.identity.client import client_address
from gateway.identity.principal import Principal
from gateway.ratelimit.limiter import RateLimits
from gateway.request.scope import RequestScope
from gateway.web.body import read_form

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from gateway.jobs.service import JobService

#: Called with (principal, plan or builtin call, request) before anything runs; raises a
#: :class:`~gateway.core.errors.GatewayError` to refuse.
Authorize = Callable[[Principal, Plan | BuiltinCall, Request], None]


class ApiEndpoint:
    """Serves the CLI API.

    :param dispatch: runs an authorized call (:class:`gateway.calls.service.Dispatcher`).
    :param jobs: takes calls made with ``mode=job`` or ``Prefer: respond-async``.
    :param compat: the 1.0.9 compatibility mode (argument forms and answer shapes).
    """

    def __init__(
        self,
        limits: LimitsConfig,
        deploy: DeployConfig,
        *,
        interpreter: Interpreter,
        dispatch: Dispatcher,
        redactor: Redactor,
        authorize: Authorize | None = None,
        jobs: JobService | None = None,
        compat: Compat109 | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.limits = limits
        self.max_upload_bytes = deploy.max_upload_bytes
        self.interpreter = interpreter
        self.dispatch = dispatch
        self.redactor = redactor
        self.authorize = authorize
        self.jobs = jobs
        self.compat = compat
        self.rate_limits = rate_limits

    def __call__(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        """Serve one call, for the scope's principal; the ``/api/<api_name>`` route may name the API."""
        request, query, form = self._parse(environ)
        uploads = self._uploads(request)
        redact = self.redactor
        shown_form = form.to_dict()
        shown_form.update({name: files[0].filename for name, files in uploads.items()})
        record = scope.audit
        all_args, repeated = _merge(query, form)
        record.secrets |= redact.secrets_in(all_args)
        if len(record.secrets) > MAX_SECRETS:  # each free-text scrub checks every one
            raise PayloadTooLarge(f"Too many secret values in one call (limit {MAX_SECRETS})")
        # Query and body are masked knowing every argument: a variable's value is secret by its key.
        record.query = redact.query(environ.get("QUERY_STRING", ""), record.secrets, all_args)
        envelope = Envelope(
            call_time=scope.call_time,
            request_id=record.request_id,
            arguments=redact.arguments(query.to_dict(), record.secrets, all_args),
            post_arguments=redact.arguments(shown_form, record.secrets, all_args),
        )
        record.arguments = redact.arguments(all_args, record.secrets)
        ctx = CallContext(envelope, record, scope.caller(), client_address(environ))
        api_name = scope.route_values.get("api_name")
        try:
            headers = self._serve(ctx, request, all_args, repeated, uploads, api_name)
        except GatewayError as exc:
            # A refusal is the gateway's own answer: never reshaped by the compatibility mode.
            exc.apply(envelope)
            return self._answer(ctx, exc.extra_headers, shape=False)
        return self._answer(ctx, headers)

    def _serve(
        self,
        ctx: CallContext,
        request: Request,
        args: dict[str, list[str]],
        repeated: str | None,
        uploads: dict[str, list[Upload]],
        api_name: str | None,
    ) -> dict[str, str] | None:
        """Plan, authorize and dispatch; returns extra response headers.

        :param args: the call's arguments (:func:`_merge`), consumed here.
        :param repeated: the first argument given both in the query and in the body.
        """
        envelope, record = ctx.envelope, ctx.record
        if repeated is not None:
            raise BadRequest(f"argument '{repeated}' is given both in the query and in the body")
        named = _single(args, "api")
        if api_name is not None and named not in (None, api_name):
            raise BadRequest(f"argument 'api' contradicts the URL path (api '{api_name}')")
        api_name = api_name or named
        mode = _single(args, "mode") or ""
        if mode not in ("", "sync", "job"):
            raise BadRequest("argument 'mode' must be 'job' (run as a job) or 'sync'")
        given: dict[str, Value] = {}
        if self.compat is not None:
            api_name, args, given = self.compat.normalise(api_name, args, envelope)
        record.api = api_name if api_name in self.interpreter.catalogue else None
        if self.rate_limits is not None:  # before any work: planning, policies, the CLI
            counted = RequestScope.of(request.environ).rate_counted_api
            self.rate_limits.check_api(ctx.principal, record.api, record, counted=counted)
        planned = self.interpreter.plan(api_name, args, uploads, given)
        if self.authorize is not None:
            try:
                self.authorize(ctx.principal, planned, request)
            except GatewayError as exc:
                # Policies set decision and rule_id themselves; this covers any other refusal.
                if record.decision is None and exc.code == 403:
                    record.decision = "deny"
                raise
            scope = RequestScope.of(request.environ)
            if scope.policy_decision is not None:
                envelope.extra["policy"] = scope.policy_decision
        if record.decision is None:
            record.decision = "allow"
        for warning in planned.warnings:
            envelope.add_warning(warning)
        if isinstance(planned, Plan):
            record.argv = self.redactor.argv(planned.argv, record.secrets | self.redactor.masked_values(args))
            # Shown from the masked argv: masking the shell-quoted line would miss a secret
            # the quoting changed (a ' becomes '"'"').
            envelope.airflow_cmd = command_line(record.argv)
        if self.jobs is not None and self.jobs.wanted(mode, request, planned):
            return self.jobs.accept(planned, ctx)
        if self.rate_limits is None:
            self.dispatch(planned, ctx)
            return None
        release = self.rate_limits.slot("cli_calls", ctx.principal, record)
        try:
            self.dispatch(planned, ctx)
        finally:
            release()
        return None

    def _answer(self, ctx: CallContext, headers: dict[str, str] | None, *, shape: bool = True) -> Response:
        envelope, record = ctx.envelope, ctx.record
        record.envelope_status = envelope.status  # the audit keeps the gateway's own finding
        record.exit_code = envelope.exit_code
        if shape and self.compat is not None:
            self.compat.shape(envelope, record.api)
        return envelope.response(time.time(), headers, mask=record.answered)

    def _parse(self, environ: WSGIEnvironment) -> tuple[Request, MultiDict[str, str], MultiDict[str, str]]:
        request = Request(environ)
        request.max_content_length = self.limits.max_body_bytes
        request.max_form_memory_size = self.limits.max_form_memory_bytes
        form = read_form(request, max_form_bytes=self.limits.max_form_memory_bytes)
        return request, request.args, form

    def _uploads(self, request: Request) -> dict[str, list[Upload]]:
        """The multipart files, read with the deploy size limit (413 past it)."""
        if request.method != "POST":
            return {}
        limit = self.max_upload_bytes
        found: dict[str, list[Upload]] = {}
        for name, storage in request.files.items(multi=True):
            data = storage.stream.read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(
                    f"Uploaded file too large (limit {limit} bytes: deploy.max_upload_bytes)"
                )
            found.setdefault(name, []).append(Upload(storage.filename or "", data))
        return found


def _merge(query: MultiDict[str, str], form: MultiDict[str, str]) -> tuple[dict[str, list[str]], str | None]:
    """The call's arguments, query first, and the first name also given in the body.

    A name given in both has the values of both: the call is refused (400), and its
    arguments then only serve to mask what its answer and audit event show, so every value
    sent must be among them.
    """
    args: dict[str, list[str]] = {}
    repeated = None
    for source in (query, form):
        for name in source:
            if name not in args:
                args[name] = source.getlist(name)
                continue
            if repeated is None:
                repeated = name
            if source is form:
                args[name] = args[name] + source.getlist(name)
    return args, repeated


def _single(args: dict[str, list[str]], name: str) -> str | None:
    """Pop the endpoint's own argument ``name``; given twice is refused like any other argument."""
    values = args.pop(name, None)
    if values is not None and len(values) > 1:
        raise BadRequest(f"argument '{name}' is given more than once")
    return values[0] if values else None
