"""gunicorn settings for airflow-gateway, from the gateway's own configuration.

The ``[server]`` settings (``gateway/config/settings.py``; also ``AIRFLOW_GATEWAY__SERVER__*`` and
the older ``GATEWAY_*`` variables) are loaded and validated with every other setting.

Shipped inside the package so an installed gateway needs no checkout:
``gunicorn -c python:gateway.entry.gunicorn_conf`` (what ``airflow-gateway serve`` runs).
The repository's ``gunicorn.conf.py`` re-exports this module for ``gunicorn -c
gunicorn.conf.py``. Checked in CI with ``--check-config`` because gunicorn silently
ignores misspelt settings.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# Fail fast with a readable message, before any worker forks.  Workers are built from what
# this master checked (gateway/entry/reloading.py), again on each SIGHUP.
from gateway.config.loader import ConfigError, GatewayConfig
from gateway.entry import reloading
from gateway.http import retirement
from gateway.observability.logging import gunicorn_logconfig
from gateway.observability.multiprocess_dir import MultiprocError, ensure_env, wipe

try:
    _gateway_config = reloading.start(os.environ).config
except ConfigError as _exc:
    sys.stderr.write(f"airflow-gateway: configuration error: {_exc}\n")
    sys.exit(2)

# Prometheus multiprocess mode (see gateway/observability/multiprocess_dir.py).  Launchers set
# PROMETHEUS_MULTIPROC_DIR before Python starts; for a bare
# `gunicorn -c python:gateway.entry.gunicorn_conf` it is set here, which is still early enough:
# workers import the app (and prometheus_client) after the fork, and nothing in this master
# has imported prometheus_client.  If something had, refuse.
try:
    _multiproc_dir = ensure_env(os.environ, _gateway_config.gateway.state_dir / "prometheus-multiproc")
except MultiprocError as _exc:
    sys.stderr.write(f"airflow-gateway: {_exc}\n")
    sys.exit(2)


_server = _gateway_config.server  # [server], or the older GATEWAY_* variables (gateway/config/settings.py)
wsgi_app = "gateway.entry.reloading:application()"
bind = _server.bind
# Threads, not processes, carry concurrency: a CLI call blocks its thread while the
# others keep serving (and proxying).  CLI calls can hold at most cli.max_concurrent
# (running) + cli.max_waiting (queued) threads; any further call is answered 503 at once
# (gateway.execution.subprocess_runner.Admission).  Job output streams (SSE) hold a thread each, at most
# jobs.max_streams of them (gateway/jobs/streams.py).  There are always at least 4 more
# threads than both together, so neither CLI load nor watchers can starve the proxy.
# The worker is gunicorn's gthread, except that a thread that has just answered on a
# keep-alive connection waits up to server.keepalive_linger_ms for its next request
# (only while no other connection waits for a thread; 0 is plain gthread): see
# gateway/http/worker.py.  A request head must arrive within server.head_timeout seconds; the
# worker's event loop reads heads, so slow clients hold no thread meanwhile (0: stock gthread).
worker_class = "gateway.http.worker.KeepAliveThreadWorker"
workers = _server.workers


def _derived(config: GatewayConfig) -> tuple[int, int]:
    """gunicorn's ``threads`` and ``timeout``, computed from the gateway's settings."""
    cli, jobs = config.cli, config.jobs
    threads = max(config.server.threads, cli.max_concurrent + cli.max_waiting + jobs.max_streams + 4)
    # Longer than the longest CLI timeout and the proxy's read timeout, so gunicorn never
    # kills a worker mid-call (gthread heartbeats from its main thread, but keep it safe).
    longest_s = max(config.cli.default_timeout, *config.cli.timeouts.values(), config.proxy.read_timeout)
    return threads, int(longest_s + 30)


threads, timeout = _derived(_gateway_config)
graceful_timeout = _server.graceful_timeout
keepalive = _server.keepalive
# Recycling is off by default: a restart waits for streams in flight (up to graceful_timeout).
max_requests = _server.max_requests
max_requests_jitter = _server.max_requests_jitter
# Airflow UI URLs can carry long queries; nginx's default buffer is 8 KiB too.
limit_request_line = 8190
# The audit event (one JSON line per request, redacted) replaces the access log; set
# server.access_log = "-" to have gunicorn's too (rendered as JSON, query strings redacted).
accesslog = _server.access_log
logger_class = "gateway.observability.logging.GunicornLogger"
errorlog = "-"
logconfig_dict = gunicorn_logconfig(_gateway_config)
control_socket_disable = True
if os.path.isdir("/dev/shm"):  # noqa: S108 - gunicorn's heartbeat files, kept off disk
    worker_tmp_dir = "/dev/shm"  # noqa: S108

# The original plugin's token header has underscores (rest_api_plugin_http_token), which
# gunicorn >= 22 drops by default.  Rather than header_map = "dangerous" (every
# underscore header merged with its dash twin, e.g. X_Forwarded_For into X-Forwarded-For),
# we let exactly that one header through.  forwarded_allow_ips = "*" only gates
# forwarder_headers and secure_scheme_headers; the latter is emptied so no client can
# set the URL scheme, and X-Forwarded-* trust stays with the gateway's own
# trusted_proxy_count.
forwarder_headers = _gateway_config.rest_api_plugin.rest_api_plugin_http_token_header_name.upper()
forwarded_allow_ips = "*"
secure_scheme_headers: dict[str, str] = {}


def on_starting(server: Any) -> None:
    """Once per master start (not on reload): drop metric files of earlier runs."""
    removed = wipe(_multiproc_dir, keep_pid=os.getpid())
    server.log.info("metrics directory %s ready (%d stale files removed)", _multiproc_dir, removed)


def when_ready(server: Any) -> None:
    server.log.info("gateway ready: bind=%s workers=%s", ",".join(server.cfg.bind), server.cfg.workers)
    # Workers retired by a reload wait for their jobs (gateway/http/retirement.py).
    retirement.adapt_arbiter(server)


def post_fork(server: Any, worker: Any) -> None:
    retirement.after_fork(server)


def on_reload(server: Any) -> None:
    """SIGHUP, before gunicorn starts the new workers: check the configuration again."""
    reloading.reload(os.environ, server.log, _derived)
    retirement.during_reload(server)


def post_worker_init(worker: Any) -> None:
    """In each worker, before it serves: how long a thread waits on a kept-alive connection,
    and how long a request head may take to arrive."""
    worker.linger_s = _server.keepalive_linger_ms / 1000
    worker.head_timeout_s = _server.head_timeout


def child_exit(server: Any, worker: Any) -> None:
    """A worker died: its live gauges (in-flight requests) must stop counting."""
    from prometheus_client import multiprocess  # imported here, never before the fork

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
