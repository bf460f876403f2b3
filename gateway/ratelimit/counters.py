"""Where rate-limit counters and cap slots live: Redis (shared) or memory (this worker), with fallback.

Rates use the ``limits`` library (the engine behind Flask-Limiter and slowapi): its strategies
over its ``RedisStorage`` or ``MemoryStorage``.  Caps on what a principal holds at once (CLI
calls, jobs, streams) are not rates, and ``limits`` has no semaphore: they are Redis sorted
sets, one per (cap, principal), whose members are the held slots scored by their expiry, on
the same Redis connection.  A slot is taken by a Lua script (drop expired members, count,
add) using Redis's own clock, renewed by a thread of the worker that holds it every third of
``rate_limits.lease_timeout`` and removed when released: the slots of an instance that
crashed expire by themselves, so counts never leak for longer than the lease.

When Redis fails (an error, or no answer within ``rate_limits.timeout``), this worker counts
in memory instead: the limits become per worker, never off.  It says so in the log, on
``/readyz`` and in the ``airflow_gateway_rate_limit_storage_shared`` gauge, pings Redis every
second from a background thread (no request waits on a dead Redis meanwhile), and goes back
to the shared counters when Redis answers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from redis.exceptions import NoScriptError, RedisError

log = logging.getLogger("gateway.ratelimit")

STRATEGIES: dict[str, Callable[[Any], RateLimiter]] = {
    "sliding-window": SlidingWindowCounterRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
    "moving-window": MovingWindowRateLimiter,
}
#: Seconds between pings of an unreachable Redis.
RECHECK_S = 1.0
KEY_PREFIX = "airflow-gateway"

# KEYS[1]: the cap's sorted set; ARGV: member, cap, lease ms.  1 when the slot was taken.
_ACQUIRE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
# KEYS: sets; ARGV[1]: lease ms, ARGV[2..]: the member in each set.  Renews held slots.
_RENEW = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[1]), ARGV[i + 1])
  redis.call('PEXPIRE', key, tonumber(ARGV[1]))
end
return #KEYS
"""


class StorageObserver(Protocol):
    """Told when the shared storage is lost or back (the metrics)."""

    def rate_limit_storage(self, shared: bool) -> None: ...


