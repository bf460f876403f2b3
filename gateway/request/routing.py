"""Routing and dispatch, the layers on either side of authentication.

:class:`Routing` matches a request against the route table (:mod:`gateway.request.routes`)
and puts the route on the request scope; :class:`Dispatch` calls the route's handler, or
hands a path the gateway does not own to the proxied application.  Errors a handler raises
leave as they are (the lifecycle layer renders them); any other exception is logged and
becomes a 500 envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from werkzeug.exceptions import MethodNotAllowed as WzMethodNotAllowed
from werkzeug.exceptions import NotFound as WzNotFound
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Response

from gateway.core.errors import GatewayError, InternalError, MethodNotAllowed, Redirect
from gateway.request.routes import RouteTable
from gateway.request.scope import RequestScope

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("gateway")

#: A route's handler: the request's environ and scope to a response.
Handler = Callable[["WSGIEnvironment", RequestScope], Response]


class Routing:
    """WSGI layer: which of the gateway's routes the request is for, if any.

    :param app: the next layer (authentication).
    :param table: the gateway's routes.
    :param proxying: whether other paths go to Airflow (their route label: ``proxy``) or
        are answered 404 (``unmatched``).
    """

    def __init__(self, app: WSGIApplication, table: RouteTable, *, proxying: bool) -> None:
        self.app = app
        self.table = table
        self.proxy_route = "proxy" if proxying else "unmatched"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        scope = RequestScope.of(environ)
        # Most traffic is proxied: a path no rule can match skips the matcher (docs/proxy.md).
        if self.table.may_own(environ.get("PATH_INFO", "")):
            try:
                scope.route, scope.route_values = self.table.match(environ)
            except WzNotFound:
                pass
            except WzMethodNotAllowed:
                raise MethodNotAllowed() from None
            except RequestRedirect as exc:  # doubled slashes in one of the gateway's paths
                raise Redirect(exc.new_url) from None
            else:
                scope.audit.route = scope.route.name
                return self.app(environ, start_response)
        scope.audit.route = self.proxy_route
        return self.app(environ, start_response)


class Dispatch:
    """WSGI layer: the route's handler answers, or ``proxied`` when no route matched.

    :param handlers: one per route of ``table``, by route name.
    :raises ValueError: when a route has no handler or a handler no route.
    """

    def __init__(self, handlers: Mapping[str, Handler], proxied: WSGIApplication, table: RouteTable) -> None:
        if set(handlers) != set(table.routes):
            raise ValueError(f"handlers {sorted(handlers)} do not match the routes {sorted(table.routes)}")
        self.handlers = dict(handlers)
        self.proxied = proxied

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        scope = RequestScope.of(environ)
        if scope.route is None:
            return self.proxied(environ, start_response)
        try:
            response = self.handlers[scope.route.name](environ, scope)
        except GatewayError:
            raise
        except Exception as exc:
            # No locals, no traceback to the client: the log has the request id.
            scope.audit.error = type(exc).__name__
            log.exception("unhandled error", extra={"request_id": scope.request_id})
            raise InternalError() from None
        return response(environ, start_response)
