"""Groups to an Airflow role: the ``[gateway_auth] roles`` mapping, and optional DAG access by group.

The roles are the four of Airflow's simple auth manager, ordered: ``viewer`` < ``user`` <
``op`` < ``admin``.  A person gets the highest role any of their groups maps to; the ``"*"``
key applies to everyone (a floor).  No matching group and no ``"*"``: no role, and the
assertion is refused.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: role name -> order (as SimpleAuthManagerRole: a role includes every lower one)
ROLES: dict[str, int] = {"viewer": 0, "user": 1, "op": 2, "admin": 3}
#: the matching FAB roles on Airflow 2 (same permission ladder)
FAB_ROLES: dict[str, str] = {"viewer": "Viewer", "user": "User", "op": "Op", "admin": "Admin"}
EVERYONE = "*"


class MappingError(ValueError):
    """The ``roles`` or ``dag_access`` setting is not valid."""


@dataclass(frozen=True)
class RoleMapping:
    """Group name -> role name (lower case, one of :data:`ROLES`)."""

    groups: Mapping[str, str] = field(default_factory=dict)

    def role_for(self, groups: Iterable[str]) -> str | None:
        """The highest role of ``groups`` (and ``"*"``), or None when none maps."""
        candidates = [self.groups[g] for g in {*groups, EVERYONE} if g in self.groups]
        return max(candidates, key=ROLES.__getitem__) if candidates else None


def parse_roles(text: str | None) -> RoleMapping:
    """Parse the JSON object ``{"group": "role", ...}``; roles are case-insensitive."""
    if not text or not text.strip():
        return RoleMapping({})
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise MappingError(f"[gateway_auth] roles is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MappingError('[gateway_auth] roles must be a JSON object, e.g. {"team-a": "op", "*": "viewer"}')
    groups: dict[str, str] = {}
    for group, role in data.items():
        if not isinstance(role, str) or role.lower() not in ROLES:
            raise MappingError(
                f"[gateway_auth] roles: group {group!r} maps to {role!r}, not one of {', '.join(ROLES)}"
            )
        groups[group] = role.lower()
    return RoleMapping(groups)


@dataclass(frozen=True)
class DagAccess:
    """Optional DAG-level access: group -> DAG id patterns (``fnmatch``).

    Empty: every DAG is open to the role.  Otherwise a non-admin sees and acts on a DAG only
    when one of their groups lists a pattern matching its id.
    """

    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.groups)

    def allows(self, groups: Iterable[str], dag_id: str) -> bool:
        if not self.groups:
            return True
        return any(
            fnmatch.fnmatchcase(dag_id, pattern)
            for group in {*groups, EVERYONE}
            for pattern in self.groups.get(group, ())
        )


def parse_dag_access(text: str | None) -> DagAccess:
    """Parse the JSON object ``{"group": ["dag_id or pattern", ...], ...}``."""
    if not text or not text.strip():
        return DagAccess({})
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise MappingError(f"[gateway_auth] dag_access is not JSON: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(p, str) for p in v) for v in data.values()
    ):
        raise MappingError('[gateway_auth] dag_access must be a JSON object {"group": ["dag_id", ...]}')
    return DagAccess({group: tuple(patterns) for group, patterns in data.items()})