class Counters:
    """Rate counters and cap slots for one worker process.

    :param url: ``memory://``, or a ``redis://`` URL to share them.
    :param strategy: a key of :data:`STRATEGIES`.
    :param timeout_s: the longest a Redis command may take.
    :param lease_s: how long a held slot lasts in Redis unrenewed.
    """

    def __init__(
        self,
        url: str,
        *,
        strategy: str = "sliding-window",
        timeout_s: float = 0.25,
        lease_s: float = 30.0,
        observer: StorageObserver | None = None,
    ) -> None:
        self.strategy = strategy
        self.local = STRATEGIES[strategy](MemoryStorage())
        self.redis: RedisStorage | None = None
        self.shared: RateLimiter | None = None
        if url != "memory://":
            self.redis = RedisStorage(
                url, wrap_exceptions=True, key_prefix=f"{KEY_PREFIX}:limits",
                socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            )  # fmt: skip
            self.shared = STRATEGIES[strategy](self.redis)
            client: Any = self.redis.get_connection()  # a redis.Redis
            self._acquire = client.register_script(_ACQUIRE)
            self._renew = client.register_script(_RENEW)
        self.lease_ms = int(lease_s * 1000)
        self.observer = observer
        #: Why the shared storage is not used right now, or None.
        self.degraded: str | None = None
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], None] = {}  # Redis slots this process holds: (key, member)
        self._local_slots: Counter[str] = Counter()
        self._threads_pid = 0  # the process whose background threads run (a fork has none)
        self._degraded_event = threading.Event()
        self._closed = threading.Event()

    @property
    def shared_mode(self) -> bool:
        """Whether counters are shared through Redis right now."""
        return self.redis is not None and self.degraded is None

    # --- rates -----------------------------------------------------------------------

    def hit_all(self, hits: Sequence[tuple[RateLimitItem, tuple[str, ...]]]) -> int | None:
        """Count one hit of each ``(item, ids)``; the index of the first over its limit, or None.

        Every hit is counted, refused or not (as Envoy's global rate limit counts every
        descriptor).  In Redis they share one round trip: a pipeline of the library's own
        scripts and keys (:meth:`_pipelined`), so a request under several rules costs about
        what one costs.
        """
        if self.shared is not None and self.degraded is None:
            try:
                results = self._pipelined(hits) if len(hits) > 1 else None
                if results is None:
                    results = [self.shared.hit(item, *ids) for item, ids in hits]
                return next((n for n, ok in enumerate(results) if not ok), None)
            except (StorageError, RedisError) as exc:
                self._degrade(exc)
        results = [self.local.hit(item, *ids) for item, ids in hits]
        return next((n for n, ok in enumerate(results) if not ok), None)

    def _pipelined(self, hits: Sequence[tuple[RateLimitItem, tuple[str, ...]]]) -> list[bool] | None:
        """The hits of the sliding and fixed window strategies in one pipeline; None for others.

        These are exactly the calls ``limits`` makes for one hit (``acquire_sliding_window_entry``
        and ``incr`` of its ``RedisStorage``: the same scripts, keys and arguments), sent as
        ``EVALSHA`` on one pipeline instead of one by one.  (A redis-py ``Script`` run on a
        pipeline first asks ``SCRIPT EXISTS``: a second round trip.)  A script Redis lost (a
        restart) is run again through its ``Script``, which loads it.
        tests/unit/test_rate_limits.py checks this against the library's own counting, so a
        change in ``limits`` fails there.
        """
        storage = self.redis
        if storage is None or self.strategy not in ("sliding-window", "fixed-window"):
            return None
        sliding = self.strategy == "sliding-window"
        script = storage.lua_acquire_sliding_window if sliding else storage.lua_incr_expire
        calls: list[tuple[list[str], list[int]]] = []
        for item, ids in hits:
            key = item.key_for(*ids)
            if sliding:
                keys = [storage._previous_window_key(key), storage._current_window_key(key)]
                calls.append(([storage.prefixed_key(k) for k in keys], [item.amount, item.get_expiry(), 1]))
            else:
                calls.append(([storage.prefixed_key(key)], [item.get_expiry(), 1]))
        client: Any = storage.get_connection()  # a redis.Redis
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        replies = pipe.execute(raise_on_error=False)
        for n, reply in enumerate(replies):
            if isinstance(reply, NoScriptError):
                replies[n] = script(*calls[n])
            elif isinstance(reply, Exception):
                raise reply
        if sliding:
            return [bool(reply) for reply in replies]
        return [int(reply) <= item.amount for reply, (item, _) in zip(replies, hits, strict=True)]

    def reset_in(self, item: RateLimitItem, *ids: str) -> float:
        """Seconds until ``item`` admits a hit again (for ``Retry-After``); at least 1."""
        now = time.time()
        limiter = self.shared if self.shared is not None and self.degraded is None else self.local
        try:
            reset = limiter.get_window_stats(item, *ids).reset_time
        except StorageError as exc:
            self._degrade(exc)
            reset = self.local.get_window_stats(item, *ids).reset_time
        return max(reset - now, 1.0)

    # --- cap slots -------------------------------------------------------------------

    def acquire(self, key: str, cap: int) -> Callable[[], None] | None:
        """Take one of ``cap`` slots of ``key``; its release, or None when all are taken."""
        if self.redis is not None and self.degraded is None:
            member = f"{os.getpid()}:{uuid.uuid4().hex}"
            redis_key = f"{KEY_PREFIX}:slots:{key}"
            try:
                taken = self._acquire(keys=[redis_key], args=[member, cap, self.lease_ms])
            except Exception as exc:  # redis-py's errors: the script is not wrapped by limits
                self._degrade(exc)
            else:
                if not taken:
                    return None
                self._start_threads()
                with self._lock:
                    self._held[(redis_key, member)] = None
                return self._redis_release(redis_key, member)
        with self._lock:
            if self._local_slots[key] >= cap:
                return None
            self._local_slots[key] += 1
        return self._local_release(key)

    def _redis_release(self, redis_key: str, member: str) -> Callable[[], None]:
        def release() -> None:
            with self._lock:
                if (redis_key, member) not in self._held:
                    return  # released already
                del self._held[(redis_key, member)]
            try:
                assert self.redis is not None  # noqa: S101
                client: Any = self.redis.get_connection()
                client.zrem(redis_key, member)
            except Exception:  # noqa: S110 - unreleased, the slot expires with its lease
                pass

        return release

    def _local_release(self, key: str) -> Callable[[], None]:
        done = threading.Event()

        def release() -> None:
            if done.is_set():
                return
            done.set()
            with self._lock:
                self._local_slots[key] -= 1
                if self._local_slots[key] <= 0:
                    del self._local_slots[key]

        return release

    def renew(self) -> int:
        """Renew every Redis slot this process holds (the renewal thread's work)."""
        with self._lock:
            held = list(self._held)
        if not held or self.redis is None:
            return 0
        try:
            return int(self._renew(keys=[k for k, _ in held], args=[self.lease_ms, *(m for _, m in held)]))
        except Exception as exc:
            self._degrade(exc)
            return 0

    # --- fallback and recovery -------------------------------------------------------

    def _degrade(self, exc: BaseException) -> None:
        cause = getattr(exc, "storage_error", None) or exc
        with self._lock:
            if self.degraded is not None:
                return
            self.degraded = f"{type(cause).__name__}: {cause}"
        log.error(
            "rate limits: Redis is unreachable (%s); counting per worker process in memory until it answers",
            self.degraded,
        )
        if self.observer is not None:
            self.observer.rate_limit_storage(False)
        self._start_threads()
        self._degraded_event.set()

    def recheck(self) -> bool:
        """Ping Redis; when it answers, use the shared counters again.  True when shared."""
        if self.degraded is None:
            return True
        assert self.redis is not None  # noqa: S101
        try:
            ok = bool(self.redis.get_connection().ping())
        except Exception:
            ok = False
        if ok:
            with self._lock:
                self.degraded = None
            log.warning("rate limits: Redis answers again; counters are shared again")
            if self.observer is not None:
                self.observer.rate_limit_storage(True)
        return ok

    def _start_threads(self) -> None:
        """The renewal and recovery thread of this process (again in a forked child)."""
        with self._lock:
            if self._threads_pid == os.getpid():
                return
            self._threads_pid = os.getpid()
        threading.Thread(target=self._background, name="gateway-ratelimit", daemon=True).start()

    def close(self) -> None:
        """Stop the background thread (held Redis slots then expire with their lease)."""
        self._closed.set()
        self._degraded_event.set()

    def _background(self) -> None:
        renew_every = max(self.lease_ms / 3000, 0.05)
        last_renew = time.monotonic()
        while not self._closed.is_set():
            if self.degraded is not None:
                if not self._closed.wait(RECHECK_S):
                    self.recheck()
                continue
            self._degraded_event.wait(min(renew_every, RECHECK_S))
            self._degraded_event.clear()
            if self._closed.is_set():
                return
            if self.degraded is None and time.monotonic() - last_renew >= renew_every:
                last_renew = time.monotonic()
                self.renew()
