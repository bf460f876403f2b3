"""JWT bearer tokens (PyJWT): one verifier built from ``[jwt]``, keys from a file, env or JWKS.

The algorithm list comes from config only; the token header's ``alg`` is merely checked
against it.  ``exp`` is always required (PyJWT accepts tokens without it otherwise).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from jwt.algorithms import get_default_algorithms

from gateway.config.loader import ConfigError, JwtConfig
from gateway.core.errors import KeyServiceUnavailable, Unauthorized
from gateway.identity.principal import Principal, claim_values

log = logging.getLogger("gateway.identity.jwt")

MAX_JWKS_BYTES = 512 * 1024
# Which JWK key types may verify which algorithms (never "oct": no shared secrets from a URL).
_KTY_FOR = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


class KeysUnavailable(Exception):
    """No key set could ever be fetched."""


class JwksCache:
    """A JWKS fetched with a short timeout, cached for ``lifespan_s``.

    Unlike :class:`jwt.PyJWKClient` (30 s default timeout, an unknown ``kid`` refetches
    every time, a failed fetch empties the cache) this one refetches for an unknown
    ``kid`` at most once per ``min_refresh_interval_s`` and keeps the last good key set
    when a fetch fails.  One instance per worker process; thread-safe.

    :param url: the JWKS URL.
    :param timeout_s: connect and read timeout of one fetch.
    :param lifespan_s: how long a fetched key set is used before it is refreshed.
    :param min_refresh_interval_s: the least time between two fetch attempts, whatever
        triggers them (expiry or an unknown ``kid``).
    :param clock: monotonic time source (tests).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        lifespan_s: float,
        min_refresh_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.lifespan_s = lifespan_s
        self.min_refresh_interval_s = min_refresh_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, Any]] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self.fetches = 0

    def _fetch(self) -> dict[str, dict[str, Any]]:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})  # noqa: S310 - http(s) only, checked in config
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
            body = response.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError("JWKS document too large")
        doc = json.loads(body)
        keys: dict[str, dict[str, Any]] = {}
        for jwk in doc.get("keys", []) if isinstance(doc, dict) else []:
            if (
                isinstance(jwk, dict)
                and jwk.get("use", "sig") == "sig"
                and jwk.get("kty") in {"RSA", "EC", "OKP"}
            ):
                keys[str(jwk.get("kid", ""))] = jwk
        return keys

    def _refresh(self, now: float) -> None:
        """Fetch unless one was attempted within the throttle window; keep the old set on failure."""
        if self._attempted_at is not None and now - self._attempted_at < self.min_refresh_interval_s:
            return
        self._attempted_at = now
        self.fetches += 1
        try:
            keys = self._fetch()
        except (OSError, ValueError, urllib.error.URLError) as exc:
            log.warning(
                "JWKS fetch from %s failed (%s); keeping the last good key set", self.url, type(exc).__name__
            )
            return
        self._keys, self._fetched_at = keys, now

    def get(self, kid: str | None) -> dict[str, Any] | None:
        """The JWK for ``kid`` (or the only key when the token names none), None if unknown.

        :raises KeysUnavailable: when no key set was ever fetched.
        """
        with self._lock:
            now = self._clock()
            if self._keys is None or now - self._fetched_at >= self.lifespan_s:
                self._refresh(now)
            if self._keys is None:
                raise KeysUnavailable(self.url)
            found = self._pick(kid)
            if found is None:
                # Maybe the issuer rotated keys: refetch, throttled, so a flood of made-up
                # kids costs at most one fetch per window.
                self._refresh(now)
                found = self._pick(kid)
            return found

    def _pick(self, kid: str | None) -> dict[str, Any] | None:
        assert self._keys is not None  # noqa: S101 - checked by the caller
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)


def _static_key(cfg: JwtConfig, environ: Mapping[str, str]) -> Any:
    """Read the key from the file or environment variable, checked against every algorithm.

    Returns the prepared key (a key object, or the HS secret) so that no request parses PEM.
    """
    if cfg.key_file is not None:
        try:
            key: str | bytes = cfg.key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"jwt.key_file {str(cfg.key_file)!r}: cannot read ({exc.strerror})") from None
    else:
        assert cfg.key_env is not None  # noqa: S101 - config guarantees one key source
        value = environ.get(cfg.key_env)
        if not value:
            raise ConfigError(f"jwt.key_env: environment variable {cfg.key_env} is not set or empty")
        key = value.encode()
    if isinstance(key, bytes) and key.strip().startswith(b"-----BEGIN"):
        key = key.strip()
    elif cfg.key_file is not None and isinstance(key, bytes):
        key = key.rstrip(b"\r\n")  # `echo secret > file` must not make the newline part of the secret
    for alg in cfg.algorithms:
        try:
            get_default_algorithms()[alg].prepare_key(key)
        except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
            # e.g. a PEM public key configured for HS256: refused by PyJWT, and by us at start-up.
            raise ConfigError(
                f"jwt: the configured key cannot be used for {alg}: {type(exc).__name__}"
            ) from None
        if alg.startswith("HS") and len(key) < 32:
            raise ConfigError(f"jwt: an {alg} secret must be at least 32 bytes (value not shown)")
    # All configured algorithms share one key family (checked in config), so one prepared key fits all.
    return get_default_algorithms()[cfg.algorithms[0]].prepare_key(key)


