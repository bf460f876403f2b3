"""Prometheus metrics: one prefix, base units, bounded labels, correct under gunicorn.

Under several gunicorn workers, ``PROMETHEUS_MULTIPROC_DIR`` must be set before Python
starts (prometheus_client picks its value class at import): ``airflow-gateway serve``,
``gunicorn.conf.py`` and the test fixture see to it.  Then :class:`Metrics` is built with
``registry=None`` (values live in the directory's mmap files) and ``/metrics`` merges all
workers' files with a :class:`~prometheus_client.multiprocess.MultiProcessCollector` per
scrape.  Without the variable (one process), a private registry is used.

Every label value comes from a closed set; anything else is reported as ``other``.

A full or unwritable metrics directory degrades metrics instead of killing workers: the
files are allocated before they are mapped (:mod:`gateway.observability.multiprocess_files`), the first
failure is logged and shown by ``/readyz``, and the worker stops recording (requests,
``/healthz`` and the proxy go on).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import choose_encoder
from werkzeug.wrappers import Request, Response

from gateway.core.errors import Forbidden, TokenRequired
from gateway.observability import multiprocess_files as metrics_files

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from gateway.config.loader import MetricsConfig
    from gateway.observability.audit import AuditRecord

metrics_files.install()  # before any value is created: files allocated, never SIGBUS
log = logging.getLogger("gateway.metrics")
# What a full, read-only or vanished metrics directory raises (mmap: ValueError too).
_FILE_ERRORS = (OSError, ValueError)

PREFIX = "airflow_gateway_"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"
#: The audit record's ``route`` values: every route of ``gateway.request.routes.ROUTES``, plus the proxy.
ROUTES = frozenset(
    {"api", "page", "static", "openapi", "jobs", "healthz", "readyz", "metrics", "jwks", "proxy", "unmatched"}
    | {"login", "oidc_callback", "logout"}
)
JOB_STATES = frozenset({"succeeded", "failed", "timed_out", "cancelled"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLI_OUTCOMES = frozenset({"ok", "failed", "timeout", "cancelled", "busy"})
# The identity layer (gateway/identity/) may add reasons here; unknown ones are counted as "other".
AUTH_FAILURE_REASONS = frozenset(
    {"missing_token", "bad_token", "expired_token", "invalid_token", "unknown_key", "key_service_unavailable"}
)
CLI_RUNNERS = frozenset({"warm", "cold"})
# Why a call ran cold although the warm runner is on, and why a warm process was replaced
# (gateway/execution/warm/warm_runner.py).
WARM_FALLBACK_REASONS = frozenset(
    {"warming_up", "unavailable", "died", "max_calls", "max_age", "max_rss", "config", "plugins", "install",
     "environment"}
)  # fmt: skip
UPSTREAM_ERROR_KINDS = frozenset({"connect", "timeout", "read", "protocol", "disconnect"})

_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_CLI_BUCKETS = (
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    3.0,
    5.0,
    7.5,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
_UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def multiprocess_enabled(environ: dict[str, str] | None = None) -> bool:
    """True when prometheus_client runs in multiprocess (mmap file) mode."""
    return bool((environ if environ is not None else os.environ).get(MULTIPROC_ENV))


def _bounded(value: str | None, allowed: frozenset[str]) -> str:
    return value if value in allowed else OTHER


class Metrics:
    """The gateway's metrics, and the hooks other features call.

    :param registry: a private :class:`CollectorRegistry`, or ``None`` in multiprocess
        mode (values go to the mmap files and :meth:`collect_registry` merges them).
    :param apis: the API names of the catalogue (the only values of the ``api`` label).

    Tests: ``m = Metrics(CollectorRegistry(), apis={"version"})``, then
    ``registry.get_sample_value("airflow_gateway_requests_total", {...})``.
    """

    def __init__(
        self, registry: CollectorRegistry | None, *, apis: frozenset[str] | set[str] = frozenset()
    ) -> None:
        self.registry = registry
        self.apis = frozenset(apis)
        self.degraded: str | None = None  # why recording stopped (a full metrics directory...)
        r = registry
        self.requests = Counter(
            f"{PREFIX}requests", "HTTP requests answered, by route class, method and status code.",
            ("route", "method", "code"), registry=r,
        )  # fmt: skip
        self.request_duration = Histogram(
            f"{PREFIX}request_duration_seconds", "Time from request start to the end of the response body.",
            ("route",), buckets=_REQUEST_BUCKETS, registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            f"{PREFIX}in_flight_requests",
            "Requests being served right now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.response_bytes = Counter(
            f"{PREFIX}response_bytes", "Response body bytes sent, by route class.", ("route",), registry=r
        )
        self.request_bytes = Counter(
            f"{PREFIX}request_bytes", "Request body bytes read, by route class.", ("route",), registry=r
        )
        self.cli_calls = Counter(
            f"{PREFIX}cli_calls",
            "Airflow CLI calls, by API and outcome (ok, failed, timeout, cancelled, busy).",
            ("api", "outcome"), registry=r,
        )  # fmt: skip
        self.cli_duration = Histogram(
            f"{PREFIX}cli_duration_seconds", "Wall time of Airflow CLI commands, by API.",
            ("api",), buckets=_CLI_BUCKETS, registry=r,
        )  # fmt: skip
        self.cli_runner_calls = Counter(
            f"{PREFIX}cli_runner_calls", "Airflow CLI calls by the runner that served them (warm, cold).",
            ("runner",), registry=r,
        )  # fmt: skip
        self.cli_fallbacks = Counter(
            f"{PREFIX}cli_warm_fallbacks", "CLI calls run cold although the warm runner is on, by reason.",
            ("reason",), registry=r,
        )  # fmt: skip
        self.warm_restarts = Counter(
            f"{PREFIX}cli_warm_restarts", "Warm CLI processes replaced, by reason.", ("reason",), registry=r
        )
        # One warm process per worker: the sum over live workers is the instance's total.
        self.warm_rss_bytes = Gauge(
            f"{PREFIX}cli_warm_rss_bytes",
            "Resident memory of the warm CLI processes (forked calls excluded).",
            registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.auth_failures = Counter(
            f"{PREFIX}auth_failures", "Requests refused because authentication failed, by reason.",
            ("reason",), registry=r,
        )  # fmt: skip
        self.policy_denials = Counter(
            f"{PREFIX}policy_denials", "Requests refused by policy, by API.", ("api",), registry=r
        )
        self.upstream_errors = Counter(
            f"{PREFIX}upstream_errors",
            "Proxied requests that failed upstream, by kind.",
            ("kind",),
            registry=r,
        )
        self.audit_write_failures = Counter(
            f"{PREFIX}audit_write_failures", "Audit events that could not be written to the audit file.",
            registry=r,
        )  # fmt: skip
        self.upstream_duration = Histogram(
            f"{PREFIX}upstream_duration_seconds", "Time until Airflow's response headers arrived (proxy).",
            buckets=_UPSTREAM_BUCKETS, registry=r,
        )  # fmt: skip
        self.jobs = Counter(
            f"{PREFIX}jobs", "Jobs that ended, by API and final state.", ("api", "state"), registry=r
        )
        self.jobs_active = Gauge(
            f"{PREFIX}jobs_active", "Jobs queued or running in this gateway's worker processes, by state.",
            ("state",), registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.rate_limited_total = Counter(
            f"{PREFIX}rate_limited", "Requests refused (429) by a rate limit or cap, by rule id.",
            ("limit",), registry=r,
        )  # fmt: skip
        # 1 while this worker's rate-limit counters are shared through Redis, 0 while it counts
        # in memory because Redis is unreachable ("min": 0 when any live worker fell back).
        self.rate_limit_shared = Gauge(
            f"{PREFIX}rate_limit_storage_shared",
            "1: rate-limit counters shared through Redis; 0: per worker in memory (Redis unreachable).",
            registry=r, multiprocess_mode="livemin",
        )  # fmt: skip
        # Labelled children, looked up once: .labels() takes a lock and builds a key per call,
        # which showed in the per-request profile.  Plain dicts: a racing first insert just
        # stores the same child twice.
        self._requests_by_key: dict[tuple[str, str, str], Any] = {}
        self._by_route: dict[str, tuple[Any, Any, Any]] = {}
        # "max": each worker sets 1; summing would count workers, not builds.
        self.build_info = Gauge(
            f"{PREFIX}build_info", "Always 1: gateway version, Airflow version and CLI dialect.",
            ("version", "airflow_version", "dialect"), registry=r, multiprocess_mode="max",
        )  # fmt: skip

    # --- hooks for features (bounded labels are enforced here) ---

    def degrade(self, exc: BaseException) -> None:
        """Stop recording in this process (the metrics files cannot be written); logged once."""
        if self.degraded is None:
            self.degraded = f"{type(exc).__name__}: {exc}"
            log.error("metrics degraded, no longer recorded by this worker: %s", self.degraded)

    def set_build_info(self, *, version: str, airflow_version: str, dialect: str) -> None:
        if self.degraded is None:
            try:
                self.build_info.labels(version, airflow_version, dialect).set(1)
            except _FILE_ERRORS as exc:
                self.degrade(exc)

    def audit_write_failed(self) -> None:
        """An audit event did not reach the audit file (it still went to stdout)."""
        if self.degraded is None:
            try:
                self.audit_write_failures.inc()
            except _FILE_ERRORS as exc:
                self.degrade(exc)

    def api_label(self, api: str | None) -> str:
        return api if api in self.apis else OTHER

    def observe_cli(self, api: str | None, outcome: str, seconds: float | None = None) -> None:
        label = self.api_label(api)
        self.cli_calls.labels(label, _bounded(outcome, CLI_OUTCOMES)).inc()
        if seconds is not None:
            self.cli_duration.labels(label).observe(seconds)

    def cli_fallback(self, reason: str) -> None:
        self.cli_fallbacks.labels(_bounded(reason, WARM_FALLBACK_REASONS)).inc()

    def warm_restart(self, reason: str) -> None:
        self.warm_restarts.labels(_bounded(reason, WARM_FALLBACK_REASONS)).inc()

    def warm_rss(self, rss_bytes: int) -> None:
        self.warm_rss_bytes.set(rss_bytes)

    def job_finished(self, api: str | None, state: str) -> None:
        self.jobs.labels(self.api_label(api), _bounded(state, JOB_STATES)).inc()

    def job_gauge(self, state: str, delta: int) -> None:
        """``state`` is "queued" or "running"."""
        self.jobs_active.labels(state).inc(delta)

    def rate_limited(self, limit: str) -> None:
        """A request was refused by the rule ``limit`` (ids come from the configuration only)."""
        self.rate_limited_total.labels(limit or OTHER).inc()

    def rate_limit_storage(self, shared: bool) -> None:
        self.rate_limit_shared.set(1 if shared else 0)

    def auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(_bounded(reason, AUTH_FAILURE_REASONS)).inc()

    def policy_denied(self, api: str | None) -> None:
        self.policy_denials.labels(self.api_label(api)).inc()

    def upstream_error(self, kind: str) -> None:
        self.upstream_errors.labels(_bounded(kind, UPSTREAM_ERROR_KINDS)).inc()

    def observe_upstream(self, seconds: float) -> None:
        self.upstream_duration.observe(seconds)

    # --- RequestObserver: everything below is derived from the finished audit record ---

    def request_started(self, record: AuditRecord) -> None:
        if self.degraded is None:
            try:
                self.in_flight.inc()
            except _FILE_ERRORS as exc:
                self.degrade(exc)

    def _route_children(self, route: str) -> tuple[Any, Any, Any]:
        children = self._by_route.get(route)
        if children is None:
            children = self._by_route[route] = (
                self.request_duration.labels(route),
                self.response_bytes.labels(route),
                self.request_bytes.labels(route),
            )
        return children

    def request_finished(self, record: AuditRecord) -> None:
        if self.degraded is None:
            try:
                self._record(record)
            except _FILE_ERRORS as exc:
                self.degrade(exc)

    def _record(self, record: AuditRecord) -> None:
        self.in_flight.dec()
        route = _bounded(record.route, ROUTES)
        key = (route, _bounded(record.method.upper(), METHODS), str(record.status or 500))
        counter = self._requests_by_key.get(key)
        if counter is None:  # bounded: routes x methods x status codes
            counter = self._requests_by_key[key] = self.requests.labels(*key)
        counter.inc()
        duration, sent, received = self._route_children(route)
        if record.duration_s is not None:
            duration.observe(record.duration_s)
        if record.bytes_out:  # each inc is a locked mmap write; most requests have no body
            sent.inc(record.bytes_out)
        if record.bytes_in:
            received.inc(record.bytes_in)
        if record.auth_failure_reason:
            self.auth_failure(record.auth_failure_reason)
        if record.decision == "deny":
            self.policy_denied(record.api)
        if record.cli_outcome:
            self.observe_cli(record.api, record.cli_outcome, record.cli_duration_s)
        if record.cli_runner:
            self.cli_runner_calls.labels(_bounded(record.cli_runner, CLI_RUNNERS)).inc()
        if record.upstream_error:
            self.upstream_error(record.upstream_error)
        if record.upstream_duration_s is not None:
            self.observe_upstream(record.upstream_duration_s)

    # --- exposition ---

    def collect_registry(self) -> CollectorRegistry:
        """What one scrape reads: all workers' files, or the private registry."""
        if self.registry is not None and not multiprocess_enabled():
            return self.registry
        from prometheus_client import multiprocess

        registry = CollectorRegistry(support_collectors_without_names=True)
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry


