"""The ``whoami`` builtin API: your principal and what the policies let you call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.calls.service import CallContext
from gateway.cli.interpreter import BuiltinCall
from gateway.cli.spec import Api
from gateway.identity.assertion import airflow_role
from gateway.policy.engine import PolicyEngine


class WhoAmI:
    """Answers ``api=whoami``.

    :param engine: the policy engine, or None when no policies are configured.
    :param catalogue: the API catalogue (to list what may be called).
    :param airflow_roles: ``assertion.airflow_roles`` when identity assertions are on: the
        answer then says which Airflow role the principal's groups get.
    """

    def __init__(
        self,
        engine: PolicyEngine | None,
        catalogue: Mapping[str, Api],
        *,
        airflow_roles: Mapping[str, str] | None = None,
    ) -> None:
        self.engine = engine
        self.catalogue = catalogue
        self.airflow_roles = None if airflow_roles is None else dict(airflow_roles)

    def __call__(self, call: BuiltinCall, ctx: CallContext) -> None:
        body: dict[str, Any] = {
            "principal": ctx.principal.describe(),
            "client_address": str(ctx.address) if ctx.address else None,
        }
        if self.engine is None:
            body["policy"] = {
                "enabled": False,
                "note": "no policies configured: authenticated callers may call every API",
            }
        else:
            body["policy"] = {
                "enabled": True,
                **self.engine.permissions(ctx.principal, ctx.address, self.catalogue),
            }
        if self.airflow_roles is not None:
            principal = ctx.principal
            role = (
                None
                if principal.method == "anonymous"
                else airflow_role(principal.groups, self.airflow_roles)
            )
            body["airflow"] = {"role": role, "mapping_configured": bool(self.airflow_roles)}
        ctx.envelope.output = body
        ctx.envelope.extra["data"] = body
