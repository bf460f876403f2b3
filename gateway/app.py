"""The WSGI application: the only place where the gateway's layers are composed.

Request flow: request id and timing -> routing -> (own endpoints: auth -> policy ->
handler) or (anything else: the reverse proxy).  Errors always render as the envelope.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as WzMethodNotAllowed
from werkzeug.exceptions import NotFound as WzNotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from gateway import __version__
from gateway.api import ApiEndpoint
from gateway.auth import PluginTokenAuth
from gateway.cli.apis import CATALOGUE
from gateway.cli.daemons import DaemonManager
from gateway.cli.dialects import DIALECTS
from gateway.cli.interpreter import Interpreter
from gateway.cli.probe import AirflowInstall, dialect_for, probe, select_dialect
from gateway.cli.runner import SubprocessRunner, cli_environment
from gateway.config import GatewayConfig, load_config_from_process
from gateway.errors import GatewayError, InternalError, MethodNotAllowed, NotFound
from gateway.forwarded import trust_proxies
from gateway.health import Health
from gateway.proxy import ReverseProxy

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("gateway")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{8,128}")


@dataclass(slots=True)
class AuditRecord:
    """Filled in by the layers as a request passes; emitted when the response closes."""

    request_id: str
    method: str
    path: str
    remote_addr: str | None
    route: str = "proxy"
    api: str | None = None
    argv: tuple[str, ...] | None = None
    principal: str | None = None
    auth_method: str | None = None
    status: int | None = None


def _request_id(environ: WSGIEnvironment) -> str:
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    return incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


class GatewayApp:
    """The gateway as a WSGI callable; build it with :func:`create_app`."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        api: ApiEndpoint,
        auth: PluginTokenAuth,
        install: AirflowInstall,
        proxy: WSGIApplication | None = None,
        health: Health | None = None,
    ) -> None:
        self.config = config
        self.api = api
        self.auth = auth
        self.install = install
        self.proxy = proxy
        self.health = health or Health(install=install)
        # ProxyFix first: every later layer (audit, policy, proxy) sees the trusted client.
        self._entry = trust_proxies(self._dispatch, config.trusted_proxy_count)
        self.url_map = Map(
            [
                Rule("/admin/rest_api/api", endpoint="api", methods=["GET", "POST"]),
                Rule("/healthz", endpoint="healthz", methods=["GET", "HEAD"]),
                Rule("/readyz", endpoint="readyz", methods=["GET", "HEAD"]),
            ],
            strict_slashes=False,
        )
        self.handlers: dict[str, Callable[[WSGIEnvironment], Response]] = {
            "api": self._api,
            "healthz": self.health.live,
            "readyz": self.health.ready,
        }

    def _api(self, environ: WSGIEnvironment) -> Response:
        principal = self.auth.authenticate(environ)
        record: AuditRecord = environ["gateway.audit"]
        record.principal, record.auth_method = principal.name, principal.method
        return self.api(environ, principal)

    def _not_proxied(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        error = NotFound("Not found (no Airflow upstream is configured for other paths)")
        return error(environ, start_response)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._entry(environ, start_response)

    def _dispatch(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["gateway.call_time"] = time.time()
        request_id = environ["gateway.request_id"] = _request_id(environ)
        record = AuditRecord(
            request_id=request_id,
            method=environ.get("REQUEST_METHOD", "GET"),
            path=environ.get("PATH_INFO", "/"),
            remote_addr=environ.get("REMOTE_ADDR"),
        )
        environ["gateway.audit"] = record
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, _ = adapter.match()
        except WzNotFound:
            target = self.proxy or self._not_proxied
            return target(environ, start_response)
        except WzMethodNotAllowed:
            return MethodNotAllowed()(environ, start_response)
        except HTTPException as exc:  # e.g. a redirect
            return exc(environ, start_response)
        record.route = endpoint
        try:
            response = self.handlers[endpoint](environ)
        except GatewayError as exc:
            response = exc.get_response(environ)  # type: ignore[assignment]
        except Exception:
            # No locals, no traceback to the client: the log has the request id.
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
    env = cli_environment(
        os.environ, airflow_home=config.airflow.home, executable=config.airflow.executable, extra=config.airflow.env
    )
    install = build_install(config, env)
    dialect_name = dialect_for(install.version) if config.airflow.dialect == "auto" else config.airflow.dialect
    dialect = select_dialect(dialect_name, DIALECTS)
    work_dir = config.state_dir / "work"
    for path in (config.state_dir, work_dir, config.cli.files_dir):
        path.mkdir(parents=True, exist_ok=True)
    interpreter = Interpreter(
        dialect,
        CATALOGUE,
        executable=install.executable,
        files_dir=config.cli.files_dir,
        distributions=install.distributions,
    )
    runner = SubprocessRunner(
        env=env, cwd=work_dir, max_output_bytes=config.cli.max_output_bytes, max_concurrent=config.cli.max_concurrent
    )
    daemons = DaemonManager(config.daemon_dir, env=env, cwd=work_dir)
    auth = PluginTokenAuth(config.plugin_auth)
    if not auth.enabled:
        log.warning(
            "NO TOKEN CONFIGURED: the CLI API is open to anyone who can reach this port "
            "(set rest_api_plugin.rest_api_plugin_expected_http_token)"
        )
    api = ApiEndpoint(config, interpreter=interpreter, runner=runner, daemons=daemons, install=install)
    log.info(
        "gateway %s ready: Airflow %s, dialect %s, %d APIs", __version__, install.version, dialect.name, len(CATALOGUE)
    )
    proxy = None
    if config.proxy.upstream is not None:
        proxy = ReverseProxy.from_config(config.proxy, strip_environ_keys=auth.credential_keys())
    health = Health(install=install, proxy=proxy, readiness_path=config.proxy.readiness_path)
    return GatewayApp(config, api=api, auth=auth, install=install, proxy=proxy, health=health)


def describe_install(app: Any) -> dict[str, str]:
    """Version facts for the page, health checks and metrics."""
    return {"gateway": __version__, "airflow": app.install.version, "dialect": app.api.interpreter.dialect.name}
