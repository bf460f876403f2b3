"""The principal of the request being handled, for in-process builtins such as whoami.

Builtin handlers receive only the call and the envelope; the app sets this around the
API endpoint (one request per thread under gthread) and always resets it afterwards.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from gateway.identity.client import IPAddress
from gateway.identity.principal import Principal


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling and from where (after the trusted-proxy count)."""

    principal: Principal
    address: IPAddress | None


CURRENT_CALLER: ContextVar[Caller | None] = ContextVar("gateway_current_caller", default=None)
