"""The gateway's own routes: the one list of the paths it answers itself.

Everything else is proxied to Airflow.  The werkzeug URL map and the fast path in front of
it (the first path segments the gateway owns) are both derived from :data:`ROUTES`, and each
route says whether it needs gateway credentials (:class:`Access`).  A new endpoint is one
:class:`Route` here plus its handler (``on_<name>``, :mod:`gateway.web.endpoints`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Map, Rule

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


class Access(enum.Enum):
    """Who may call a route, as the authentication layer sees it."""

    #: Gateway credentials as configured (plugin token, named tokens, JWT...); the handler
    #: gets the principal.  Anonymous only when no credential is configured or
    #: ``auth.allow_anonymous`` is on.
    CREDENTIALS = "credentials"
    #: No gateway credential is read, no principal is set: health checks, the page and its
    #: files, the OpenAPI document, and ``/metrics`` (which checks its own scrape token).
    PUBLIC = "public"


@dataclass(frozen=True, slots=True)
class Route:
    """One of the gateway's endpoints.

    :param name: the endpoint's name: its handler is ``on_<name>``, its metrics label ``name``.
    :param access: whether it needs gateway credentials.
    :param rules: (werkzeug rule, methods separated by spaces) pairs; GET allows HEAD.
    """

    name: str
    access: Access
    rules: tuple[tuple[str, str], ...]


def _route(name: str, access: Access, *rules: tuple[str, str]) -> Route:
    return Route(name, access, rules)


_API = "/admin/rest_api"
ROUTES: tuple[Route, ...] = (
    _route("api", Access.CREDENTIALS, (f"{_API}/api", "GET POST"), (f"{_API}/api/<api_name>", "GET POST")),
    _route("page", Access.PUBLIC, (f"{_API}/", "GET HEAD")),
    _route("static", Access.PUBLIC, (f"{_API}/static/<name>", "GET HEAD")),
    _route("openapi", Access.PUBLIC, (f"{_API}/openapi.json", "GET HEAD")),
    _route(
        "jobs",
        Access.CREDENTIALS,
        (f"{_API}/jobs", "GET"),
        (f"{_API}/jobs/<job_id>", "GET DELETE"),
        (f"{_API}/jobs/<job_id>/<any(output):part>", "GET"),
    ),
    # Browser sign-on (docs/sso.md): public, each checks what it needs (state, session, CSRF).
    _route("login", Access.PUBLIC, (f"{_API}/login", "GET HEAD")),
    _route("oidc_callback", Access.PUBLIC, (f"{_API}/oidc/callback", "GET")),
    _route("logout", Access.PUBLIC, (f"{_API}/logout", "POST")),
    _route("healthz", Access.PUBLIC, ("/healthz", "GET HEAD")),
    # Always routed, so /metrics is never proxied to Airflow, even when disabled.
    _route("metrics", Access.PUBLIC, ("/metrics", "GET HEAD")),
    _route("readyz", Access.PUBLIC, ("/readyz", "GET HEAD")),
    # The public keys of the identity assertions the proxy sends Airflow (docs/airflow-identity.md).
    _route("jwks", Access.PUBLIC, ("/.well-known/jwks.json", "GET HEAD")),
)


class RouteTable:
    """Routes by name, the werkzeug URL map built from them, and the fast path's segments.

    :raises ValueError: on two routes of the same name.
    """

    def __init__(self, routes: Iterable[Route]) -> None:
        by_name: dict[str, Route] = {}
        for route in routes:
            if route.name in by_name:
                raise ValueError(f"two routes named {route.name!r}")
            by_name[route.name] = route
        self.routes: Mapping[str, Route] = by_name
        self.map = Map(
            [
                Rule(path, endpoint=route.name, methods=methods.split())
                for route in self.routes.values()
                for path, methods in route.rules
            ],
            strict_slashes=False,
        )
        #: The first path segments some rule starts with: a path starting with none of them
        #: is proxied without the matcher, which is costly on the proxy's hot path.
        self.segments = frozenset(rule.rule.split("/")[1] for rule in self.map.iter_rules())

    def may_own(self, path: str) -> bool:
        """False when no route can match ``path`` (PATH_INFO).  ``//`` paths go through the
        matcher, for its slash-merging redirect."""
        return path[1:].partition("/")[0] in self.segments or path.startswith("//")

    def match(self, environ: WSGIEnvironment) -> tuple[Route, Mapping[str, Any]]:
        """The route and the values its rule took from the path.

        :raises werkzeug.exceptions.NotFound: no route matches (the path is proxied).
        :raises werkzeug.exceptions.MethodNotAllowed: a route matches, not with this method.
        :raises werkzeug.routing.RequestRedirect: the path needs its slashes merged.
        """
        name, values = self.map.bind_to_environ(environ).match()
        return self.routes[name], values


#: The gateway's routes.
TABLE = RouteTable(ROUTES)
#: The werkzeug URL map of :data:`TABLE`.
URL_MAP = TABLE.map
