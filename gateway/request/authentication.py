"""The authentication layer: the one place where a credential becomes a principal.

It runs after routing, so it knows the route, and before anything answers the request:

* a route declared :attr:`~gateway.request.routes.Access.PUBLIC` reads no credential and
  gets no principal;
* a route needing :attr:`~gateway.request.routes.Access.CREDENTIALS` gets the principal of
  the first source that recognises a credential, or else ``missing(environ, own=True)`` (anonymous
  when no credential is configured, otherwise a 401/403);
* a proxied path (no route) likewise, with ``own=False``: a request without gateway
  credentials is anonymous there, Airflow's own auth applies behind the gateway, and the
  path policy still runs (:class:`gateway.policy.enforce.ProxyGuard`).

The principal is recorded on the request scope and its audit record; policy enforcement
and the handlers read it from there.  Another way to sign in (a browser session cookie) is
one more :class:`PrincipalSource` in the list given to :class:`Authentication`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from gateway.identity.principal import Principal
from gateway.request.routes import Access
from gateway.request.scope import RequestScope

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class PrincipalSource(Protocol):
    """One kind of credential: its principal, or None when the request carries none of it.

    :param own: True on the gateway's own routes, False on proxied paths (where a source
        must leave Airflow's own credentials alone: ``Authorization``, Airflow's cookies).
    :raises GatewayError: a credential of this kind is present but not valid (401/403/503).
    """

    def __call__(self, environ: WSGIEnvironment, *, own: bool) -> Principal | None: ...


class MissingCredential(Protocol):
    """The answer when no source recognised a credential: a principal (anonymous) or an error.

    It gets the request, so it can answer a browser differently (sign-on sends it to log in).

    :raises GatewayError: credentials are required here (or a redirect to the login).
    """

    def __call__(self, environ: WSGIEnvironment, *, own: bool) -> Principal: ...


class Authentication:
    """WSGI layer between routing and dispatch: sets the request's principal.

    :param app: the dispatch layer.
    :param sources: tried in order; the first principal wins.
    :param missing: decides when no source recognised a credential.

    ``Authentication(dispatch, [authenticator.identify], authenticator.missing)``
    """

    def __init__(
        self, app: WSGIApplication, sources: Iterable[PrincipalSource], missing: MissingCredential
    ) -> None:
        self.app = app
        self.sources: Sequence[PrincipalSource] = tuple(sources)
        self.missing = missing

    def principal(self, environ: WSGIEnvironment, *, own: bool) -> Principal:
        """The request's principal, from the first source that recognises a credential.

        :raises GatewayError: an invalid credential, or none where one is required.
        """
        for source in self.sources:
            principal = source(environ, own=own)
            if principal is not None:
                return principal
        return self.missing(environ, own=own)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        scope = RequestScope.of(environ)
        route = scope.route
        if route is None:
            scope.authenticated(self.principal(environ, own=False))
        elif route.access is Access.CREDENTIALS:
            scope.authenticated(self.principal(environ, own=True))
        return self.app(environ, start_response)
