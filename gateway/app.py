"""The WSGI application and :func:`create_app`, the one place where the gateway is composed.

Request flow, outermost first: trusted proxies (``REMOTE_ADDR``, scheme, host) -> audit
(request id, one event, metrics) -> routing -> own endpoints (authenticate -> parse ->
plan -> authorize -> dispatch) or anything else: authenticate -> path policy -> the
reverse proxy.  Errors always render as the envelope.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from prometheus_client import CollectorRegistry
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as WzMethodNotAllowed
from werkzeug.exceptions import NotFound as WzNotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response

from gateway import __version__
from gateway.builtins.plugin import ListDaemons, PluginVersion, StopDaemon
from gateway.builtins.whoami import WhoAmI
from gateway.calls.service import BuiltinHandler, CliCalls, Dispatcher
from gateway.cli.apis import CATALOGUE
from gateway.cli.compat import Compat109
from gateway.cli.dialects import DIALECTS
from gateway.cli.interpreter import Interpreter
from gateway.cli.probe import AirflowInstall, airflow_python, dialect_for, probe, select_dialect
from gateway.config.loader import GatewayConfig, check_writable, load_config_from_process
from gateway.core.errors import GatewayError, InternalError, MethodNotAllowed, NotFound
from gateway.dags.deploy import DagDeployer
from gateway.dags.readback import read_backs
from gateway.execution import cpugroup
from gateway.execution.daemons import DaemonManager
from gateway.execution.job_routing import JobAwareRunner
from gateway.execution.subprocess_runner import (
    Admission,
    AuxiliaryCalls,
    CliRunner,
    SubprocessRunner,
    cli_environment,
)
from gateway.execution.warm.steps import WARM_UP
from gateway.execution.warm.warm_runner import WarmLimits, WarmRunner
from gateway.http.forwarded import trust_proxies
from gateway.http.health import Health
from gateway.http.proxy import ReverseProxy
from gateway.identity.authenticator import Authenticator
from gateway.identity.client import client_address
from gateway.identity.principal import Principal
from gateway.jobs.endpoints import JobEndpoints
from gateway.jobs.wiring import start_jobs
from gateway.observability.audit import AuditLayer, AuditLog, AuditSink
from gateway.observability.logging import configure_logging
from gateway.observability.metrics import Metrics, MetricsEndpoint, create_metrics
from gateway.policy.enforce import ApiAuthorizer, ProxyGuard, record_principal
from gateway.policy.engine import PolicyEngine
from gateway.policy.loader import load_policies
from gateway.web.api import ApiEndpoint, Authorize
from gateway.web.openapi import Security, build_document
from gateway.web.page import page_response, render_page, static_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["GatewayApp", "create_app"]
log = logging.getLogger("gateway")

URL_MAP = Map(
    [
        Rule("/admin/rest_api/api", endpoint="api", methods=["GET", "POST"]),
        Rule("/admin/rest_api/api/<api_name>", endpoint="api", methods=["GET", "POST"]),
        Rule("/admin/rest_api/", endpoint="page", methods=["GET", "HEAD"]),
        Rule("/admin/rest_api/static/<name>", endpoint="static", methods=["GET", "HEAD"]),
        Rule("/admin/rest_api/openapi.json", endpoint="openapi", methods=["GET", "HEAD"]),
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

Handler = Callable[["WSGIEnvironment"], Response]


class Router:
    """Sends a request to one of the gateway's own endpoints, or else to ``proxied``."""

    def __init__(self, handlers: Mapping[str, Handler], proxied: WSGIApplication, *, proxying: bool) -> None:
        self.handlers = dict(handlers)
        self.proxied = proxied
        self.proxy_route = "proxy" if proxying else "unmatched"
        # Most traffic is proxied: a path whose first segment starts no rule skips the matcher,
        # which is costly on the proxy's hot path (docs/proxy.md).  "//" paths still go through
        # it, for the slash-merging redirect.
        self._own_segments = frozenset(r.rule.split("/")[1] for r in URL_MAP.iter_rules())

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        record = environ["gateway.audit"]
        path = environ.get("PATH_INFO", "")
        if path[1:].partition("/")[0] not in self._own_segments and not path.startswith("//"):
            record.route = self.proxy_route
            return self.proxied(environ, start_response)
        try:
            endpoint, values = URL_MAP.bind_to_environ(environ).match()
        except WzNotFound:
            record.route = self.proxy_route
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
            log.exception("unhandled error", extra={"request_id": record.request_id})
            response = InternalError().get_response(environ)  # type: ignore[assignment]
        return response(environ, start_response)


