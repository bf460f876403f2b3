"""gunicorn settings for airflow-gateway, driven by the environment.

Checked in CI with ``gunicorn -c gunicorn.conf.py --check-config`` because gunicorn
silently ignores misspelt settings.
"""

from __future__ import annotations

import os
import sys

# Fail fast with a readable message, before any worker forks.
from gateway.config import ConfigError, load_config

try:
    _gateway_config = load_config(os.environ)
except ConfigError as _exc:
    sys.stderr.write(f"airflow-gateway: configuration error: {_exc}\n")
    sys.exit(2)

wsgi_app = "gateway.app:create_app()"
bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8000")
# Threads, not processes, carry concurrency: a CLI call blocks its thread for seconds
# while the others keep serving (and proxying).  There are always at least 4 more
# threads than CLI calls allowed at once, so CLI calls can never starve the proxy.
worker_class = "gthread"
workers = int(os.environ.get("GATEWAY_WORKERS", "2"))
threads = max(int(os.environ.get("GATEWAY_THREADS", "8")), _gateway_config.cli.max_concurrent + 4)
# Longer than the longest CLI timeout and the proxy's read timeout, so gunicorn never
# kills a worker mid-call (gthread heartbeats from its main thread, but keep it safe).
_longest_s = max(
    _gateway_config.cli.default_timeout_s, *_gateway_config.cli.timeouts_s.values(), _gateway_config.proxy.read_timeout_s
)
timeout = int(_longest_s + 30)
# On SIGTERM: stop accepting, let in-flight requests finish for this long, then exit.
# Match it to the orchestrator's stop grace period (Kubernetes: 30 s by default).
graceful_timeout = int(os.environ.get("GATEWAY_GRACEFUL_TIMEOUT", "30"))
# Idle client keep-alive; keep it above the idle timeout of a load balancer in front.
keepalive = int(os.environ.get("GATEWAY_KEEPALIVE", "5"))
# Recycling is off by default: a restart waits for streams in flight (up to graceful_timeout).
max_requests = int(os.environ.get("GATEWAY_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GATEWAY_MAX_REQUESTS_JITTER", "0"))
# Airflow UI URLs can carry long queries; nginx's default buffer is 8 KiB too.
limit_request_line = 8190
accesslog = os.environ.get("GATEWAY_ACCESS_LOG", "-")
errorlog = "-"
control_socket_disable = True
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# The original plugin's token header has underscores (rest_api_plugin_http_token), which
# gunicorn >= 22 drops by default.  Rather than header_map = "dangerous" (every
# underscore header merged with its dash twin, e.g. X_Forwarded_For into X-Forwarded-For),
# we let exactly that one header through.  forwarded_allow_ips = "*" only gates
# forwarder_headers and secure_scheme_headers; the latter is emptied so no client can
# set the URL scheme, and X-Forwarded-* trust stays with the gateway's own
# trusted_proxy_count.
forwarder_headers = _gateway_config.plugin_auth.header_name.upper()
forwarded_allow_ips = "*"
secure_scheme_headers: dict[str, str] = {}
