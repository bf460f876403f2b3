"""Verifying the gateway's identity assertion (one module for Airflow 3 and 2).

The assertion is a JWT the gateway signs with its own asymmetric key (ES256 or EdDSA) and sends
in one header on every proxied request of an authenticated principal.  Claims:
``iss`` (the gateway), ``aud`` (this Airflow), ``sub`` (the principal's name), ``iat``/``exp``
(at most ``max_lifetime`` apart), ``jti``; optional ``name``, ``email``, ``groups``.

Public keys come from the gateway's JWKS (``/.well-known/jwks.json``, fetched with a timeout,
cached, refetched when a token names an unknown ``kid`` at most once per
``jwks_refetch_interval``) or from a JWKS file.  A refusal is logged with its reason, never
with the token.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from airflow_gateway_auth.settings import Settings

log = logging.getLogger("airflow_gateway_auth")

#: longer headers are refused unparsed (a real assertion is well under 2 KB)
MAX_TOKEN_BYTES = 8192
#: verified assertions kept (by digest) until they expire, so a principal's repeated
#: requests within one assertion's life cost one signature check
CACHE_SIZE = 4096


class Refused(Exception):
    """The assertion is not acceptable; ``reason`` is safe to log and to return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """Who the gateway says is calling."""

    username: str
    name: str
    email: str | None
    groups: tuple[str, ...]
    jti: str
    expires: float


def _short(value: object) -> str:
    """A header value for a log line: repr, at most 40 characters (attacker-controlled)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class KeySet:
    """The gateway's public keys by ``kid``, from its JWKS URL or a JWKS file."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._loaded_at: float | None = None  # last successful load
        self._tried_at: float | None = None  # last attempt (success or not)
        self._file_mtime: float | None = None
        self.fetches = 0

    def get(self, kid: str | None) -> jwt.PyJWK | None:
        """The key named ``kid`` (or the only key, for a token without ``kid``), loading as needed."""
        with self._lock:
            now = self._clock()
            stale = self._loaded_at is None or now - self._loaded_at >= self._settings.jwks_cache_seconds
            if stale and self._may_try(now):
                self._load(now)
            key = self._find(kid)
            if key is None and self._may_try(now):
                # A rotated-in key: refetch, at most once per refetch interval (bounded).
                self._load(now)
                key = self._find(kid)
            return key

    def _may_try(self, now: float) -> bool:
        return self._tried_at is None or now - self._tried_at >= self._settings.jwks_refetch_interval

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _load(self, now: float) -> None:
        self._tried_at = now
        source = self._settings.jwks_url or self._settings.jwks_file or ""
        try:
            document = self._read()
        except (OSError, ValueError) as exc:
            log.warning(
                "gateway JWKS not loaded from %s: %s (keeping %d known keys)", source, exc, len(self._keys)
            )
            return
        if document is None:  # the file did not change
            self._loaded_at = now
            return
        keys: dict[str | None, jwt.PyJWK] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError as exc:
                log.warning("gateway JWKS key %s skipped: %s", _short(entry.get("kid")), exc)
                continue
            if key.algorithm_name not in self._settings.algorithms:
                log.warning(
                    "gateway JWKS key %s skipped: algorithm %s", _short(entry.get("kid")), key.algorithm_name
                )
                continue
            keys[entry.get("kid")] = key
        self._keys = keys
        self._loaded_at = now
        self.fetches += 1
        log.info("gateway JWKS loaded from %s: %d keys", source, len(keys))

    def _read(self) -> Any:
        if self._settings.jwks_file:
            path = self._settings.jwks_file
            mtime = os.stat(path).st_mtime
            if mtime == self._file_mtime and self._keys:
                return None
            with open(path, encoding="utf-8") as fh:
                document = json.load(fh)
            self._file_mtime = mtime
            return document
        url = self._settings.jwks_url or ""
        if not url.startswith(("https://", "http://")):
            raise ValueError("jwks_url must be an http(s) URL")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=self._settings.jwks_timeout) as reply:  # noqa: S310
            return json.loads(reply.read(1 << 20))


class Verifier:
    """Checks assertions against :class:`Settings`; thread-safe; caches verified ones until expiry."""

    def __init__(self, settings: Settings, keys: KeySet | None = None) -> None:
        self.settings = settings
        self.keys = keys or KeySet(settings)
        self._cache: OrderedDict[bytes, Principal] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, token: str) -> Principal | None:
        """The principal of an assertion verified before and still valid, else None (no I/O)."""
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            principal = self._cache.get(digest)
            if principal is not None and time.time() > principal.expires + self.settings.leeway:
                del self._cache[digest]
                return None
            return principal

    def verify(self, token: str | None, where: str = "") -> Principal:
        """The principal of a valid assertion; raises :class:`Refused` (and logs why) otherwise."""
        try:
            if not token:
                raise Refused("no assertion")
            principal = self.cached(token) or self._verify(token)
        except Refused as refused:
            log.warning("gateway assertion refused%s: %s", f" on {where}" if where else "", refused.reason)
            raise
        with self._lock:
            self._cache[hashlib.sha256(token.encode()).digest()] = principal
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return principal

    def authenticate(self, token: str | None, where: str = "") -> tuple[Principal, str]:
        """The principal and its role (``[gateway_auth] roles``); refused when no group maps to one."""
        principal = self.verify(token, where)
        role = self.settings.roles.role_for(principal.groups)
        if role is None:
            log.warning(
                "gateway assertion refused%s: no role for %s (groups %s)",
                f" on {where}" if where else "",
                _short(principal.username),
                _short(list(principal.groups)),
            )
            raise Refused("no Airflow role for the principal's groups")
        return principal, role

    def _verify(self, token: str) -> Principal:
        s = self.settings
        if len(token) > MAX_TOKEN_BYTES:
            raise Refused("assertion too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Refused("malformed assertion") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in s.algorithms:
            raise Refused(f"algorithm {_short(alg)} not accepted")
        if kid is not None and not isinstance(kid, str):
            raise Refused("malformed kid")
        key = self.keys.get(kid)
        if key is None:
            raise Refused(f"key {_short(kid)} not in the gateway's JWKS")
        if key.algorithm_name != alg:
            raise Refused(f"algorithm {_short(alg)} does not match key {_short(kid)}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise Refused("expired") from None
        except jwt.InvalidAudienceError:
            raise Refused("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise Refused("wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise Refused("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Refused(f"missing claim {exc.claim}") from None
        except jwt.ImmatureSignatureError:
            raise Refused("issued in the future") from None
        except jwt.PyJWTError as exc:
            raise Refused(f"invalid assertion ({type(exc).__name__})") from None
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(exp, (int, float)) or not isinstance(iat, (int, float)):
            raise Refused("exp and iat must be numbers")
        if exp - iat > self.settings.max_lifetime:
            raise Refused(f"lifetime {exp - iat:.0f}s over {self.settings.max_lifetime}s")
        sub, jti = claims["sub"], claims["jti"]
        if not isinstance(sub, str) or not sub.strip() or len(sub) > 256:
            raise Refused("sub must be a non-empty name")
        if not isinstance(jti, str) or not jti:
            raise Refused("jti must be a string")
        groups = claims.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise Refused("groups must be a list of names")
        name, email = claims.get("name"), claims.get("email")
        return Principal(
            username=sub,
            name=name if isinstance(name, str) and name else sub,
            email=email if isinstance(email, str) and email else None,
            groups=tuple(groups),
            jti=jti,
            expires=float(exp),
        )