class GatewayApp:
    """The composed gateway, a WSGI callable; its parts stay reachable for commands and tests."""

    def __init__(
        self,
        wsgi: WSGIApplication,
        *,
        config: GatewayConfig,
        install: AirflowInstall,
        api: ApiEndpoint,
        calls: CliCalls,
        metrics: Metrics,
        policy: PolicyEngine | None,
        jobs: JobEndpoints,
    ) -> None:
        self.wsgi = wsgi
        self.config = config
        self.install = install
        self.api = api
        self.calls = calls
        self.metrics = metrics
        self.policy = policy
        self.jobs = jobs

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self.wsgi(environ, start_response)


def create_app(
    config: GatewayConfig | None = None,
    *,
    install: AirflowInstall | None = None,
    runner: CliRunner | None = None,
    authorize: Authorize | None = None,
    proxy: WSGIApplication | None = None,
    log_stream: TextIO | None = None,
    registry: CollectorRegistry | None = None,
) -> GatewayApp:
    """Build the gateway from a validated config (loaded from the environment if omitted).

    gunicorn loads this through ``wsgi_app = "gateway.app:create_app()"``.  The keyword
    arguments replace one part each, for tests: the probed Airflow install, the CLI runner,
    the policy check, the proxy, where logs and audit lines go, the metrics registry.
    """
    config = config or load_config_from_process()
    # Before anything creates or opens them: an unwritable path is an error naming its setting.
    check_writable(config)
    policy = build_policy(config)  # before probing Airflow: a policy typo fails fast
    redactor = configure_logging(config, stream=log_stream, cache=log_stream is None)
    env = cli_environment(
        os.environ,
        airflow_home=config.airflow.home,
        executable=config.airflow.executable,
        extra=config.airflow.env,
    )
    install = install or probe(config.airflow.executable, env)
    dialect_name = (
        dialect_for(install.version) if config.airflow.dialect == "auto" else config.airflow.dialect
    )
    dialect = select_dialect(dialect_name, DIALECTS)
    work_dir = config.gateway.state_dir / "work"
    for path in (config.gateway.state_dir, work_dir, config.cli.files_dir):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.cli.files_dir.chmod(0o700)  # exported files hold secret values
    interpreter = Interpreter(
        dialect, CATALOGUE, executable=install.executable, files_dir=config.cli.files_dir,
        distributions=install.distributions,
    )  # fmt: skip
    metrics = (
        Metrics(registry, apis=set(CATALOGUE)) if registry is not None else create_metrics(set(CATALOGUE))
    )
    placement = cpugroup.prepare(config.cli.idle_cgroup)
    if placement.path is None:
        log.info("CLI calls run at nice %d, in no idle cgroup: %s", config.cli.nice, placement.reason)
    else:
        log.info("%s", placement.reason)
    runner = runner or build_runner(config, env, work_dir, install, dialect.name, metrics, placement.path)
    # Calls made from a job's thread go to the jobs' own runner (gateway/execution/job_routing.py).
    routed = JobAwareRunner(runner, build_job_runner(config, env, work_dir, placement.path))
    daemons = DaemonManager(config.daemon_dir, env=env, cwd=work_dir)
    airflow_py = airflow_python(install.executable) or sys.executable
    cli = CliCalls(config, interpreter=interpreter, runner=routed, daemons=daemons)
    # Read-backs are auxiliary calls: a job's cancel stops them without cancelling the job.
    cli.read_backs.update(read_backs(dialect, AuxiliaryCalls(routed), airflow_py, cli.timeout_for))
    deployer = DagDeployer(
        config.deploy, interpreter=interpreter, cli=cli, work_dir=work_dir / "uploads", python=airflow_py
    )
    builtins: dict[str, BuiltinHandler] = {
        "rest_api_plugin_version": PluginVersion(install.version, dialect.name),
        "list_daemons": ListDaemons(daemons, redactor),
        "stop_daemon": StopDaemon(daemons),
        "whoami": WhoAmI(policy, CATALOGUE),
        "deploy_dag": deployer.deploy,
        "refresh_dag": deployer.refresh_dag,
        "refresh_all_dags": deployer.refresh_all_dags,  # a builtin on Airflow 1.10 only
    }
    compat = (
        Compat109(CATALOGUE, install.version) if config.rest_api_plugin.compatibility == "1.0.9" else None
    )
    dispatch = Dispatcher(cli, builtins, compat=compat)
    auth = Authenticator(config, os.environ)
    if not auth.enabled:
        log.warning(
            "NO TOKEN CONFIGURED: the CLI API is open to anyone who can reach this port "
            "(set rest_api_plugin.rest_api_plugin_expected_http_token, [[auth.tokens]] or [jwt])"
        )

    def authenticate(environ: WSGIEnvironment) -> Principal:
        principal = auth.authenticate(environ, own=True)
        record_principal(environ, principal)
        return principal

    sink = AuditSink(stream=log_stream, file=config.audit.file, on_file_error=metrics.audit_write_failed)
    audit = AuditLog(redactor, sink)
    jobs = start_jobs(
        config, dispatch=dispatch, authenticate=authenticate, policy=policy, metrics=metrics, audit=audit
    )
    api = ApiEndpoint(
        config.limits, config.deploy, interpreter=interpreter, dispatch=dispatch, redactor=redactor,
        authorize=authorize or (ApiAuthorizer(policy) if policy else None), jobs=jobs.service, compat=compat,
    )  # fmt: skip
    upstream = None  # the configured Airflow upstream, unless a test gives a proxy of its own
    if config.proxy.upstream is not None and proxy is None:
        proxy = upstream = ReverseProxy.from_config(config.proxy, strip_environ_keys=auth.credential_keys())
    health = Health(
        install=install,
        proxy=upstream,
        readiness_path=config.proxy.readiness_path,
        metrics=metrics,
    )
    metrics_endpoint = (
        MetricsEndpoint(config.metrics, metrics.collect_registry) if config.metrics.enabled else None
    )
    versions = {"gateway": __version__, "airflow": install.version, "dialect": dialect.name}
    token_header = config.rest_api_plugin.rest_api_plugin_http_token_header_name
    # Both depend only on the catalogue, the dialect and the config: rendered once.
    page_html = render_page(interpreter, CATALOGUE, versions=versions, token_header=token_header)
    openapi_json = json.dumps(
        build_document(
            interpreter, CATALOGUE, token_header=token_header, security=Security.from_config(config)
        )
    )

    def api_handler(environ: WSGIEnvironment) -> Response:
        principal = authenticate(environ)
        return api(
            environ, principal, client_address(environ), environ["gateway.route_values"].get("api_name")
        )

    def static(environ: WSGIEnvironment) -> Response:
        response = static_response(environ["gateway.route_values"]["name"])
        if response is None:
            raise NotFound()
        return response

    def metrics_handler(environ: WSGIEnvironment) -> Response:
        if metrics_endpoint is None:
            raise NotFound("Metrics are disabled")
        return metrics_endpoint(environ)

    def not_proxied(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        error = NotFound("Not found (no Airflow upstream is configured for other paths)")
        return error(environ, start_response)

    handlers: dict[str, Handler] = {
        "api": api_handler,
        "page": lambda environ: page_response(page_html),
        "static": static,
        "openapi": lambda environ: Response(
            openapi_json, mimetype="application/json", headers={"Cache-Control": "no-cache"}
        ),
        "jobs": jobs,
        "healthz": health.live,
        "readyz": health.ready,
        "metrics": metrics_handler,
    }
    # Authentication and the path policy run before anything reaches Airflow.
    router = Router(handlers, ProxyGuard(proxy or not_proxied, auth, policy), proxying=proxy is not None)
    # Composed once, outermost first: trusted proxies, then the audit layer, then routing.
    wsgi = trust_proxies(
        AuditLayer(router, audit=audit, redactor=redactor, observers=[metrics]),
        config.gateway.trusted_proxy_count,
    )
    metrics.set_build_info(version=__version__, airflow_version=install.version, dialect=dialect.name)
    log.info(
        "gateway %s ready: Airflow %s, dialect %s, %d APIs",
        __version__,
        install.version,
        dialect.name,
        len(CATALOGUE),
    )
    return GatewayApp(
        wsgi, config=config, install=install, api=api, calls=cli, metrics=metrics, policy=policy, jobs=jobs
    )


def build_runner(
    config: GatewayConfig,
    env: dict[str, str],
    work_dir: Path,
    install: AirflowInstall,
    dialect: str,
    metrics: Metrics,
    cgroup: str | None = None,
) -> CliRunner:
    """The synchronous calls' runner: cold, or warm over cold (warming up from now on).

    :param cgroup: the idle CPU cgroup every call runs in (:mod:`gateway.execution.cpugroup`).
    """
    admission = Admission(config.cli.max_concurrent, config.cli.max_waiting, config.cli.queue_timeout)
    cold = SubprocessRunner(
        env=env,
        cwd=work_dir,
        max_output_bytes=config.cli.max_output_bytes,
        admission=admission,
        nice=config.cli.nice,
        cgroup=cgroup,
    )
    if config.cli.runner != "warm":
        return cold
    python = airflow_python(install.executable)
    if python is None:
        log.warning("cannot tell Airflow's Python from %s: every CLI call runs cold", install.executable)
    warm = WarmRunner(
        cold=cold,
        python=python,
        executable=install.executable,
        steps=WARM_UP.get(dialect),
        state_dir=config.gateway.state_dir,
        limits=WarmLimits(
            config.cli.warm_max_calls,
            config.cli.warm_max_age,
            config.cli.warm_max_rss_bytes,
            config.cli.warm_pool_size,
            config.cli.warm_pool_idle,
        ),  # fmt: skip
        observer=metrics,
    )
    warm.start()
    return warm


def build_job_runner(
    config: GatewayConfig, env: dict[str, str], work_dir: Path, cgroup: str | None = None
) -> SubprocessRunner:
    """The jobs' own runner: ``jobs.max_running`` slots, apart from the synchronous calls'.

    Always cold: a job streams its output, and a warm child inherits block-buffered stdout.

    :param cgroup: the idle CPU cgroup jobs run in, as CLI calls do (:mod:`gateway.execution.cpugroup`).
    """
    # Unbuffered Python output, so a job's watchers see each line when it is printed.
    return SubprocessRunner(
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd=work_dir,
        max_output_bytes=config.jobs.max_output_bytes,
        admission=Admission(config.jobs.max_running),
        nice=config.cli.nice,
        cgroup=cgroup,
    )


def build_policy(config: GatewayConfig) -> PolicyEngine | None:
    """Load ``policy.dir`` (None: no policies).

    :raises PolicyError: with ``file:line`` for every problem.
    """
    if config.policy.dir is None:
        return None
    engine = PolicyEngine(load_policies(config.policy.dir, CATALOGUE), shadow=config.policy.shadow)
    log.info("%d policy rules from %s%s", len(engine.policies.rules), config.policy.dir,
             " (SHADOW MODE: denials are logged, not enforced)" if config.policy.shadow else "")  # fmt: skip
    return engine
