"""The authenticated caller, as every later layer (policy, audit, whoami) sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

METHODS = ("plugin-token", "token", "jwt", "oidc", "anonymous")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a name, how it authenticated, and what policies can use.

    :param method: ``"plugin-token"``, ``"token"``, ``"jwt"``, ``"oidc"`` (a browser session) or
        ``"anonymous"``.
    :param claims: the verified JWT payload (empty for other methods).
    """

    name: str
    method: str
    groups: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view for whoami and explain."""
        return {
            "name": self.name,
            "method": self.method,
            "groups": sorted(self.groups),
            "claims": dict(self.claims),
        }


ANONYMOUS = Principal(name="anonymous", method="anonymous")
PLUGIN_TOKEN_PRINCIPAL = Principal(name="rest_api_plugin", method="plugin-token")


def claim_values(claims: Mapping[str, Any], path: str) -> tuple[str, ...]:
    """The string values at a dotted claim path (``realm_access.roles``); () when absent.

    A list yields its string items, a scalar yields itself as text; other shapes yield ().
    """
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return ()
        node = node[part]
    if isinstance(node, (list, tuple)):
        return tuple(str(v) for v in node if isinstance(v, (str, int)) and not isinstance(v, bool))
    if isinstance(node, (str, int)) and not isinstance(node, bool):
        return (str(node),)
    return ()
