"""Policy decisions: deny wins over allow, and anything not allowed is denied.

A rule matches when every selector it has matches the principal, the client address is
in one of its ``sources`` (if any), and it covers the API (with argument constraints) or
the proxied path and method.  Argument constraints only cover APIs that take that kind
of argument; an allow rule needs every such value present and inside the constraint,
while a deny rule matches when any value is inside it or the value is omitted (an
omitted DAG id, for instance, means "all DAGs").
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.cli.spec import Api, Kind
from gateway.cli.values import Value
from gateway.identity.client import IPAddress
from gateway.identity.principal import Principal, claim_values
from gateway.policy.model import DEFAULT_DENY, Constraints, Decision, PolicySet, Rule


class PolicySource(Protocol):
    """Newer policies when there are (``gateway.policy.loader.PolicyFiles``)."""

    def poll(self) -> PolicySet | None: ...


log = logging.getLogger("gateway.policy")

# Constraint category -> the parameter kinds that carry it.
CATEGORIES: dict[str, tuple[Kind, ...]] = {
    "dag_id": (Kind.DAG_ID,),
    "variable_key": (Kind.VAR_KEY,),
    "pool": (Kind.POOL, Kind.POOL_SET),
    "conn_id": (Kind.CONN_ID,),
}


def _globs(value: str, patterns: tuple[str, ...]) -> bool:
    return "*" in patterns or any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _checks(c: Constraints) -> dict[str, Callable[[str], bool]]:
    """The constrained categories of a rule, each with its value test."""
    checks: dict[str, Callable[[str], bool]] = {}
    if c.dag_ids or c.dag_id_regex is not None:
        regex = c.dag_id_regex
        checks["dag_id"] = lambda v: (
            (not c.dag_ids or _globs(v, c.dag_ids)) and (regex is None or regex.fullmatch(v) is not None)
        )
    if c.variable_prefixes:
        checks["variable_key"] = lambda v: any(v.startswith(p) for p in c.variable_prefixes)
    if c.pools:
        checks["pool"] = lambda v: _globs(v, c.pools)
    if c.conn_ids:
        checks["conn_id"] = lambda v: _globs(v, c.conn_ids)
    return checks


def call_values(api: Api, values: Mapping[str, Value]) -> dict[str, tuple[str, ...] | None]:
    """For each category the API takes: the values of this call (empty tuple when omitted).

    Categories the API does not take map to None.
    """
    out: dict[str, tuple[str, ...] | None] = {}
    for category, kinds in CATEGORIES.items():
        params = [p for p in api.params if p.kind in kinds]
        if not params:
            out[category] = None
            continue
        found: list[str] = []
        for param in params:
            value = values.get(param.name)
            if isinstance(value, tuple):  # pool set: NAME SLOTS DESCRIPTION
                found.append(value[0])
            elif isinstance(value, str):
                found.append(value)
        out[category] = tuple(found)
    return out


@dataclass(frozen=True, slots=True)
class Target:
    """What is being reached: an API call or a proxied request."""

    api: Api | None = None
    values: Mapping[str, Value] | None = None
    method: str | None = None
    path: str | None = None

    def describe(self) -> dict[str, Any]:
        if self.api is not None:
            return {"api": self.api.name, "arguments": {k: v for k, v in (self.values or {}).items()}}
        return {"method": self.method, "path": self.path}


@dataclass(frozen=True, slots=True)
class _Rules:
    policies: PolicySet
    # A rule can only match the kind of target it names (see _what); deciding walks just
    # those, in order.  explain() still walks every rule, for its trace.
    api: tuple[Rule, ...]
    proxy: tuple[Rule, ...]

    @classmethod
    def of(cls, policies: PolicySet) -> _Rules:
        rules = policies.rules
        return cls(policies, tuple(r for r in rules if r.apis), tuple(r for r in rules if r.proxy_paths))


class PolicyEngine:
    """Decides with a loaded :class:`PolicySet`.

    :param policies: the validated rules.
    :param shadow: log denials without enforcing them.
    """

    def __init__(
        self, policies: PolicySet, *, shadow: bool = False, files: PolicySource | None = None
    ) -> None:
        """:param files: ``policy.dir`` watched for changes (``policy.reload_interval``)."""
        self.shadow = shadow
        self.files = files
        self._rules = _Rules.of(policies)

    @property
    def policies(self) -> PolicySet:
        return self._current().policies

    def _current(self) -> _Rules:
        """The rules in force; swapped whole (one attribute) when the watched files changed,
        so a decision never mixes two versions."""
        if self.files is not None and (reloaded := self.files.poll()) is not None:
            self._rules = _Rules.of(reloaded)
        return self._rules

    # --- matching, each returning None on a match or the reason it does not match ----

    @staticmethod
    def _who(rule: Rule, principal: Principal) -> str | None:
        if rule.principals and not _globs(principal.name, rule.principals):
            return "principal name not in 'principals'"
        if rule.groups and not (principal.groups & set(rule.groups)):
            return "no group in 'groups'"
        for path, wanted in rule.claims:
            if not set(claim_values(principal.claims, path)) & set(wanted):
                return f"claim '{path}' does not match"
        if rule.auth_methods and principal.method not in rule.auth_methods:
            return f"auth method '{principal.method}' not in 'auth_methods'"
        return None

    @staticmethod
    def _where(rule: Rule, address: IPAddress | None) -> str | None:
        if not rule.sources:
            return None
        if address is None or not any(address in net for net in rule.sources):
            return f"client address {address} not in 'sources'"
        return None

    @staticmethod
    def _what(rule: Rule, target: Target) -> str | None:
        if target.api is not None:
            if not _globs(target.api.name, rule.apis):
                return "API not in 'apis'"
            given = call_values(target.api, target.values or {})
            for category, test in _checks(rule.constraints).items():
                values = given.get(category)
                if values is None:
                    return f"API takes no {category} (the rule constrains it)"
                if rule.effect == "allow" and not (values and all(test(v) for v in values)):
                    return f"{category} missing or outside the rule's constraint"
                if rule.effect == "deny" and values and not any(test(v) for v in values):
                    return f"{category} outside the rule's constraint"
            return None
        if not rule.proxy_paths or not _globs(target.path or "", rule.proxy_paths):
            return "path not in 'proxy_paths'"
        if rule.proxy_methods and "*" not in rule.proxy_methods and target.method not in rule.proxy_methods:
            return f"method {target.method} not in 'proxy_methods'"
        return None

    def match(
        self, rule: Rule, principal: Principal, target: Target, address: IPAddress | None
    ) -> str | None:
        """None when ``rule`` applies, otherwise why it does not."""
        return self._who(rule, principal) or self._where(rule, address) or self._what(rule, target)

    # --- decisions -----------------------------------------------------------------------

    def explain(
        self, principal: Principal, target: Target, address: IPAddress | None
    ) -> tuple[Decision, list[dict[str, Any]]]:
        """The decision and, per rule in order, whether it matched and why not."""
        trace: list[dict[str, Any]] = []
        return self._decide(principal, target, address, trace), trace

    def _decide(
        self,
        principal: Principal,
        target: Target,
        address: IPAddress | None,
        trace: list[dict[str, Any]] | None,
    ) -> Decision:
        deny: Rule | None = None
        allow: Rule | None = None
        current = self._current()
        if trace is not None:
            rules = current.policies.rules
        else:
            rules = current.api if target.api is not None else current.proxy
        for rule in rules:
            if trace is None and (deny is not None or (allow is not None and rule.effect == "allow")):
                continue  # the outcome cannot change any more; only explain needs the rest
            reason = self.match(rule, principal, target, address)
            if trace is not None:
                trace.append(
                    {
                        "rule": rule.id,
                        "effect": rule.effect,
                        "source": rule.source,
                        "matched": reason is None,
                        **({"why_not": reason} if reason else {}),
                    }
                )
            if reason is None and rule.effect == "deny" and deny is None:
                deny = rule
            elif reason is None and rule.effect == "allow" and allow is None:
                allow = rule
        version = current.policies.version
        if deny is not None:
            decision = Decision(False, deny.id, deny.source, shadow=self.shadow, policy_version=version)
        elif allow is not None:
            decision = Decision(True, allow.id, allow.source, policy_version=version)
        else:
            decision = Decision(False, DEFAULT_DENY, None, shadow=self.shadow, policy_version=version)
        return decision

    def decide(self, principal: Principal, target: Target, address: IPAddress | None) -> Decision:
        """The decision for one request, logged (denials at warning level, allows at debug:
        every request's audit event already carries its decision and rule)."""
        decision = self._decide(principal, target, address, None)
        what = target.api.name if target.api is not None else f"{target.method} {target.path}"
        if decision.allowed:
            log.debug("policy allow: %s -> %s by rule %s (policies %s)",
                      principal.name, what, decision.rule_id, decision.policy_version)  # fmt: skip
        else:
            verb = "would deny (shadow mode)" if decision.shadow else "deny"
            log.warning("policy %s: %s -> %s by rule %s (policies %s)",
                        verb, principal.name, what, decision.rule_id, decision.policy_version)  # fmt: skip
        return decision

    def permissions(
        self, principal: Principal, address: IPAddress | None, catalogue: Mapping[str, Api]
    ) -> dict[str, Any]:
        """What ``principal`` may call from ``address``: the applicable rules and API names.

        An API is listed when some allow rule covers it by name and no unconstrained deny
        rule does; argument constraints still apply per call.
        """
        current = self._current().policies
        rules = [r for r in current.rules if not (self._who(r, principal) or self._where(r, address))]
        apis = []
        for name in sorted(catalogue):
            allowing = [r.id for r in rules if r.effect == "allow" and _globs(name, r.apis)]
            blocked = any(r.effect == "deny" and r.constraints.empty and _globs(name, r.apis) for r in rules)
            if allowing and not blocked:
                apis.append({"api": name, "rules": allowing})
        return {
            "rules": [r.describe() for r in rules],
            "apis": apis,
            "shadow": self.shadow,
            "policy_version": current.version,
        }
