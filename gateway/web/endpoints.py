"""The gateway's own endpoints: one named handler, ``on_<route>``, per route of the table.

The routes, their paths and who may call them are in :mod:`gateway.request.routes`; each
handler takes the request's environ and scope (:data:`gateway.request.routing.Handler`)
and returns a response or raises a :class:`~gateway.core.errors.GatewayError`.
Authentication has run before any of them (:mod:`gateway.request.authentication`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from werkzeug.wrappers import Response

from gateway.cli.interpreter import Interpreter
from gateway.cli.spec import Api
from gateway.core.errors import NotFound
from gateway.http.health import Health
from gateway.jobs.endpoints import JobEndpoints
from gateway.observability.metrics import MetricsEndpoint
from gateway.request.lifecycle import error_response
from gateway.request.routes import RouteTable
from gateway.request.routing import Handler
from gateway.request.scope import RequestScope
from gateway.sessions.signon import SignOn
from gateway.web.api import ApiEndpoint
from gateway.web.login import SignOnEndpoints
from gateway.web.openapi import Security, build_document
from gateway.web.page import page_response, personal_page, render_page, static_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


class Endpoints:
    """The handlers of the gateway's routes.

    :param api: the CLI API.
    :param jobs: the job routes.
    :param health: ``/healthz`` and ``/readyz``.
    :param metrics: ``/metrics``, or None when metrics are disabled (404).
    :param jwks: the identity assertions' public keys, or None when assertions are off (404).
    :param interpreter: with ``catalogue``, ``versions``, ``token_header`` and ``security``:
        what the page and the OpenAPI document show; both are rendered once, here.
    :param signon: browser sign-on, or None while it is off (its routes answer 404).
    """

    def __init__(
        self,
        *,
        api: ApiEndpoint,
        jobs: JobEndpoints,
        health: Health,
        metrics: MetricsEndpoint | None,
        interpreter: Interpreter,
        catalogue: Mapping[str, Api],
        versions: Mapping[str, str],
        token_header: str,
        security: Security,
        signon: SignOn | None = None,
        jwks: Mapping[str, object] | None = None,
    ) -> None:
        self.api = api
        self.jobs = jobs
        self.health = health
        self.metrics = metrics
        self.jwks_json = None if jwks is None else json.dumps(jwks)
        self.signon = signon
        self.signon_routes = SignOnEndpoints(signon)
        self.page_html = render_page(
            interpreter, catalogue, versions=versions, token_header=token_header, signon=signon is not None
        )
        self.openapi_json = json.dumps(
            build_document(interpreter, catalogue, token_header=token_header, security=security)
        )

    def handlers(self, table: RouteTable) -> dict[str, Handler]:
        """The handler of each route of ``table``: its ``on_<name>`` method."""
        return {name: getattr(self, f"on_{name}") for name in table.routes}

    def on_api(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        return self.api(environ, scope)

    def on_page(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        if self.signon is None:
            return page_response(self.page_html)
        record = self.signon.session(environ)
        if record is not None:
            scope.authenticated(record.as_principal())
        text = personal_page(
            self.page_html,
            principal=None if record is None else record.principal,
            csrf_token=None if record is None else record.csrf_token,
        )
        issuer = urlsplit(self.signon.client.issuer)
        return page_response(text, form_origins=[f"{issuer.scheme}://{issuer.netloc}"])

    def on_login(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        return self.signon_routes.login(environ, scope)

    def on_oidc_callback(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        return self.signon_routes.callback(environ, scope)

    def on_logout(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        return self.signon_routes.logout(environ, scope)

    def on_static(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        response = static_response(scope.route_values["name"])
        if response is None:
            raise NotFound()
        return response

    def on_openapi(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        return Response(self.openapi_json, mimetype="application/json", headers={"Cache-Control": "no-cache"})

    def on_jobs(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        return self.jobs(environ, scope)

    def on_healthz(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        return self.health.live(environ)

    def on_readyz(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        return self.health.ready(environ)

    def on_metrics(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        if self.metrics is None:
            raise NotFound("Metrics are disabled")
        return self.metrics(environ, scope.audit)

    def on_jwks(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        if self.jwks_json is None:
            raise NotFound("Identity assertions are off (assertion.enabled)")
        # Airflow's side refetches on an unknown key id, so a short cache life is enough.
        return Response(self.jwks_json, mimetype="application/json", headers={"Cache-Control": "max-age=60"})


def not_proxied(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """What a path the gateway does not own gets when no Airflow upstream is configured."""
    error = NotFound("Not found (no Airflow upstream is configured for other paths)")
    return error_response(error, environ)(environ, start_response)
