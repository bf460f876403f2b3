"""Where decisions are applied: the API endpoint's ``authorize`` hook and the proxy guard.

Both put the decision on the audit record (``environ["gateway.audit"]``) and in
``environ["gateway.policy_decision"]``; a denial is a 403 envelope naming the rule, unless
shadow mode only logs it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from gateway.cli.interpreter import BuiltinCall, Plan
from gateway.core.errors import GatewayError, PolicyDenied
from gateway.identity.authenticator import Authenticator
from gateway.identity.client import client_address
from gateway.identity.principal import Principal
from gateway.policy.engine import PolicyEngine, Target
from gateway.policy.model import Decision

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("gateway.policy")
POLICY_HEADER = "X-Gateway-Policy"


def record_principal(environ: WSGIEnvironment, principal: Principal) -> None:
    """Make the principal available to later layers and the audit record."""
    environ["gateway.principal"] = principal
    record = environ.get("gateway.audit")
    if record is not None:
        record.principal, record.auth_method = principal.name, principal.method


def apply(environ: WSGIEnvironment, principal: Principal, decision: Decision) -> None:
    """Record ``decision`` and raise :class:`PolicyDenied` when it is an enforced denial."""
    environ["gateway.policy_decision"] = decision.describe()
    record = environ.get("gateway.audit")
    if record is not None:
        record.decision = "allow" if decision.allowed else "deny"
        record.rule_id = decision.rule_id
        record.shadow = decision.shadow
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
        apply(request.environ, principal, self.engine.decide(principal, target, address))


class ProxyGuard:
    """WSGI layer in front of the proxy: authenticate, then check the path policy.

    Requests without gateway credentials are anonymous here: Airflow's own login still
    applies behind the gateway.  With no policies configured every request passes.

    :param app: the proxy (or the not-found answer when no upstream is configured).
    :param authenticator: principal sources.
    :param engine: the policy engine, or None.
    """

    def __init__(
        self,
        app: WSGIApplication,
        authenticator: Authenticator,
        engine: PolicyEngine | None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.engine = engine

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        decision: Decision | None = None
        try:
            principal = self.authenticator.authenticate(environ, own=False)
            record_principal(environ, principal)
            if self.engine is not None:
                method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
                address = client_address(environ)
                decision = self.engine.decide(principal, Target(method=method, path=path), address)
                apply(environ, principal, decision)
        except GatewayError as exc:
            response: Any = exc.get_response(environ)
            return response(environ, start_response)  # type: ignore[no-any-return]
        if decision is None:
            return self.app(environ, start_response)
        # Airflow's answer cannot carry the envelope's "policy" field: name the rule in a header.
        verdict = "allow" if decision.allowed else "deny"
        value = f"{verdict}; rule={decision.rule_id}" + ("; shadow" if decision.shadow else "")

        def with_decision(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, (POLICY_HEADER, value)], exc_info)

        return self.app(environ, with_decision)
