"""Who is calling, told to Airflow: a short-lived JWT signed with the gateway's own key.

Every proxied request from an authenticated principal carries an *identity assertion*
(``X-Gateway-Assertion`` by default) that Airflow's side (``airflow-gateway-auth/``) verifies
with the public keys the gateway serves at ``/.well-known/jwks.json``.

* **Keys** (:class:`KeyRing`): ES256 (P-256).  A configured PEM file, or one generated into
  the state directory (mode 0600) by whichever worker gets there first: it is created under a
  temporary name and linked into place, so every worker of every restart signs with the same
  key.  A *previous* key (after ``airflow-gateway rotate-assertion-key``) is published but no
  longer signs, so assertions in flight during a rotation still verify.
* **Cost** (:class:`AssertionSigner`): signing is ~0.1 ms of ECDSA, so an assertion is kept
  per principal and reused for most of its life (until a quarter of it is left); the
  per-request cost is a dictionary look-up.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from gateway.identity.principal import Principal

ALGORITHM = "ES256"
CURRENT_NAME = "assertion-key.pem"
PREVIOUS_NAME = "assertion-key.previous.pem"


class AssertionKeyError(ValueError):
    """A key file is missing, unreadable or not a P-256 private key; the message names it."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One private key and its public JWK (``kid`` is the RFC 7638 thumbprint)."""

    private: ec.EllipticCurvePrivateKey
    kid: str
    public_jwk: dict[str, Any]

    @classmethod
    def from_pem(cls, data: bytes, origin: str) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise AssertionKeyError(f"{origin}: not a PEM private key ({exc})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise AssertionKeyError(f"{origin}: expected a P-256 (ES256) private key")
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        kid = thumbprint(jwk)
        return cls(key, kid, {**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM})


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of an EC public JWK, base64url without padding."""
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def generate_pem() -> bytes:
    """A new P-256 private key as unencrypted PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_once(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data`` (0600) unless it exists; safe against concurrent writers."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)  # atomic, and fails rather than replace: the first writer wins
    finally:
        temp.unlink(missing_ok=True)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AssertionKeyError(f"{path}: {exc.strerror or type(exc).__name__}") from None


class KeyRing:
    """The key that signs and the keys that are published."""

    def __init__(self, current: SigningKey, previous: Sequence[SigningKey] = ()) -> None:
        self.current = current
        self.published = (current, *(k for k in previous if k.kid != current.kid))

    @classmethod
    def load(cls, *, key_dir: Path, key_file: Path | None = None) -> KeyRing:
        """The configured key (``key_file``), or the state directory's, generated when absent.

        A previous key sits beside the current one (``assertion-key.previous.pem``) after a
        rotation, and is published until the next rotation replaces it.
        """
        if key_file is not None:
            current = SigningKey.from_pem(_read(key_file), str(key_file))
            previous_path = key_file.with_name(key_file.stem + ".previous.pem")
        else:
            path = key_dir / CURRENT_NAME
            if not path.exists():
                _write_once(path, generate_pem())
            current = SigningKey.from_pem(_read(path), str(path))
            previous_path = key_dir / PREVIOUS_NAME
        previous = []
        if previous_path.exists():
            previous.append(SigningKey.from_pem(_read(previous_path), str(previous_path)))
        return cls(current, previous)

    @staticmethod
    def rotate(key_dir: Path) -> str:
        """Make the current key the previous one and generate a new current key; its ``kid``.

        Running gateways sign with the old key until they restart; both are published by every
        gateway that has loaded the new pair, so a rolling restart verifies throughout.
        """
        current, previous = key_dir / CURRENT_NAME, key_dir / PREVIOUS_NAME
        if current.exists():
            os.replace(current, previous)
        _write_once(current, generate_pem())
        return SigningKey.from_pem(_read(current), str(current)).kid

    def jwks(self) -> dict[str, Any]:
        """The public keys, as served at ``/.well-known/jwks.json``."""
        return {"keys": [dict(key.public_jwk) for key in self.published]}


class AssertionSigner:
    """Signs identity assertions and keeps each principal's for most of its life.

    :param issuer: the ``iss`` claim (the gateway's public URL or a name agreed with Airflow).
    :param audience: the ``aud`` claim Airflow's side expects.
    :param lifetime_s: the assertion's life (at most 60 s).
    :param cache_size: principals kept; the least recently used is dropped beyond it.
    """

    def __init__(
        self,
        keys: KeyRing,
        *,
        issuer: str,
        audience: str,
        lifetime_s: float = 60.0,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= lifetime_s <= 60:
            raise ValueError("an assertion lives from 1 to 60 seconds")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.lifetime_s = lifetime_s
        # Reused while more than a quarter of the life is left: Airflow's side gets at least
        # 15 s of validity (at the default), which covers a slow upstream and clock skew.
        self._reuse_until = lifetime_s * 0.75
        self._cache: OrderedDict[tuple[Any, ...], tuple[float, str]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._clock = clock

    def assertion_for(self, principal: Principal, *, email: str | None = None) -> str:
        """The signed assertion for ``principal`` (a cached one while it is fresh enough)."""
        key = (principal.name, principal.method, principal.groups, email)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now < hit[0]:
                self._cache.move_to_end(key)
                return hit[1]
        token = self.sign(principal, email=email, now=now)
        with self._lock:
            self._cache[key] = (now + self._reuse_until, token)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return token

    def sign(self, principal: Principal, *, email: str | None = None, now: float | None = None) -> str:
        """A new assertion, never cached."""
        issued = int(now if now is not None else self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": principal.name,
            "name": principal.name,
            "auth_method": principal.method,
            "groups": sorted(principal.groups),
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(self.lifetime_s),
            "jti": secrets.token_urlsafe(16),
        }
        if email:
            claims["email"] = email
        current = self.keys.current
        return jwt.encode(claims, current.private, algorithm=ALGORITHM, headers={"kid": current.kid})


#: Airflow's roles, lowest first (the ones airflow-gateway-auth maps groups to).
AIRFLOW_ROLES = ("viewer", "user", "op", "admin")


def airflow_role(groups: frozenset[str], mapping: dict[str, str]) -> str | None:
    """The role Airflow's side gives these groups: the highest mapped one, ``*`` for everyone;
    None when nothing maps (Airflow then refuses the principal)."""
    roles = [mapping[g] for g in (*groups, "*") if g in mapping]
    return max(roles, key=AIRFLOW_ROLES.index) if roles else None


class AssertionHeader:
    """The header Airflow reads the assertion from: stripped from what clients send, and set
    from the request's principal.

    :param name: the header name (``assertion.header``).
    :param signer: None when assertions are off (the header is still stripped).
    """

    def __init__(self, name: str, signer: AssertionSigner | None) -> None:
        self.name = name
        self.environ_key = "HTTP_" + name.upper().replace("-", "_")
        self.signer = signer

    def value_for(self, principal: Principal | None) -> str | None:
        """The assertion for ``principal``; None for nobody or ``anonymous``."""
        if self.signer is None or principal is None or principal.method == "anonymous":
            return None
        email = principal.claims.get("email")
        return self.signer.assertion_for(principal, email=email if isinstance(email, str) else None)
