"""The WSGI application: the only place where the gateway's layers are composed.

Request flow: request id and timing -> routing -> (own endpoints: auth -> policy ->
handler) or (anything else: the reverse proxy).  Errors always render as the envelope.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as WzMethodNotAllowed
from werkzeug.exceptions import NotFound as WzNotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from gateway import __version__
from gateway.api import ApiEndpoint
from gateway.audit import AuditLayer, AuditLog, AuditRecord, AuditSink, begin
from gateway.cli.apis import CATALOGUE
from gateway.cli.daemons import DaemonManager
from gateway.cli.dialects import DIALECTS
from gateway.cli.interpreter import Interpreter, PlanError
from gateway.cli.probe import AirflowInstall, airflow_python, dialect_for, probe, select_dialect
from gateway.cli.readback import read_backs
from gateway.cli.runner import Admission, CliRunner, SubprocessRunner, cli_environment
from gateway.cli.warm.dialects import WARM_UP
from gateway.cli.warm.runner import WarmLimits, WarmRunner
from gateway.config import GatewayConfig, load_config_from_process
from gateway.deploy import DagDeployer, DagList
from gateway.envelope import Envelope
from gateway.errors import GatewayError, InternalError, MethodNotAllowed, NotFound
from gateway.forwarded import trust_proxies
from gateway.health import Health
from gateway.identity.authenticator import Authenticator
from gateway.identity.client import client_address
from gateway.identity.context import CURRENT_CALLER, Caller
from gateway.identity.principal import Principal
from gateway.identity.whoami import WhoAmI
from gateway.jobs.endpoints import JobEndpoints
from gateway.jobs.runner import JobAwareRunner
from gateway.jobs.wiring import job_runner, start_jobs
from gateway.logging import configure_logging
from gateway.metrics import Metrics, MetricsEndpoint, create_metrics
from gateway.openapi import build_document
from gateway.page import page_response, render_page, static_response
from gateway.policy.enforce import ApiAuthorizer, ProxyGuard, record_principal
from gateway.policy.engine import PolicyEngine
from gateway.policy.loader import load_policies
from gateway.proxy import ReverseProxy
from gateway.redact import Redactor

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["AuditRecord", "GatewayApp", "create_app"]
log = logging.getLogger("gateway")


class GatewayApp:
    """The gateway as a WSGI callable; build it with :func:`create_app`.

    Cross-cutting layers wrap :attr:`wsgi_app` (``app.wsgi_app = Layer(app.wsgi_app)``), so
    the object keeps its attributes (``install``, ``api``...) for commands and tests.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        api: ApiEndpoint,
        auth: Authenticator,
        install: AirflowInstall,
        proxy: WSGIApplication | None = None,
        metrics_endpoint: MetricsEndpoint | None = None,
        metrics: Metrics | None = None,
        policy: PolicyEngine | None = None,
        dags: DagList | None = None,
        health: Health | None = None,
    ) -> None:
        self.config = config
        self.api = api
        self.auth = auth
        self.install = install
        self.proxy = proxy
        self.metrics_endpoint = metrics_endpoint
        self.metrics = metrics
        self.policy = policy
        self.dags = dags
        self.health = health or Health(install=install)
        self.jobs: JobEndpoints | None = None  # set by create_app (issue 15)
        # ProxyFix first: every later layer (audit, policy, proxy) sees the trusted client.
        self._entry = trust_proxies(self._layers, config.trusted_proxy_count)
        self.url_map = Map(
            [
                Rule("/admin/rest_api/api", endpoint="api", methods=["GET", "POST"]),
                Rule("/admin/rest_api/api/<api_name>", endpoint="api", methods=["GET", "POST"]),
                Rule("/admin/rest_api/", endpoint="page", methods=["GET", "HEAD"]),
                Rule("/admin/rest_api/static/<name>", endpoint="static", methods=["GET", "HEAD"]),
                Rule("/admin/rest_api/openapi.json", endpoint="openapi", methods=["GET", "HEAD"]),
                Rule("/admin/rest_api/dags", endpoint="dags", methods=["GET"]),
                Rule("/admin/rest_api/jobs", endpoint="jobs", methods=["GET"]),
                Rule("/admin/rest_api/jobs/<job_id>", endpoint="jobs", methods=["GET", "DELETE"]),
                Rule("/admin/rest_api/jobs/<job_id>/<any(output):part>", endpoint="jobs", methods=["GET"]),
                Rule("/healthz", endpoint="healthz", methods=["GET", "HEAD"]),
                # Always routed, so /metrics is never proxied to Airflow, even when disabled.
                Rule("/metrics", endpoint="metrics", methods=["GET", "HEAD"]),
                Rule("/readyz", endpoint="readyz", methods=["GET", "HEAD"]),
            ],
            strict_slashes=False,
        )
        # Most traffic is proxied: a path whose first segment starts no rule skips the matcher
        # (a tenth of a proxied request's CPU).  "//" paths still go through it, for the
        # slash-merging redirect.
        self._own_segments = frozenset(r.rule.split("/")[1] for r in self.url_map.iter_rules())
        self.handlers: dict[str, Callable[[WSGIEnvironment], Response]] = {
            "api": self._api,
            "page": self._page,
            "static": self._static,
            "openapi": self._openapi,
            "dags": self._dags,
            "jobs": self._jobs,
            "healthz": self.health.live,
            "readyz": self.health.ready,
            "metrics": self._metrics,
        }
        self.wsgi_app: WSGIApplication = self.dispatch
        # Authentication and the path policy run before anything reaches Airflow.
        self.proxied = ProxyGuard(
            self.proxy or self._not_proxied, self.auth, self.policy, trusted_proxies=config.trusted_proxy_count
        )

        interpreter = api.interpreter
        versions = describe_install(self)
        # Both depend only on the catalogue, the dialect and the config: rendered once.
        self._page_html = render_page(
            interpreter, CATALOGUE, versions=versions, token_header=config.plugin_auth.header_name
        )
        self._openapi_json = json.dumps(
            build_document(
                interpreter,
                CATALOGUE,
                token_header=config.plugin_auth.header_name,
                token_required=auth.enabled,
            )
        )

    def _authenticate(self, environ: WSGIEnvironment) -> Principal:
        principal = self.auth.authenticate(environ, own=True)
        record_principal(environ, principal)
        return principal

    def _api(self, environ: WSGIEnvironment) -> Response:
        principal = self._authenticate(environ)
        caller = Caller(principal, client_address(environ, self.config.trusted_proxy_count))
        token = CURRENT_CALLER.set(caller)
        try:
            return self.api(environ, principal, environ["gateway.route_values"].get("api_name"))
        finally:
            CURRENT_CALLER.reset(token)

    def _page(self, environ: WSGIEnvironment) -> Response:
        return page_response(self._page_html)

    def _static(self, environ: WSGIEnvironment) -> Response:
        response = static_response(environ["gateway.route_values"]["name"])
        if response is None:
            raise NotFound()
        return response

    def _openapi(self, environ: WSGIEnvironment) -> Response:
        headers = {"Cache-Control": "no-cache"}
        return Response(self._openapi_json, mimetype="application/json", headers=headers)

    def _dags(self, environ: WSGIEnvironment) -> Response:
        """The page's DAG list: authenticated and authorized like ``api=list_dags``."""
        principal = self._authenticate(environ)
        envelope = Envelope(call_time=environ["gateway.call_time"], request_id=environ["gateway.request_id"])
        if self.dags is None:
            raise NotFound()
        try:
            plan = self.api.interpreter.plan("list_dags", {"output": ["json"]})
        except PlanError as exc:
            envelope.fail(exc.status, exc.message)
            return envelope.response(time.time())
        if self.api.authorize is not None:
            self.api.authorize(principal, plan, Request(environ))
        rows = self.dags.get()
        envelope.airflow_cmd = plan.display
        envelope.output = f"{len(rows)} DAG(s)"
        shown = ("dag_id", "is_paused", "fileloc", "bundle_name")
        envelope.extra["data"] = [{k: row[k] for k in shown if k in row} for row in rows]
        return envelope.response(time.time(), {"Cache-Control": "no-store"})

    def _jobs(self, environ: WSGIEnvironment) -> Response:
        if self.jobs is None:
            raise NotFound()
        return self.jobs(environ)

    def _metrics(self, environ: WSGIEnvironment) -> Response:
        if self.metrics_endpoint is None:
            raise NotFound("Metrics are disabled")
        return self.metrics_endpoint(environ)

    def _not_proxied(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        error = NotFound("Not found (no Airflow upstream is configured for other paths)")
        return error(environ, start_response)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._entry(environ, start_response)

    def _layers(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self.wsgi_app(environ, start_response)

    def dispatch(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Route to an own endpoint, or hand the raw environ to the proxy."""
        record = begin(environ)  # normally done already by the AuditLayer
        request_id = record.request_id
        path = environ.get("PATH_INFO", "")
        if path[1:].partition("/")[0] not in self._own_segments and not path.startswith("//"):
            record.route = "proxy" if self.proxy is not None else "unmatched"
            return self.proxied(environ, start_response)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, values = adapter.match()
        except WzNotFound:
            record.route = "proxy" if self.proxy is not None else "unmatched"
            return self.proxied(environ, start_response)
        except WzMethodNotAllowed:
            return MethodNotAllowed()(environ, start_response)
        except HTTPException as exc:  # e.g. a redirect
            return exc(environ, start_response)
        record.route = endpoint
        environ["gateway.route_values"] = values
        try:
            response = self.handlers[endpoint](environ)
        except GatewayError as exc:
            response = exc.get_response(environ)  # type: ignore[assignment]
        except Exception as exc:
            # No locals, no traceback to the client: the log has the request id.
            record.error = type(exc).__name__
            log.exception("unhandled error", extra={"request_id": request_id})
            response = InternalError().get_response(environ)  # type: ignore[assignment]
        response.headers["X-Request-ID"] = request_id
        record.status = response.status_code
        return response(environ, start_response)


def build_install(config: GatewayConfig, env: dict[str, str]) -> AirflowInstall:
    """Probe the local Airflow; a forced dialect still records the version when it can."""
    return probe(config.airflow.executable, env)


def create_app(config: GatewayConfig | None = None) -> GatewayApp:
    """Build the gateway from a validated config (loaded from the environment if omitted).

    gunicorn loads this through ``wsgi_app = "gateway.app:create_app()"``.
    """
    config = config or load_config_from_process()
    policy = build_policy(config)  # before probing Airflow: a policy typo fails fast
    redactor = configure_logging(config)
    env = cli_environment(
        os.environ, airflow_home=config.airflow.home, executable=config.airflow.executable, extra=config.airflow.env
    )
    install = build_install(config, env)
    dialect_name = dialect_for(install.version) if config.airflow.dialect == "auto" else config.airflow.dialect
    dialect = select_dialect(dialect_name, DIALECTS)
    work_dir = config.state_dir / "work"
    for path in (config.state_dir, work_dir, config.cli.files_dir):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.cli.files_dir.chmod(0o700)  # exported files hold secret values
    interpreter = Interpreter(
        dialect,
        CATALOGUE,
        executable=install.executable,
        files_dir=config.cli.files_dir,
        distributions=install.distributions,
    )
    admission = Admission(config.cli.max_concurrent, config.cli.max_waiting, config.cli.queue_timeout_s)
    cold = SubprocessRunner(env=env, cwd=work_dir, max_output_bytes=config.cli.max_output_bytes, admission=admission)
    metrics = create_metrics(set(CATALOGUE))
    runner: CliRunner = cold
    if config.cli.runner == "warm":
        runner = build_warm_runner(config, cold, install, dialect.name, metrics)
    # Calls made from a job's thread go to the jobs' own runner (gateway/jobs/runner.py):
    # cold, because a job streams its output and a warm child inherits block-buffered stdout.
    routed = JobAwareRunner(runner, job_runner(config, env, work_dir))
    daemons = DaemonManager(config.daemon_dir, env=env, cwd=work_dir)
    auth = Authenticator(config, os.environ)
    if not auth.enabled:
        log.warning(
            "NO TOKEN CONFIGURED: the CLI API is open to anyone who can reach this port "
            "(set rest_api_plugin.rest_api_plugin_expected_http_token, [[auth.tokens]] or [jwt])"
        )
    authorize = ApiAuthorizer(policy, trusted_proxies=config.trusted_proxy_count) if policy else None
    api = ApiEndpoint(
        config, interpreter=interpreter, runner=routed, daemons=daemons, install=install, redactor=redactor,
        authorize=authorize,
    )  # fmt: skip
    api.register_builtin("whoami", WhoAmI(policy, CATALOGUE))
    airflow_py = airflow_python(install.executable) or sys.executable
    api.after_run.update(read_backs(dialect, routed, airflow_py, api.timeout_for))  # issue 15
    dags = DagList(
        interpreter, routed, config.deploy.dag_list_ttl_s, api.timeout_for("list_dags"), python=airflow_py
    )
    deployer = DagDeployer(
        config,
        interpreter=interpreter,
        runner=routed,
        run_plan=api.run_plan,
        timeout_for=api.timeout_for,
        work_dir=work_dir / "uploads",
        python=airflow_py,
        dags=dags,
    )
    api.register_builtin("deploy_dag", deployer.deploy)
    api.register_builtin("refresh_dag", deployer.refresh_dag)
    api.register_builtin("refresh_all_dags", deployer.refresh_all_dags)  # a builtin on Airflow 1.10 only
    metrics.set_build_info(version=__version__, airflow_version=install.version, dialect=dialect.name)
    proxy = None
    if config.proxy.upstream is not None:
        proxy = ReverseProxy.from_config(config.proxy, strip_environ_keys=auth.credential_keys())
    health = Health(install=install, proxy=proxy, readiness_path=config.proxy.readiness_path, metrics=metrics)
    sink = AuditSink(file=config.audit.file, on_file_error=metrics.audit_write_failed)
    app = assemble(
        config, api=api, auth=auth, install=install, redactor=redactor, metrics=metrics,
        sink=sink, policy=policy, dags=dags, proxy=proxy, health=health,
    )  # fmt: skip
    app.jobs = start_jobs(
        config, api=api, authenticate=app._authenticate, policy=policy, metrics=metrics,
        audit=AuditLog(redactor, sink),
    )  # fmt: skip
    log.info(
        "gateway %s ready: Airflow %s, dialect %s, %d APIs", __version__, install.version, dialect.name, len(CATALOGUE)
    )
    return app


def build_warm_runner(
    config: GatewayConfig, cold: SubprocessRunner, install: AirflowInstall, dialect: str, metrics: Metrics
) -> WarmRunner:
    """The warm runner over ``cold``, warming up in the background from now on."""
    python = airflow_python(install.executable)
    if python is None:
        log.warning("cannot tell Airflow's Python from %s: every CLI call runs cold", install.executable)
    runner = WarmRunner(
        cold=cold,
        python=python,
        executable=install.executable,
        steps=WARM_UP.get(dialect),
        state_dir=config.state_dir,
        limits=WarmLimits(config.cli.warm_max_calls, config.cli.warm_max_age_s, config.cli.warm_max_rss_bytes),
        observer=metrics,
    )
    runner.start()
    return runner


def build_policy(config: GatewayConfig) -> PolicyEngine | None:
    """Load ``policy.dir`` (None: no policies).

    :raises PolicyError: with ``file:line`` for every problem.
    """
    if config.policy.dir is None:
        return None
    engine = PolicyEngine(load_policies(config.policy.dir, CATALOGUE), shadow=config.policy.shadow)
    log.info("%d policy rules from %s%s", len(engine.policies.rules), config.policy.dir,
             " (SHADOW MODE: denials are logged, not enforced)" if config.policy.shadow else "")
    return engine


def assemble(
    config: GatewayConfig,
    *,
    api: ApiEndpoint,
    auth: Authenticator,
    install: AirflowInstall,
    redactor: Redactor,
    metrics: Metrics,
    sink: AuditSink,
    proxy: WSGIApplication | None = None,
    policy: PolicyEngine | None = None,
    dags: DagList | None = None,
    health: Health | None = None,
) -> GatewayApp:
    """Compose the app and its cross-cutting layers (the audit layer outermost)."""
    endpoint = MetricsEndpoint(config.metrics, metrics.collect_registry) if config.metrics.enabled else None
    app = GatewayApp(
        config, api=api, auth=auth, install=install, proxy=proxy, metrics_endpoint=endpoint, metrics=metrics,
        policy=policy, dags=dags, health=health,
    )  # fmt: skip
    audit = AuditLog(redactor, sink)
    app.wsgi_app = AuditLayer(app.wsgi_app, audit=audit, redactor=redactor, observers=[metrics])
    return app


def describe_install(app: Any) -> dict[str, str]:
    """Version facts for the page, health checks and metrics."""
    return {"gateway": __version__, "airflow": app.install.version, "dialect": app.api.interpreter.dialect.name}