def create_metrics(apis: set[str] | frozenset[str]) -> Metrics:
    """Production wiring: multiprocess when the directory variable is set.

    When the directory cannot take this worker's files, the worker starts with metrics
    degraded (values kept in memory, never exposed) rather than not at all.
    """
    try:
        return Metrics(None if multiprocess_enabled() else CollectorRegistry(), apis=apis)
    except _FILE_ERRORS as exc:
        with _in_memory_values():
            metrics = Metrics(CollectorRegistry(), apis=apis)
        metrics.degrade(exc)
        return metrics


@contextmanager
def _in_memory_values() -> Iterator[None]:
    """Metric objects created meanwhile keep their values in memory, not in mmap files."""
    saved = values.ValueClass
    values.ValueClass = values.MutexValue
    try:
        yield
    finally:
        values.ValueClass = saved


class MetricsEndpoint:
    """``GET /metrics``: the exposition, optionally restricted.

    :param config: ``[metrics]``: ``token`` requires ``Authorization: Bearer <token>``;
        ``allow_from`` limits the client address (after the gateway's trusted proxies).
    :param registry: returns the registry to expose for one scrape.
    """

    def __init__(self, config: MetricsConfig, registry: Callable[[], CollectorRegistry]) -> None:
        self._token = config.token.value.encode() if config.token else None
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in config.allow_from)
        self._registry = registry

    def _allowed_address(self, address: str | None) -> bool:
        if not self._networks:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def __call__(self, environ: WSGIEnvironment, record: AuditRecord | None = None) -> Response:
        """One scrape; a valid scrape token is recorded on ``record`` (the request's audit record)."""
        request = Request(environ)
        if not self._allowed_address(request.remote_addr):
            raise Forbidden("Metrics are not available from this address")
        if self._token is not None:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not given:
                raise TokenRequired(auth_failure="missing_token")
            if not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), self._token):
                raise TokenRequired(auth_failure="bad_token")
            if record is not None:
                record.principal, record.auth_method = "metrics-scraper", "metrics-token"
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = b"" if request.method == "HEAD" else encoder(self._registry())
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})
