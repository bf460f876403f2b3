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
    if _gateway_config.policy.dir is not None:  # policy errors (file:line) before any worker forks
        from gateway.cli.apis import CATALOGUE
        from gateway.policy.loader import load_policies

        load_policies(_gateway_config.policy.dir, CATALOGUE)
except ConfigError as _exc:
    sys.stderr.write(f"airflow-gateway: configuration error: {_exc}\n")
    sys.exit(2)

wsgi_app = "gateway.app:create_app()"
bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8000")
# Threads, not processes, carry concurrency: a CLI call blocks its thread for seconds
# while the others keep serving (and proxying).
worker_class = "gthread"
workers = int(os.environ.get("GATEWAY_WORKERS", "2"))
threads = int(os.environ.get("GATEWAY_THREADS", "8"))
# Longer than the longest CLI timeout, so gunicorn never kills a worker mid-call.
timeout = int(max(_gateway_config.cli.default_timeout_s, *_gateway_config.cli.timeouts_s.values(), 0) + 30)
graceful_timeout = int(os.environ.get("GATEWAY_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
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
