"""Policy rules and decisions as frozen data; matching lives in :mod:`gateway.policy.engine`."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DENY = "default-deny"
NetworkT = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Constraints:
    """Argument constraints of a rule (empty tuples: unconstrained).

    Globs use :func:`fnmatch.fnmatchcase`; ``dag_id_regex`` must match the whole id.
    """

    dag_ids: tuple[str, ...] = ()
    dag_id_regex: re.Pattern[str] | None = None
    variable_prefixes: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    conn_ids: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.dag_ids or self.dag_id_regex or self.variable_prefixes or self.pools or self.conn_ids
        )

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("dag_ids", "variable_prefixes", "pools", "conn_ids"):
            if getattr(self, name):
                out[name] = list(getattr(self, name))
        if self.dag_id_regex is not None:
            out["dag_id_regex"] = self.dag_id_regex.pattern
        return out


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``[[rule]]`` table: who (selectors), what (APIs or proxied paths), from where.

    Selectors are ANDed; the values inside one selector are ORed.
    """

    id: str
    effect: str  # "allow" or "deny"
    source: str  # "file:line" of the rule's [[rule]] header
    description: str = ""
    principals: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    claims: tuple[tuple[str, tuple[str, ...]], ...] = ()
    auth_methods: tuple[str, ...] = ()
    apis: tuple[str, ...] = ()
    constraints: Constraints = field(default_factory=Constraints)
    proxy_paths: tuple[str, ...] = ()
    proxy_methods: tuple[str, ...] = ()
    sources: tuple[NetworkT, ...] = ()

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for whoami and explain."""
        out: dict[str, Any] = {"id": self.id, "effect": self.effect, "source": self.source}
        if self.apis:
            out["apis"] = list(self.apis)
            out.update(self.constraints.describe())
        if self.proxy_paths:
            out["proxy_paths"] = list(self.proxy_paths)
            out["proxy_methods"] = list(self.proxy_methods) or ["*"]
        if self.sources:
            out["sources"] = [str(n) for n in self.sources]
        return out


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one policy check; ``shadow`` means it was logged, not enforced."""

    allowed: bool
    rule_id: str
    source: str | None = None
    shadow: bool = False
    #: The :attr:`PolicySet.version` that decided (policies can be reloaded while running).
    policy_version: str | None = None

    @property
    def enforced_allow(self) -> bool:
        """Whether the request goes ahead (always, in shadow mode)."""
        return self.allowed or self.shadow

    def describe(self) -> dict[str, Any]:
        return {
            "decision": "allow" if self.allowed else "deny",
            "rule": self.rule_id,
            "shadow": self.shadow,
            "policy_version": self.policy_version,
        }


@dataclass(frozen=True, slots=True)
class PolicySet:
    """All rules from the policy directory, in load order (file name, then position)."""

    rules: tuple[Rule, ...]
    files: tuple[str, ...] = ()
    #: 12 hex digits of a SHA-256 over the files' names and contents: which policies decided.
    version: str = ""