class JwtVerifier:
    """Verifies bearer JWTs and turns them into principals.

    :param cfg: the ``[jwt]`` section (algorithms set).
    :param environ: where ``jwt.key_env`` is read (once, here).
    :param jwks: a ready cache (tests); built from ``cfg.jwks_url`` otherwise.
    """

    def __init__(self, cfg: JwtConfig, environ: Mapping[str, str], *, jwks: JwksCache | None = None) -> None:
        self.cfg = cfg
        self.jwks = jwks
        self._key: Any = None
        self._jwk_cache: dict[tuple[int, str], tuple[dict[str, Any], jwt.PyJWK]] = {}
        if cfg.jwks_url and jwks is None:
            self.jwks = JwksCache(
                cfg.jwks_url,
                timeout_s=cfg.jwks_timeout,
                lifespan_s=cfg.jwks_lifespan,
                min_refresh_interval_s=cfg.jwks_min_refresh_interval,
            )
        elif not cfg.jwks_url:
            self._key = _static_key(cfg, environ)
        self._options: dict[str, Any] = {
            "require": ["exp", *cfg.required_claims],
            "verify_signature": True,
            "verify_exp": True,
            "verify_nbf": True,
            "verify_iat": True,
            "verify_aud": True,  # a token with "aud" is refused unless jwt.audience is set
            "verify_iss": True,
        }

    def _key_for(self, token: str) -> Any:
        if self._key is not None:
            return self._key
        assert self.jwks is not None  # noqa: S101 - one of the two is set in __init__
        header = jwt.get_unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self.cfg.algorithms:
            raise jwt.InvalidAlgorithmError("algorithm not allowed")
        if kid is not None and not isinstance(kid, str):
            raise jwt.InvalidTokenError("bad kid")
        try:
            jwk = self.jwks.get(kid)
        except KeysUnavailable:
            raise KeyServiceUnavailable() from None
        if jwk is None:
            raise jwt.InvalidTokenError("unknown kid")
        if jwk.get("kty") != _KTY_FOR.get(alg[:2]) or jwk.get("alg", alg) != alg:
            raise jwt.InvalidAlgorithmError("key type does not fit the algorithm")
        # Bind the key to the (allowed, kty-compatible) algorithm, so an RSA JWK without
        # "alg" can serve PS256 as well as RS256.  Parsed once per key set, not per request;
        # the JWK dict is kept in the entry so its id() cannot be reused while cached.
        cached = self._jwk_cache.get((id(jwk), alg))
        if cached is None or cached[0] is not jwk:
            if len(self._jwk_cache) > 64:
                self._jwk_cache.clear()
            cached = (jwk, jwt.PyJWK(jwk, algorithm=alg))
            self._jwk_cache[(id(jwk), alg)] = cached
        return cached[1]

    def verify(self, token: str) -> Principal:
        """The principal for a valid token.

        :raises Unauthorized: any invalid token (fixed message; the token is never echoed).
        :raises KeyServiceUnavailable: the JWKS cannot be fetched and none is cached.
        """
        try:
            key = self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self.cfg.algorithms),
                audience=list(self.cfg.audience) or None,
                issuer=self.cfg.issuer,
                leeway=self.cfg.leeway,
                options=self._options,  # type: ignore[arg-type]
            )
        except (jwt.InvalidTokenError, jwt.PyJWKError) as exc:
            log.info("JWT refused: %s", type(exc).__name__)
            raise Unauthorized("Invalid token", error="invalid_token") from None
        subject = claim_values(claims, self.cfg.subject_claim)
        if len(subject) != 1 or not subject[0]:
            raise Unauthorized("Invalid token", error="invalid_token")
        groups = claim_values(claims, self.cfg.groups_claim) if self.cfg.groups_claim else ()
        return Principal(name=subject[0], method="jwt", groups=frozenset(groups), claims=claims)
