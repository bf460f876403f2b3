"""Load and validate ``policies/*.toml`` at start-up; every error names file and line.

tomllib reports no positions for valid documents, so positions come from the source
text: the n-th ``[[rule]]`` header line is the n-th rule (TOML keeps array-of-tables
order), and a key's line is found inside its rule's span.  Rules written any other way
(``rule = [...]``) are refused, so this mapping always holds.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import logging
import os
import re
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gateway.config.loader import ConfigError
from gateway.identity.principal import METHODS
from gateway.policy.jobs import JOB_ACTION_NAMES
from gateway.policy.model import DEFAULT_DENY, Constraints, NetworkT, PolicySet, Rule

log = logging.getLogger("gateway.policy")

_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*rule[ \t]*\]\][ \t]*(#.*)?$", re.MULTILINE)
_ID = re.compile(r"[a-z0-9][a-z0-9._\-]{0,79}")
_TOML_POS = re.compile(r"\(at line (\d+), column \d+\)")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*")
SELECTORS = ("principals", "groups", "claims", "auth_methods")
KEYS = frozenset(
    {
        "id", "effect", "description", *SELECTORS, "apis", "dag_ids", "dag_id_regex", "variable_prefixes",
        "pools", "conn_ids", "proxy_paths", "proxy_methods", "sources",
    }
)  # fmt: skip


class PolicyError(ConfigError):
    """One or more policy files are invalid; each line of the message is ``file:line: problem``."""


class _FileErrors:
    """Collects ``file:line: message`` for one file."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.messages: list[str] = []

    def line_of_key(self, start: int, end: int, key: str) -> int:
        pattern = re.compile(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*[=.]")
        for number in range(start, min(end, len(self.lines) + 1)):
            if pattern.match(self.lines[number - 1]):
                return number
        return start

    def add(self, line: int, message: str) -> None:
        self.messages.append(f"{self.path}:{line}: {message}")


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    return None


def _check_globs(values: tuple[str, ...], universe: Iterable[str]) -> list[str]:
    names = list(universe)
    return [v for v in values if not any(fnmatch.fnmatchcase(n, v) for n in names)]


def _rule(
    body: dict[str, Any], where: str, err: Callable[[str, str], None], api_names: frozenset[str]
) -> Rule:
    """Build one rule; ``err(key, message)`` records a problem at that key's line.

    The caller discards the rule when ``err`` was called.
    """
    for key in sorted(set(body) - KEYS):
        err(key, f"unknown key '{key}' (known: {', '.join(sorted(KEYS))})")
    rule_id = body.get("id")
    if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id) or rule_id == DEFAULT_DENY:
        err("id", "every rule needs an id: lower-case letters, digits, '.', '_', '-' (not 'default-deny')")
        rule_id = "?"
    effect = body.get("effect")
    if effect not in ("allow", "deny"):
        err("effect", 'effect must be "allow" or "deny"')

    def strings(key: str) -> tuple[str, ...]:
        if key not in body:
            return ()
        value = _strings(body[key])
        if value is None:
            err(key, f"'{key}' must be a non-empty list of non-empty strings")
            return ()
        return value

    principals, groups, methods = strings("principals"), strings("groups"), strings("auth_methods")
    for method in methods:
        if method not in METHODS:
            err("auth_methods", f"unknown auth method '{method}' (known: {', '.join(METHODS)})")
    claims: list[tuple[str, tuple[str, ...]]] = []
    if "claims" in body:
        raw_claims = body["claims"]
        if not isinstance(raw_claims, dict) or not raw_claims:
            err("claims", "'claims' must be a table of claim path = value or [values]")
        else:
            for path, wanted in raw_claims.items():
                values = _strings(wanted)
                if values is None:
                    err("claims", f"claim '{path}' must map to a string or a list of strings")
                else:
                    claims.append((path, values))
    if not (principals or groups or claims or methods):
        err(
            "id",
            "a rule must say whom it applies to: principals, groups, claims or auth_methods "
            '(principals = ["*"] for everyone)',
        )
    apis = strings("apis")
    for pattern in _check_globs(apis, api_names):
        err("apis", f"'{pattern}' matches no API (see the API list at /admin/rest_api/)")
    regex = None
    if "dag_id_regex" in body:
        if not isinstance(body["dag_id_regex"], str):
            err("dag_id_regex", "'dag_id_regex' must be a string")
        else:
            try:
                regex = re.compile(body["dag_id_regex"])
            except re.error as exc:
                err("dag_id_regex", f"invalid regular expression: {exc}")
    constraints = Constraints(
        dag_ids=strings("dag_ids"),
        dag_id_regex=regex,
        variable_prefixes=strings("variable_prefixes"),
        pools=strings("pools"),
        conn_ids=strings("conn_ids"),
    )
    if not apis and not constraints.empty:
        err("apis", "argument constraints (dag_ids, pools, ...) need 'apis'")
    paths = strings("proxy_paths")
    for path in paths:
        if not path.startswith("/"):
            err("proxy_paths", f"proxied path '{path}' must start with '/'")
    methods_http = tuple(m.upper() for m in strings("proxy_methods"))
    for method in methods_http:
        if method not in HTTP_METHODS:
            err("proxy_methods", f"unknown HTTP method '{method}'")
    if methods_http and not paths:
        err("proxy_methods", "'proxy_methods' needs 'proxy_paths'")
    if not apis and not paths:
        err("id", "a rule must cover something: 'apis' and/or 'proxy_paths' (use [\"*\"] for all)")
    networks: list[NetworkT] = []
    for cidr in strings("sources"):
        try:
            networks.append(ipaddress.ip_network(cidr, strict=True))
        except ValueError as exc:
            err("sources", f"bad CIDR '{cidr}': {exc}")
    description = body.get("description", "")
    if not isinstance(description, str):
        err("description", "'description' must be a string")
    return Rule(
        id=rule_id,
        effect=str(effect),
        source=where,
        description=str(description),
        principals=principals,
        groups=groups,
        claims=tuple(claims),
        auth_methods=methods,
        apis=apis,
        constraints=constraints,
        proxy_paths=paths,
        proxy_methods=methods_http,
        sources=tuple(networks),
    )


