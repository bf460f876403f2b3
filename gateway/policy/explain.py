"""``airflow-gateway explain``: may principal P call API A with arguments X from address Y?"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from gateway.cli.apis import CATALOGUE
from gateway.cli.values import InvalidValue, Value, validate
from gateway.config.loader import ConfigError, GatewayConfig
from gateway.identity.principal import METHODS, Principal
from gateway.policy.engine import PolicyEngine, Target


class ExplainError(ConfigError):
    """The question itself is malformed (unknown API, bad argument, bad address)."""


def _pairs(items: Sequence[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ExplainError(f"{what} {item!r}: expected NAME=VALUE")
        out.append((key, value))
    return out


def _claims(items: Sequence[str]) -> dict[str, Any]:
    """``realm_access.roles=ops`` -> ``{"realm_access": {"roles": ["ops"]}}`` (values accumulate)."""
    claims: dict[str, Any] = {}
    for path, value in _pairs(items, "--claim"):
        node = claims
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node.setdefault(leaf, []).append(value)
    return claims


def build_principal(
    config: GatewayConfig,
    *,
    name: str | None,
    token_name: str | None,
    method: str | None,
    groups: Sequence[str],
    claims: Sequence[str],
) -> Principal:
    """The principal to ask about: a configured token by name, or one described by hand."""
    if token_name:
        token = next((t for t in config.auth.tokens if t.name == token_name), None)
        if token is None:
            raise ExplainError(f"--token-name {token_name!r}: no such token in [[auth.tokens]]")
        return Principal(token.name, "token", token.groups | frozenset(groups))
    method = method or ("anonymous" if not name else "jwt" if claims else "token")
    if method not in METHODS:
        raise ExplainError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    return Principal(name or "anonymous", method, frozenset(groups), _claims(claims))


def build_target(*, api: str | None, args: Sequence[str], path: str | None, http_method: str) -> Target:
    """An API call (arguments validated as the endpoint would) or a proxied request."""
    if (api is None) == (path is None):
        raise ExplainError("give either --api (with --arg NAME=VALUE ...) or --path (with --http-method)")
    if path is not None:
        if not path.startswith("/"):
            raise ExplainError("--path must start with '/'")
        return Target(method=http_method.upper(), path=path)
    spec = CATALOGUE.get(str(api))
    if spec is None:
        raise ExplainError(f"--api {api!r}: unknown API")
    values: dict[str, Value] = {}
    for key, raw in _pairs(args, "--arg"):
        param = spec.param(key)
        if param is None:
            raise ExplainError(f"--arg {key}: api '{spec.name}' takes no such argument")
        try:
            values[param.name] = validate(param.kind, raw)
        except InvalidValue as exc:
            raise ExplainError(f"--arg {key}: {exc}") from None
    return Target(api=spec, values=values)


def explain(
    engine: PolicyEngine, principal: Principal, target: Target, address: str | None
) -> dict[str, Any]:
    """The decision, the deciding rule (with file:line) and the per-rule trace, as JSON."""
    try:
        addr = ipaddress.ip_address(address) if address else None
    except ValueError:
        raise ExplainError(f"--from {address!r}: not an IP address") from None
    decision, trace = engine.explain(principal, target, addr)
    return {
        "question": {"principal": principal.describe(), **target.describe(), "from": address},
        "decision": "allow" if decision.allowed else "deny",
        "rule": decision.rule_id,
        "rule_source": decision.source,
        "shadow": decision.shadow,
        "trace": trace,
    }
