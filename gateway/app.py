"""The WSGI application and :func:`create_app`, the one place where the gateway is composed.

Request flow, outermost first: trusted proxies (``REMOTE_ADDR``, scheme, host) -> the
request lifecycle (scope, request id, one audit event, metrics, errors rendered as the
envelope) -> routing (:mod:`gateway.request.routes`) -> authentication (the principal, on
every route not declared public and on proxied paths) -> dispatch: an own endpoint's
handler (:mod:`gateway.web.endpoints`; the API parses, plans, authorizes, dispatches) or,
for anything else, the path policy and the reverse proxy.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from prometheus_client import CollectorRegistry

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
from gateway.core.redact import Redactor
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
from gateway.identity.assertion import AssertionHeader, AssertionSigner, KeyRing
from gateway.identity.authenticator import Authenticator
from gateway.jobs.endpoints import JobEndpoints
from gateway.jobs.wiring import start_jobs
from gateway.observability.audit import AuditLog, AuditSink
from gateway.observability.logging import configure_logging
from gateway.observability.metrics import Metrics, MetricsEndpoint, create_metrics
from gateway.policy.enforce import ApiAuthorizer, ProxyGuard
from gateway.policy.engine import PolicyEngine
from gateway.policy.loader import PolicyFiles, load_policies
from gateway.policy.model import PolicySet
from gateway.ratelimit.limiter import RateLimiting, RateLimits
from gateway.request.authentication import Authentication, MissingCredential, PrincipalSource
from gateway.request.lifecycle import RequestLifecycle
from gateway.request.routes import TABLE
from gateway.request.routing import Dispatch, Handler, Routing
from gateway.sessions.signon import SignOn
from gateway.web.api import ApiEndpoint, Authorize
from gateway.web.endpoints import Endpoints, not_proxied
from gateway.web.openapi import Security

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["GatewayApp", "create_app"]
log = logging.getLogger("gateway")


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

    def drain(self, keep_going: Callable[[], bool]) -> None:
        """A reload retired this worker: let its jobs end (called by the gunicorn worker)."""
        self.jobs.service.drain(keep_going)


def create_app(
    config: GatewayConfig | None = None,
    *,
    install: AirflowInstall | None = None,
    runner: CliRunner | None = None,
    authorize: Authorize | None = None,
    proxy: WSGIApplication | None = None,
    log_stream: TextIO | None = None,
    registry: CollectorRegistry | None = None,
    policies: PolicySet | None = None,
) -> GatewayApp:
    """Build the gateway from a validated config (loaded from the environment if omitted).

    gunicorn's workers call it with the configuration and policies their master checked
    (:mod:`gateway.entry.reloading`).  The other keyword arguments replace one part each, for
    tests: the probed Airflow install, the CLI runner, the policy check, the proxy, where logs
    and audit lines go, the metrics registry.
    """
    config = config or load_config_from_process()
    # Before anything creates or opens them: an unwritable path is an error naming its setting.
    check_writable(config)
    policy = build_policy(config, policies)  # before probing Airflow: a policy typo fails fast
    redactor = configure_logging(config, stream=log_stream, cache=log_stream is None)
    env = cli_environment(
        os.environ, airflow_home=config.airflow.home, executable=config.airflow.executable,
        extra=config.airflow.env,
    )  # fmt: skip
    install = install or probe(config.airflow.executable, env)
    dialect = select_dialect(
        dialect_for(install.version) if config.airflow.dialect == "auto" else config.airflow.dialect, DIALECTS
    )
    interpreter = Interpreter(
        dialect, CATALOGUE, executable=install.executable, files_dir=config.cli.files_dir,
        distributions=install.distributions,
    )  # fmt: skip
    apis = set(CATALOGUE)
    metrics = Metrics(registry, apis=apis) if registry is not None else create_metrics(apis)
    cli, dispatch, compat = build_calls(config, env, install, interpreter, metrics, redactor, policy, runner)
    auth = build_authenticator(config)
    signon = SignOn.from_config(config, os.environ)  # None while oidc.issuer is unset
    sink = AuditSink(stream=log_stream, file=config.audit.file, on_file_error=metrics.audit_write_failed)
    audit = AuditLog(redactor, sink)
    limits = build_rate_limits(config, metrics)
    jobs = start_jobs(config, dispatch=dispatch, policy=policy, metrics=metrics, audit=audit, limits=limits)
    api = ApiEndpoint(
        config.limits, config.deploy, interpreter=interpreter, dispatch=dispatch, redactor=redactor,
        authorize=authorize or (ApiAuthorizer(policy) if policy else None), jobs=jobs.service, compat=compat,
        rate_limits=limits,
    )  # fmt: skip
    assertion = build_assertion(config)
    upstream = None  # the configured Airflow upstream, unless a test gives a proxy of its own
    if config.proxy.upstream is not None and proxy is None:
        proxy = upstream = ReverseProxy.from_config(
            config.proxy, strip_environ_keys=auth.credential_keys(), assertion=assertion
        )
    endpoints = Endpoints(
        api=api, jobs=jobs, interpreter=interpreter, catalogue=CATALOGUE,
        health=Health(
            install=install, proxy=upstream, readiness_path=config.proxy.readiness_path, metrics=metrics,
            rate_limits=limits.readiness,
        ),
        metrics=MetricsEndpoint(config.metrics, metrics.collect_registry) if config.metrics.enabled else None,
        versions={"gateway": __version__, "airflow": install.version, "dialect": dialect.name},
        token_header=config.rest_api_plugin.rest_api_plugin_http_token_header_name,
        security=Security.from_config(config), signon=signon,
        jwks=assertion.signer.keys.jwks() if assertion.signer else None,
    )  # fmt: skip
    layers = compose(
        endpoints.handlers(TABLE), proxy, auth, policy, audit=audit, redactor=redactor, metrics=metrics,
        signon=signon,
        limits=limits,
    )  # fmt: skip
    wsgi = trust_proxies(layers, config.gateway.trusted_proxy_count)
    metrics.set_build_info(version=__version__, airflow_version=install.version, dialect=dialect.name)
    log.info("gateway %s ready: Airflow %s, dialect %s, %d APIs",
             __version__, install.version, dialect.name, len(CATALOGUE))  # fmt: skip
    return GatewayApp(
        wsgi, config=config, install=install, api=api, calls=cli, metrics=metrics, policy=policy, jobs=jobs
    )


def compose(
    handlers: Mapping[str, Handler],
    proxy: WSGIApplication | None,
    auth: Authenticator,
    policy: PolicyEngine | None,
    *,
    audit: AuditLog,
    redactor: Redactor,
    metrics: Metrics,
    signon: SignOn | None = None,
    limits: RateLimits | None = None,
) -> WSGIApplication:
    """The gateway's layers, outermost first: the request lifecycle (scope, request id, audit
    event, metrics, errors rendered as the envelope), routing, authentication, rate limits
    (``limits`` with rules), then the route's handler, or for other paths the path policy
    and ``proxy`` (404 without one).

    :param handlers: one per route of :data:`gateway.request.routes.TABLE`.
    :param signon: browser sign-on: the session is a principal source after the gateway's
        credentials, a browser without one is sent to log in, and the proxy never sees its cookie.
    """
    proxied = proxy or not_proxied
    if policy is not None:
        proxied = ProxyGuard(proxied, policy)
    missing: MissingCredential = auth.missing
    sources: list[PrincipalSource] = [auth.identify]
    if signon is not None:
        proxied = signon.strip(proxied)
        sources.append(signon)
        missing = signon.missing_with(auth.missing, closed=not auth.allow_anonymous)
    dispatch: WSGIApplication = Dispatch(handlers, proxied, TABLE)
    if limits is not None and limits.enabled:
        dispatch = RateLimiting(dispatch, limits)
    authentication = Authentication(dispatch, sources=sources, missing=missing)
    routing = Routing(authentication, TABLE, proxying=proxy is not None)
    return RequestLifecycle(routing, audit=audit, redactor=redactor, observers=[metrics])


def build_calls(
    config: GatewayConfig,
    env: dict[str, str],
    install: AirflowInstall,
    interpreter: Interpreter,
    metrics: Metrics,
    redactor: Redactor,
    policy: PolicyEngine | None,
    runner: CliRunner | None = None,
) -> tuple[CliCalls, Dispatcher, Compat109 | None]:
    """The call service: the runners, daemons, read-backs, deployment and the builtins.

    :param runner: replaces the synchronous calls' runner (tests).
    """
    dialect = interpreter.dialect
    work_dir = config.gateway.state_dir / "work"
    for path in (config.gateway.state_dir, work_dir, config.cli.files_dir):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.cli.files_dir.chmod(0o700)  # exported files hold secret values
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
    roles = config.assertion.airflow_roles if config.assertion.enabled else None
    builtins: dict[str, BuiltinHandler] = {
        "rest_api_plugin_version": PluginVersion(install.version, dialect.name),
        "list_daemons": ListDaemons(daemons, redactor),
        "stop_daemon": StopDaemon(daemons),
        "whoami": WhoAmI(policy, CATALOGUE, airflow_roles=roles),
        "deploy_dag": deployer.deploy,
        "refresh_dag": deployer.refresh_dag,
        "refresh_all_dags": deployer.refresh_all_dags,  # a builtin on Airflow 1.10 only
    }
    compat = (
        Compat109(CATALOGUE, install.version) if config.rest_api_plugin.compatibility == "1.0.9" else None
    )
    return cli, Dispatcher(cli, builtins, compat=compat), compat


def build_assertion(config: GatewayConfig) -> AssertionHeader:
    """The identity assertion header: signed for each principal, or only stripped when off."""
    settings = config.assertion
    if not settings.enabled:
        return AssertionHeader(settings.header, None)
    keys = KeyRing.load(key_dir=config.gateway.state_dir / "keys", key_file=settings.key_file)
    signer = AssertionSigner(
        keys, issuer=settings.issuer, audience=settings.audience, lifetime_s=settings.lifetime
    )
    return AssertionHeader(settings.header, signer)


def build_rate_limits(config: GatewayConfig, metrics: Metrics) -> RateLimits:
    """``[rate_limits]``: counters in Redis when ``storage_url`` names one, else per worker."""
    limits = RateLimits(config.rate_limits, observer=metrics)
    if limits.enabled:
        shared = limits.counters.redis is not None
        if shared:
            metrics.rate_limit_storage(True)
        log.info("%d rate-limit rules, counted %s", len(config.rate_limits.rules),
                 "in Redis (shared by every instance)" if shared else "per worker process")  # fmt: skip
    return limits


def build_authenticator(config: GatewayConfig) -> Authenticator:
    """The gateway's credentials (plugin token, named tokens, JWT); warns when there are none."""
    auth = Authenticator(config, os.environ)
    if not auth.enabled:
        log.warning(
            "NO TOKEN CONFIGURED: the CLI API is open to anyone who can reach this port "
            "(set rest_api_plugin.rest_api_plugin_expected_http_token, [[auth.tokens]] or [jwt])"
        )
    return auth


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


def build_policy(config: GatewayConfig, policies: PolicySet | None = None) -> PolicyEngine | None:
    """Load ``policy.dir`` (None: no policies), watched when ``policy.reload_interval`` is set.

    :param policies: already loaded from ``policy.dir`` (by the gunicorn master, which checked them).
    :raises PolicyError: with ``file:line`` for every problem.
    """
    directory = config.policy.dir
    if directory is None:
        return None
    policies = policies or load_policies(directory, CATALOGUE)
    interval = config.policy.reload_interval
    files = PolicyFiles(directory, CATALOGUE, interval, policies) if interval > 0 else None
    engine = PolicyEngine(policies, shadow=config.policy.shadow, files=files)
    log.info("%d policy rules from %s, version %s%s", len(policies.rules), directory, policies.version,
             " (SHADOW MODE: denials are logged, not enforced)" if config.policy.shadow else "")  # fmt: skip
    return engine