def _load_file(path: Path, api_names: frozenset[str], errors: list[str]) -> list[Rule]:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(f"{path}:1: cannot read: {exc}")
        return []
    file_errors = _FileErrors(path, text)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POS.search(str(exc))
        line = int(match.group(1)) if match else max(len(file_errors.lines), 1)  # "at end of document"
        errors.append(f"{path}:{line}: TOML syntax error: {exc}")
        return []
    for key in sorted(set(doc) - {"rule"}):
        errors.append(
            f"{path}:{file_errors.line_of_key(1, len(file_errors.lines) + 1, key)}: "
            f"unknown top-level key '{key}' (a policy file holds [[rule]] tables only)"
        )
    rules_raw = doc.get("rule", [])
    headers = [text.count("\n", 0, m.start()) + 1 for m in _HEADER.finditer(text)]
    count = len(rules_raw) if isinstance(rules_raw, list) else 0
    if not isinstance(rules_raw, list) or len(headers) != count:
        errors.append(
            f"{path}:1: write each rule as a [[rule]] table on its own line "
            f"(found {len(headers)} [[rule]] headers for {count} rules)"
        )
        return []
    rules: list[Rule] = []
    ends = [*headers[1:], len(file_errors.lines) + 1]
    for body, start, end in zip(rules_raw, headers, ends, strict=True):
        label = f"rule '{body.get('id')}'" if isinstance(body.get("id"), str) else "rule"

        def err(key: str, message: str, start: int = start, end: int = end, label: str = label) -> None:
            file_errors.add(file_errors.line_of_key(start, end, key), f"{label}: {message}")

        before = len(file_errors.messages)
        rule = _rule(body, f"{path}:{start}", err, api_names)
        if len(file_errors.messages) == before:
            rules.append(rule)
    errors.extend(file_errors.messages)
    return rules


def load_policies(directory: Path, api_names: Iterable[str]) -> PolicySet:
    """Every ``*.toml`` in ``directory`` (sorted by name), validated.

    :param api_names: the API catalogue, so that a misspelt API name is an error.
    :raises PolicyError: listing every problem as ``file:line: message``.
    """
    if not directory.is_dir():
        raise PolicyError(f"policy.dir {str(directory)!r}: not a directory")
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise PolicyError(
            f"policy.dir {str(directory)!r}: no *.toml policy files (everything would be denied)"
        )
    errors: list[str] = []
    rules: list[Rule] = []
    names = frozenset(api_names) | JOB_ACTION_NAMES  # job actions (gateway/policy/jobs.py)
    for path in files:
        rules.extend(_load_file(path, names, errors))
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.id in seen:
            errors.append(f"{rule.source}: rule id '{rule.id}' is already used at {seen[rule.id]}")
        seen.setdefault(rule.id, rule.source)
    if errors:
        raise PolicyError("invalid policies:\n" + "\n".join(errors))
    return PolicySet(rules=tuple(rules), files=tuple(str(f) for f in files), version=_version(files))


def _version(files: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


Stamp = tuple[tuple[str, int, int, int], ...]


def stamp(directory: Path) -> Stamp:
    """What changes when a policy file is edited, added, removed or swapped (a Kubernetes
    ConfigMap update replaces a symlink): name, inode, size and mtime of each ``*.toml``."""
    found = []
    for path in sorted(directory.glob("*.toml")):
        try:
            st = os.stat(path)  # follows the symlink, as loading does
        except OSError:
            continue
        found.append((path.name, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(found)


class PolicyFiles:
    """``policy.dir`` watched for changes (``policy.reload_interval``).

    :meth:`poll` is cheap until the interval has passed; then one caller looks at the files'
    stamps and, when they changed, loads them.  Invalid files are logged and the running
    policies kept (an editor's half-written file is simply loaded on its next change).
    """

    def __init__(
        self, directory: Path, api_names: Iterable[str], interval_s: float, loaded: PolicySet
    ) -> None:
        self.directory = directory
        self.api_names = frozenset(api_names)
        self.interval_s = interval_s
        self.version = loaded.version
        self._stamp = stamp(directory)
        self._due = time.monotonic() + interval_s
        self._lock = threading.Lock()

    def poll(self) -> PolicySet | None:
        """A newly loaded, valid policy set when the files changed; otherwise None."""
        if time.monotonic() < self._due or not self._lock.acquire(blocking=False):
            return None
        try:
            self._due = time.monotonic() + self.interval_s
            now = stamp(self.directory)
            if now == self._stamp:
                return None
            try:
                policies = load_policies(self.directory, self.api_names)
            except PolicyError as exc:
                self._stamp = now  # said once; loaded again on the next change
                log.error("policy files changed but are invalid; version %s stays in force: %s",
                          self.version, exc)  # fmt: skip
                return None
            except (OSError, UnicodeDecodeError) as exc:  # a file replaced while read: next time
                log.warning("policy files could not be read (%s: %s); version %s stays in force",
                            type(exc).__name__, exc, self.version)  # fmt: skip
                return None
            self._stamp = now
            if policies.version == self.version:
                return None
            log.warning("policies reloaded from %s: version %s -> %s (%d rules)",
                        self.directory, self.version, policies.version, len(policies.rules))  # fmt: skip
            self.version = policies.version
            return policies
        finally:
            self._lock.release()
