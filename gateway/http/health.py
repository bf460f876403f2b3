"""Health checks: ``/healthz`` (the process is alive) and ``/readyz`` (it can do its job).

Neither needs auth nor is proxied.  ``/healthz`` touches nothing outside the process.
``/readyz`` checks that Airflow answers on the proxy upstream (one GET, cached for a
second per process so load balancers cannot turn it into load on Airflow) and that the
Airflow CLI found at start-up is still there and executable; it never runs the CLI,
which costs seconds of CPU per call.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from gateway.cli.probe import AirflowInstall
    from gateway.http.proxy import ReverseProxy
    from gateway.observability.metrics import Metrics

_JSON = "application/json"


class Health:
    """Liveness and readiness answers.

    :param install: what the start-up probe found (the CLI's path and Airflow's version).
    :param proxy: the reverse proxy, or ``None`` when no upstream is configured.
    :param readiness_path: the upstream path probed by ``/readyz``.
    :param cache_s: how long one readiness result is reused.
    :param metrics: when given, ``/readyz`` says whether this worker's metrics are degraded
        (their directory is full or unwritable); still ready: requests are served.
    """

    def __init__(
        self,
        *,
        install: AirflowInstall,
        proxy: ReverseProxy | None = None,
        readiness_path: str = "/",
        cache_s: float = 1.0,
        metrics: Metrics | None = None,
        rate_limits: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        """:param rate_limits: how rate-limit counters are kept (``RateLimits.readiness``): shown,
        and degraded (still ready) while Redis is unreachable."""
        self.install = install
        self.rate_limits = rate_limits
        self.metrics = metrics
        self.proxy = proxy
        self.readiness_path = readiness_path
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._cached: tuple[float, int, dict[str, Any]] | None = None

    def live(self, environ: WSGIEnvironment) -> Response:
        return _json(200, {"status": "ok"})

    def ready(self, environ: WSGIEnvironment) -> Response:
        now = time.monotonic()
        with self._lock:
            if self._cached is None or now - self._cached[0] >= self.cache_s:
                status, body = self._check()
                self._cached = (time.monotonic(), status, body)
            _, status, body = self._cached
        return _json(status, body)

    def _check(self) -> tuple[int, dict[str, Any]]:
        checks: dict[str, dict[str, Any]] = {}
        executable = shutil.which(self.install.executable) or self.install.executable
        cli_ok = os.path.isfile(executable) and os.access(executable, os.X_OK)
        checks["cli"] = {"ok": cli_ok, "airflow_version": self.install.version}
        if self.proxy is None:
            checks["upstream"] = {"ok": True, "detail": "no upstream configured"}
        else:
            ok, detail = self.proxy.probe(self.readiness_path)
            checks["upstream"] = {"ok": ok, "detail": detail}
        ready = all(check["ok"] for check in checks.values())
        status = "ok" if ready else "unavailable"
        if self.metrics is not None and self.metrics.degraded is not None:
            # Degraded, not unready: taking the instance out of rotation would stop the
            # proxy too, for the want of numbers.
            checks["metrics"] = {"ok": True, "degraded": True, "detail": self.metrics.degraded}
            status = "degraded" if ready else status
        limits = self.rate_limits() if self.rate_limits is not None else None
        if limits is not None:
            checks["rate_limits"] = limits
            status = "degraded" if ready and limits.get("degraded") else status
        return (200 if ready else 503), {"status": status, "checks": checks}


def _json(status: int, body: dict[str, Any]) -> Response:
    response = Response(json.dumps(body), status=status, mimetype=_JSON)
    response.headers["Cache-Control"] = "no-store"
    return response
