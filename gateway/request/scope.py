"""The request scope: what the layers learn about one request, typed and in one place.

:class:`~gateway.request.lifecycle.RequestLifecycle` (the outermost gateway layer) creates
it and attaches it to the WSGI environ under a key private to this module.  Every other
module reaches it with :meth:`RequestScope.of`, or :meth:`RequestScope.find` where a layer
may run without the lifecycle in front of it (the proxy in its own tests).  No module reads
or writes request state in the environ by a key of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.identity.principal import Principal
from gateway.observability.audit import AuditRecord
from gateway.request.routes import Route

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

_KEY = "gateway.scope"


@dataclass(slots=True)
class RequestScope:
    """One request's state, filled in by the layers as it passes.

    :param request_id: the accepted ``X-Request-ID`` or a fresh one (the lifecycle's).
    :param call_time: wall-clock start, the envelope's ``call_time``.
    :param audit: the audit record, emitted when the response closes.
    :param route: the gateway's own route that matched, or None (the path is proxied).
    :param route_values: the values the route's rule took from the path.
    :param principal: who sent the request, set by the authentication layer; None on
        public routes.
    :param policy_decision: the policy decision as the envelope shows it, when one was made.
    :param upstream_error: the error class that stopped the proxy from reaching Airflow.
    :param rate_counted_api: the API whose rate rule the request layer already counted.
    """

    request_id: str
    call_time: float
    audit: AuditRecord
    route: Route | None = None
    route_values: Mapping[str, Any] = field(default_factory=dict)
    principal: Principal | None = None
    policy_decision: dict[str, Any] | None = None
    upstream_error: str | None = None
    rate_counted_api: str | None = None

    def attach(self, environ: WSGIEnvironment) -> None:
        """Make this the scope of the request ``environ`` belongs to."""
        environ[_KEY] = self

    @staticmethod
    def of(environ: WSGIEnvironment) -> RequestScope:
        """The request's scope.

        :raises LookupError: when no lifecycle layer attached one.
        """
        try:
            return environ[_KEY]  # type: ignore[no-any-return]
        except KeyError:
            raise LookupError("no request scope: RequestLifecycle is not in front of this layer") from None

    @staticmethod
    def find(environ: WSGIEnvironment) -> RequestScope | None:
        """The request's scope, or None when the layer runs without the lifecycle."""
        return environ.get(_KEY)

    def authenticated(self, principal: Principal) -> None:
        """Record who sent the request, here and on the audit record."""
        self.principal = principal
        self.audit.principal, self.audit.auth_method = principal.name, principal.method

    def caller(self) -> Principal:
        """The authenticated principal of a route that requires credentials.

        :raises LookupError: on a public route (the authentication layer set no principal).
        """
        if self.principal is None:
            raise LookupError(f"route {self.audit.route!r} is public: no principal was authenticated")
        return self.principal
