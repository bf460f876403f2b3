"""Per-principal rate limits and caps: which rule applies, the 429, and the request layer.

``[[rate_limits.rules]]`` (:class:`gateway.config.settings.RateRule`) name whom they apply to
(a principal, a group or ``*``) and either a rate (``limit`` on one ``api``, a proxied ``path``
prefix or every request) or caps on what the principal holds at once (``cli_calls``,
``running_jobs``, ``queued_jobs``, ``streams``).  Counters are kept per principal (name and
auth method), whichever rule matched.  Of the rules of one kind (every request, one API, one
path prefix, one cap) that match a principal the most specific applies: one naming the
principal, else the first naming one of its groups, else ``*``: a default for everyone plus
overrides.  Rules of different kinds all apply.

:class:`RateLimiting` is the WSGI layer right after authentication: it counts every request of
an authenticated principal (the gateway's own routes and proxied paths) against the
every-request and path rules.  API rules are counted by the API endpoint once it knows the API
(:meth:`RateLimits.check_api`), or by this layer when the query or path names it (one round trip
to Redis for all of a request's rules), caps where the slot is held (:meth:`RateLimits.slot`).  Beyond
a limit: :class:`RateLimited`, a 429 with ``Retry-After`` and the ``RateLimit-Policy`` and
``RateLimit`` fields of the IETF httpapi draft; the audit event's ``rate_limit`` and the
``airflow_gateway_rate_limited_total`` metric name the rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote_plus

from limits import RateLimitItem, parse_many

from gateway.config.settings import RATE_CAPS, RateLimitsConfig, RateRule
from gateway.core.errors import TooManyRequests
from gateway.identity.principal import Principal
from gateway.observability.audit import AuditRecord
from gateway.ratelimit.counters import Counters, StorageObserver
from gateway.request.scope import RequestScope

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: Seconds a client refused by a cap is told to wait (a slot frees when a call, job or stream ends).
CAP_RETRY_S = 5
#: Principals whose resolved rules are cached (per worker); the cache is emptied when full.
CACHE_SIZE = 10_000
_CAP_WHAT = {
    "cli_calls": "CLI API calls running",
    "running_jobs": "jobs running",
    "queued_jobs": "jobs queued",
    "streams": "job output streams open",
}


class RateLimited(TooManyRequests):
    """429: a principal is over one of its rate limits or caps; the rule is ``limit_id``."""

    def __init__(
        self, message: str, *, limit_id: str, policy: str, remaining: str, retry_after_s: int
    ) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.limit_id = limit_id
        self.extra_headers["RateLimit-Policy"] = policy
        self.extra_headers["RateLimit"] = remaining


@dataclass(frozen=True, slots=True)
class Limit:
    """A rate rule with its parsed items (``10/second;100/minute`` is two)."""

    rule: RateRule
    items: tuple[RateLimitItem, ...]


@dataclass(slots=True)
class Resolved:
    """The rules that apply to one principal."""

    every: Limit | None = None
    paths: tuple[tuple[str, Limit], ...] = ()
    apis: Mapping[str, Limit] = field(default_factory=dict)
    caps: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # kind -> (cap, rule id)


def _rank(rule: RateRule, principal: Principal) -> int | None:
    """How specifically ``rule`` names ``principal``: 0 by name, 1 by group, 2 as ``*``; None: not."""
    if rule.principal is not None:
        return 0 if rule.principal == principal.name else 2 if rule.principal == "*" else None
    if rule.group == "*":
        return 2
    return 1 if rule.group in principal.groups else None


class RuleBook:
    """The configured rules, resolved per principal (cached)."""

    def __init__(self, rules: Iterable[RateRule]) -> None:
        self.rules = tuple(rules)
        self._items = {r.id: tuple(parse_many(r.limit)) for r in self.rules if r.limit}
        self._cache: dict[tuple[str, str, frozenset[str]], Resolved] = {}

    def resolve(self, principal: Principal) -> Resolved:
        key = (principal.name, principal.method, principal.groups)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            found = self._cache[key] = self._resolve(principal)
        return found

    def _resolve(self, principal: Principal) -> Resolved:
        best: dict[tuple[str, str], tuple[int, int, RateRule]] = {}  # kind -> (rank, order, rule)
        for order, rule in enumerate(self.rules):
            rank = _rank(rule, principal)
            if rank is None:
                continue
            kinds: list[tuple[str, str]] = (
                [(f"cap:{cap}", "") for cap in rule.caps]
                if rule.caps
                else [("api", rule.api)]
                if rule.api
                else [("path", rule.path)]
                if rule.path
                else [("every", "")]
            )
            for key in kinds:
                if key not in best or (rank, order) < best[key][:2]:
                    best[key] = (rank, order, rule)
        resolved = Resolved()
        paths: list[tuple[str, Limit]] = []
        apis: dict[str, Limit] = {}
        caps: dict[str, tuple[int, str]] = {}
        for (kind, target), (_, _, rule) in best.items():
            if kind.startswith("cap:"):
                caps[kind[4:]] = (rule.caps[kind[4:]], rule.id)
                continue
            limit = Limit(rule, self._items[rule.id])
            if kind == "every":
                resolved.every = limit
            elif kind == "api":
                apis[target] = limit
            else:
                paths.append((target, limit))
        resolved.paths, resolved.apis, resolved.caps = tuple(paths), apis, caps
        return resolved


class RateLimitObserver(StorageObserver, Protocol):
    """The metrics: refusals by rule, and whether the storage is shared."""

    def rate_limited(self, limit: str) -> None: ...


def owner_key(principal: Principal) -> str:
    """The counters' identity of a principal: auth method and name."""
    return f"{principal.method}:{principal.name}"


