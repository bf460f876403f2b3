"""The sign-on routes: ``GET /admin/rest_api/login``, ``GET .../oidc/callback``, ``POST .../logout``.

Thin handlers over :class:`gateway.sessions.signon.SignOn`.  A failure is never a traceback:
a browser gets a small HTML page naming the problem (with a link to sign in again), any
other client the JSON envelope; the status is the :class:`~gateway.identity.oidc.OidcError`'s
(400 a used or foreign state, 401 a refusal, 502 a misbehaving provider, 503 an unreachable one).
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from gateway.core.errors import NotFound, Refused
from gateway.identity.oidc import OidcError
from gateway.request.scope import RequestScope
from gateway.sessions.signon import CSRF_FIELD, LOGIN_PATH, PAGE_PATH, SignOn, wants_html
from gateway.web.page import SECURITY_HEADERS

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

MAX_LOGOUT_FORM_BYTES = 4096


def _redirect(location: str, cookies: Sequence[str] = ()) -> Response:
    headers = Headers({"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    for cookie in cookies:
        headers.add("Set-Cookie", cookie)
    return Response("", status=303, headers=headers)


def failure(environ: WSGIEnvironment, error: OidcError, scope: RequestScope) -> Response:
    """The answer to a failed sign-on step: an HTML page for a browser, else the envelope."""
    scope.audit.error = type(error).__name__
    if not wants_html(environ):
        raise Refused(error.message, error.status, extra={"error": "sign_on"})
    text = html.escape(error.message)
    title = "Sign-in unavailable" if error.status >= 500 else "Sign-in failed"
    body = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title} - airflow-gateway</title></head><body>"
        f'<h1>{title}</h1><p id="problem">{text}</p>'
        f'<p>HTTP {error.status}. <a href="{LOGIN_PATH}">Sign in again</a> · '
        f'<a href="{PAGE_PATH}">the gateway\'s page</a></p></body></html>\n'
    )
    return Response(body, status=error.status, mimetype="text/html", headers=SECURITY_HEADERS)


class SignOnEndpoints:
    """The three sign-on handlers; every one answers 404 while sign-on is off."""

    def __init__(self, signon: SignOn | None) -> None:
        self.signon = signon

    def _on(self) -> SignOn:
        if self.signon is None:
            raise NotFound("Sign-on is not configured (oidc.issuer)")
        return self.signon

    def login(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        signon = self._on()
        query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING", "")), max_num_fields=20)
        try:
            location, cookie = signon.begin(environ, next(iter(query.get("next", [])), None))
        except OidcError as exc:
            return failure(environ, exc, scope)
        return _redirect(location, [cookie])

    def callback(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        signon = self._on()
        pairs = urllib.parse.parse_qsl(str(environ.get("QUERY_STRING", "")), max_num_fields=20)
        query: dict[str, str] = {}
        for key, value in pairs:
            query.setdefault(key, value)  # the first value of each name
        try:
            session_id, record, next_path = signon.finish(environ, query)
        except OidcError as exc:
            return failure(environ, exc, scope)
        scope.authenticated(record.as_principal())  # the audit event names who signed in
        return _redirect(next_path, signon.session_cookies(environ, session_id))

    def logout(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        signon = self._on()
        sent = environ.get("HTTP_X_CSRF_TOKEN")
        if sent is None:
            request = Request(environ)
            request.max_content_length = MAX_LOGOUT_FORM_BYTES
            request.max_form_parts = 10
            try:
                sent = request.form.get(CSRF_FIELD)
            except Exception:  # noqa: BLE001 - a malformed or oversized form carries no token
                sent = None
        try:
            record, location = signon.logout(environ, sent)
        except OidcError as exc:
            return failure(environ, exc, scope)
        if record is not None:
            scope.authenticated(record.as_principal())
        return _redirect(location, [signon.expired_cookie(environ)])
