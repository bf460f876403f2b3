"""The WSGI application: the only place where the gateway's layers are composed.

Request flow: request id and timing -> routing -> (own endpoints: auth -> policy ->
handler) or (anything else: the reverse proxy).  Errors always render as the envelope.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
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
from gateway.auth import PluginTokenAuth, Principal
from gateway.cli.apis import CATALOGUE
from gateway.cli.daemons import DaemonManager
from gateway.cli.dialects import DIALECTS
from gateway.cli.interpreter import Interpreter, PlanError
from gateway.cli.probe import AirflowInstall, airflow_python, dialect_for, probe, select_dialect
from gateway.cli.runner import SubprocessRunner, cli_environment
from gateway.config import GatewayConfig, load_config_from_process
from gateway.deploy import DagDeployer, DagList
from gateway.envelope import Envelope
from gateway.errors import GatewayError, InternalError, MethodNotAllowed, NotFound
from gateway.openapi import build_document
from gateway.page import page_response, render_page, static_response

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
        dags: DagList | None = None,
    ) -> None:
        self.config = config
        self.api = api
        self.auth = auth
        self.install = install
        self.proxy = proxy
        self.dags = dags
        self.url_map = Map(
            [
                Rule("/admin/rest_api/api", endpoint="api", methods=["GET", "POST"]),
                Rule("/admin/rest_api/api/<api_name>", endpoint="api", methods=["GET", "POST"]),
                Rule("/admin/rest_api/", endpoint="page", methods=["GET", "HEAD"]),
                Rule("/admin/rest_api/static/<name>", endpoint="static", methods=["GET", "HEAD"]),
                Rule("/admin/rest_api/openapi.json", endpoint="openapi", methods=["GET", "HEAD"]),
                Rule("/admin/rest_api/dags", endpoint="dags", methods=["GET"]),
                Rule("/healthz", endpoint="healthz", methods=["GET", "HEAD"]),
            ],
            strict_slashes=False,
        )
        self.handlers: dict[str, Callable[[WSGIEnvironment], Response]] = {
            "api": self._api,
            "page": self._page,
            "static": self._static,
            "openapi": self._openapi,
            "dags": self._dags,
            "healthz": self._healthz,
        }
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
        principal = self.auth.authenticate(environ)
        record: AuditRecord = environ["gateway.audit"]
        record.principal, record.auth_method = principal.name, principal.method
        return principal

    def _api(self, environ: WSGIEnvironment) -> Response:
        principal = self._authenticate(environ)
        return self.api(environ, principal, environ["gateway.route_values"].get("api_name"))

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

    def _healthz(self, environ: WSGIEnvironment) -> Response:
        return Response('{"status": "ok"}', mimetype="application/json")

    def _not_proxied(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        error = NotFound("Not found (no Airflow upstream is configured for other paths)")
        return error(environ, start_response)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
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
            endpoint, values = adapter.match()
        except WzNotFound:
            target = self.proxy or self._not_proxied
            return target(environ, start_response)
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
    dags = DagList(interpreter, runner, config.deploy.dag_list_ttl_s, api.timeout_for("list_dags"))
    deployer = DagDeployer(
        config,
        interpreter=interpreter,
        runner=runner,
        run_plan=api.run_plan,
        timeout_for=api.timeout_for,
        work_dir=work_dir / "uploads",
        python=airflow_python(install.executable) or sys.executable,
        dags=dags,
    )
    api.register_builtin("deploy_dag", deployer.deploy)
    api.register_builtin("refresh_dag", deployer.refresh_dag)
    log.info(
        "gateway %s ready: Airflow %s, dialect %s, %d APIs", __version__, install.version, dialect.name, len(CATALOGUE)
    )
    return GatewayApp(config, api=api, auth=auth, install=install, dags=dags)


def describe_install(app: Any) -> dict[str, str]:
    """Version facts for the page, health checks and metrics."""
    return {"gateway": __version__, "airflow": app.install.version, "dialect": app.api.interpreter.dialect.name}
