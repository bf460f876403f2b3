"""Where decisions are applied: the API endpoint's ``authorize`` hook and the proxy guard.

Both decide for the principal the authentication layer put on the request scope, and put
the decision on the scope and its audit record; a denial is a 403 envelope naming the
rule, unless shadow mode only logs it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from gateway.cli.interpreter import BuiltinCall, Plan
from gateway.core.errors import PolicyDenied
from gateway.identity.client import client_address
from gateway.identity.principal import Principal
from gateway.policy.engine import PolicyEngine, Target
from gateway.policy.model import Decision
from gateway.request.scope import RequestScope

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("gateway.policy")
POLICY_HEADER = "X-Gateway-Policy"


def apply(scope: RequestScope, principal: Principal, decision: Decision) -> None:
    """Record ``decision`` and raise :class:`PolicyDenied` when it is an enforced denial."""
    scope.policy_decision = decision.describe()
    record = scope.audit
    record.decision = "allow" if decision.allowed else "deny"
    record.rule_id = decision.rule_id
    record.shadow = decision.shadow
    record.policy_version = decision.policy_version
    if not decision.enforced_allow:
        raise PolicyDenied(decision.rule_id, principal.name)


class ApiAuthorizer:
    """The ``authorize`` hook of :class:`~gateway.web.api.ApiEndpoint`.

    :param engine: the policy engine.
    """

    def __init__(self, engine: PolicyEngine) -> None:
        self.engine = engine

    def __call__(self, principal: Principal, planned: Plan | BuiltinCall, request: Request) -> None:
        target = Target(api=planned.api, values=planned.values)
        address = client_address(request.environ)
        apply(RequestScope.of(request.environ), principal, self.engine.decide(principal, target, address))


class ProxyGuard:
    """WSGI layer in front of the proxy: the path policy, for the authenticated principal.

    Requests without gateway credentials are anonymous here (the authentication layer):
    Airflow's own login still applies behind the gateway.

    :param app: the proxy (or the not-found answer when no upstream is configured).
    :param engine: the policy engine.
    :raises PolicyDenied: (from the layer) an enforced denial, rendered by the request layer.
    """

    def __init__(self, app: WSGIApplication, engine: PolicyEngine) -> None:
        self.app = app
        self.engine = engine

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        scope = RequestScope.of(environ)
        principal = scope.caller()
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        decision = self.engine.decide(principal, Target(method=method, path=path), client_address(environ))
        apply(scope, principal, decision)
        # Airflow's answer cannot carry the envelope's "policy" field: name the rule in a header.
        verdict = "allow" if decision.allowed else "deny"
        value = f"{verdict}; rule={decision.rule_id}" + ("; shadow" if decision.shadow else "")

        def with_decision(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, (POLICY_HEADER, value)], exc_info)

        return self.app(environ, with_decision)