class RateLimits:
    """The rules and counters of one worker process.

    :param counters: replaces the ones built from ``config`` (tests).
    """

    def __init__(
        self,
        config: RateLimitsConfig,
        *,
        observer: RateLimitObserver | None = None,
        counters: Counters | None = None,
    ) -> None:
        self.config = config
        self.book = RuleBook(config.rules)
        self.enabled = bool(config.rules)
        self.observer = observer
        self.counters = counters or Counters(
            config.storage_url.value, strategy=config.strategy, timeout_s=config.timeout,
            lease_s=config.lease_timeout, observer=observer,
        )  # fmt: skip
        self.has_caps = any(r.caps for r in config.rules)

    # --- rates -----------------------------------------------------------------------

    def check_request(
        self, principal: Principal, path: str, record: AuditRecord, api: str | None = None
    ) -> str | None:
        """Count a request against the every-request and path rules and, when the API is
        already known, its rule: all in one round trip to Redis.  Returns the API counted.

        :raises RateLimited: over one of them (every one was counted).
        """
        resolved = self.book.resolve(principal)
        hits: list[tuple[Limit, str]] = []
        if resolved.every is not None:
            hits.append((resolved.every, ""))
        for prefix, limit in resolved.paths:
            if path.startswith(prefix):
                hits.append((limit, prefix))
        counted = resolved.apis.get(api) if api is not None else None
        if counted is not None:
            hits.append((counted, api or ""))
        if hits:
            self._hit(hits, principal, record)
        return api if counted is not None else None

    def check_api(
        self, principal: Principal, api: str | None, record: AuditRecord, *, counted: str | None = None
    ) -> None:
        """Count a call of ``api`` against its rule, if one applies to ``principal``.

        :param counted: the API the request layer already counted (named in the query or path).
        :raises RateLimited: over it.
        """
        if api is None or not self.enabled or api == counted:
            return
        limit = self.book.resolve(principal).apis.get(api)
        if limit is not None:
            self._hit([(limit, api)], principal, record)

    def _hit(self, hits: list[tuple[Limit, str]], principal: Principal, record: AuditRecord) -> None:
        who = owner_key(principal)
        each = [(limit, target, item) for limit, target in hits for item in limit.items]
        refused = self.counters.hit_all([(item, (rule.rule.id, who, target)) for rule, target, item in each])
        if refused is not None:
            limit, target, item = each[refused]
            wait = math.ceil(self.counters.reset_in(item, limit.rule.id, who, target))
            window = item.get_expiry()
            what = f"api {target}" if limit.rule.api else f"paths under {target}" if target else "requests"
            self._refused(record, limit.rule.id)
            raise RateLimited(
                f"Rate limit {limit.rule.id!r} reached: {item.amount} {what} per {_window(window)} for you"
                f"{self._scope_note()}; retry in {wait} s",
                limit_id=limit.rule.id,
                policy=f'"{limit.rule.id}";q={item.amount};w={window}',
                remaining=f'"{limit.rule.id}";r=0;t={wait}',
                retry_after_s=wait,
            )

    # --- caps ------------------------------------------------------------------------

    def cap(self, kind: str, principal: Principal) -> tuple[int, str] | None:
        """The cap of ``kind`` that applies to ``principal`` and its rule id, or None."""
        if not self.has_caps:
            return None
        return self.book.resolve(principal).caps.get(kind)

    def slot(self, kind: str, principal: Principal, record: AuditRecord | None) -> Callable[[], None]:
        """Hold one of ``principal``'s slots of ``kind``; returns its release (a no-op when uncapped).

        :raises RateLimited: every slot is held.
        """
        release = self.try_slot(kind, principal)
        if release is not None:
            return release
        cap, rule_id = self.cap(kind, principal) or (0, "")
        self._refused(record, rule_id)
        raise RateLimited(
            f"Cap {rule_id!r} reached: you have {cap} {_CAP_WHAT[kind]} at once ({kind})"
            f"{self._scope_note()}; retry when one has ended",
            limit_id=rule_id,
            policy=f'"{rule_id}";q={cap}',
            remaining=f'"{rule_id}";r=0',
            retry_after_s=CAP_RETRY_S,
        )

    def try_slot(self, kind: str, principal: Principal) -> Callable[[], None] | None:
        """Like :meth:`slot`, but None instead of an error when every slot is held."""
        assert kind in RATE_CAPS  # noqa: S101
        found = self.cap(kind, principal)
        if found is None:
            return _nothing
        return self.counters.acquire(f"{kind}:{owner_key(principal)}", found[0])

    # --- state -----------------------------------------------------------------------

    def _refused(self, record: AuditRecord | None, rule_id: str) -> None:
        if record is not None:
            record.rate_limit = rule_id
        if self.observer is not None:
            self.observer.rate_limited(rule_id)

    def _scope_note(self) -> str:
        if self.counters.redis is None:
            return " (counted by this gateway worker)"
        return "" if self.counters.shared_mode else " (counted by this gateway worker: Redis is unreachable)"

    def readiness(self) -> dict[str, Any] | None:
        """For ``/readyz``: how the counters are kept (None when no rule is configured)."""
        if not self.enabled:
            return None
        if self.counters.redis is None:
            return {"ok": True, "storage": "memory", "detail": "counted per worker process"}
        if self.counters.degraded is None:
            return {"ok": True, "storage": "redis"}
        return {
            "ok": True,
            "degraded": True,
            "storage": "memory",
            "detail": f"Redis unreachable ({self.counters.degraded}): counted per worker process",
        }


def _nothing() -> None:
    return None


def _window(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return "second" if seconds == 1 else f"{seconds} seconds"


class RateLimiting:
    """WSGI layer between authentication and dispatch: an authenticated principal's request
    counts against its every-request and path rules (public routes carry no principal)."""

    def __init__(self, app: WSGIApplication, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        scope = RequestScope.of(environ)
        if scope.principal is not None:
            route = scope.route.name if scope.route is not None else None
            api = _api_named(scope, environ) if route == "api" else None
            scope.rate_counted_api = self.limits.check_request(
                scope.principal, environ.get("PATH_INFO", ""), scope.audit, api
            )
        return self.app(environ, start_response)


def _api_named(scope: RequestScope, environ: WSGIEnvironment) -> str | None:
    """The API a call names in its path or query, so that its rule is counted in the same
    round trip as the request's (one given only in a POST body is counted by the endpoint)."""
    named = scope.route_values.get("api_name")
    if isinstance(named, str):
        return named
    query = environ.get("QUERY_STRING", "")
    if "api=" not in query:
        return None
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == "api":
            return unquote_plus(value)
    return None
