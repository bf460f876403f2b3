"""The ``whoami`` builtin API: your principal and what the policies let you call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.cli.interpreter import BuiltinCall
from gateway.cli.spec import Api
from gateway.envelope import Envelope
from gateway.identity.context import CURRENT_CALLER
from gateway.identity.principal import ANONYMOUS
from gateway.policy.engine import PolicyEngine


class WhoAmI:
    """Answers ``api=whoami``.

    :param engine: the policy engine, or None when no policies are configured.
    :param catalogue: the API catalogue (to list what may be called).
    """

    def __init__(self, engine: PolicyEngine | None, catalogue: Mapping[str, Api]) -> None:
        self.engine = engine
        self.catalogue = catalogue

    def __call__(self, call: BuiltinCall, envelope: Envelope) -> None:
        caller = CURRENT_CALLER.get()
        principal = caller.principal if caller else ANONYMOUS
        address = caller.address if caller else None
        body: dict[str, Any] = {
            "principal": principal.describe(),
            "client_address": str(address) if address else None,
        }
        if self.engine is None:
            body["policy"] = {
                "enabled": False,
                "note": "no policies configured: authenticated callers may call every API",
            }
        else:
            body["policy"] = {"enabled": True, **self.engine.permissions(principal, address, self.catalogue)}
        envelope.output = body
        envelope.extra["data"] = body
