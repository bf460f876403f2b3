"""``python -m gateway.entry.healthcheck``: exit 0 when the local gateway answers ``/healthz``.

The container image's HEALTHCHECK. It follows the ``server.bind`` setting, read as gunicorn
reads it (the file, ``AIRFLOW_GATEWAY__SERVER__BIND`` or ``GATEWAY_BIND``; a wildcard host is
probed on 127.0.0.1), so the probe stays right whatever port the gateway is given; no curl needed.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping

from gateway.config.loader import ConfigError, load_config

WILDCARDS = {"", "0.0.0.0", "::", "[::]"}  # noqa: S104 - compared against, never bound


def probe_url(bind: str) -> str:
    """The /healthz URL for a gunicorn ``host:port`` bind (the first, if several)."""
    host, _, port = bind.split(",")[0].strip().rpartition(":")
    if host in WILDCARDS:
        host = "127.0.0.1"
    return f"http://{host}:{port}/healthz"


def configured_bind(environ: Mapping[str, str]) -> str:
    """``server.bind`` from the same sources gunicorn_conf reads."""
    return load_config(environ).server.bind


def main() -> int:
    try:
        url = probe_url(configured_bind(os.environ))
    except ConfigError as exc:
        print(f"healthcheck: configuration error: {exc}", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=3) as reply:  # noqa: S310 - http to ourselves
            return 0 if reply.status == 200 else 1
    except OSError as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
