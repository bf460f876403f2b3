"""The gateway's identity assertion as the tests forge it (issue 25): a signer, the Airflow-side
settings, and the attacks each Airflow version must refuse.

The gateway itself does not sign assertions yet; these tests sign them with a test EC key and
serve its JWKS from a loopback server (``tests.support.keys.jwks_server``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.keys import KeyPair, ec_key

ROOT = Path(__file__).resolve().parent.parent.parent
AUTH_SRC = ROOT / "airflow-gateway-auth" / "src"
HEADER = "X-Gateway-Assertion"
ISSUER = "https://gateway.test"
AUDIENCE = "airflow-e2e"
ROLES = {"airflow-admins": "admin", "team-a": "op", "team-b": "op", "readers": "viewer"}
# team-b's op role reaches one DAG only (DAG-level access by group, Airflow 3).
DAG_ACCESS = {"team-a": ["gw_*"], "team-b": ["gw_slow"], "readers": ["gw_*"], "airflow-admins": ["*"]}
LEEWAY = 2


@dataclass
class Signer:
    """Signs assertions as the gateway would (ES256, ``kid`` in the header)."""

    key: KeyPair
    issuer: str = ISSUER
    audience: str = AUDIENCE

    def claims(self, sub: str, groups: list[str], ttl: int = 60, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "name": sub.title(),
            "groups": groups,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            **extra,
        }

    def sign(self, sub: str, groups: list[str], ttl: int = 60, **extra: Any) -> str:
        return self.key.sign(self.claims(sub, groups, ttl, **extra))


def settings_env(
    jwks_url: str, *, dag_access: bool = False, roles: dict[str, str] | None = None
) -> dict[str, str]:
    """``AIRFLOW__GATEWAY_AUTH__*`` for a test Airflow, and PYTHONPATH to the distribution's source.

    PYTHONPATH rather than ``pip install``: the Airflow venvs are cached and shared by every
    checkout and test run, so installing there would leak this branch's code into other runs;
    the variable reaches only the server's own process tree.
    """
    env = {
        "PYTHONPATH": str(AUTH_SRC),
        "AIRFLOW__GATEWAY_AUTH__ISSUER": ISSUER,
        "AIRFLOW__GATEWAY_AUTH__AUDIENCE": AUDIENCE,
        "AIRFLOW__GATEWAY_AUTH__JWKS_URL": jwks_url,
        "AIRFLOW__GATEWAY_AUTH__ROLES": json.dumps(ROLES if roles is None else roles),
        "AIRFLOW__GATEWAY_AUTH__LEEWAY": str(LEEWAY),
        "AIRFLOW__GATEWAY_AUTH__JWKS_REFETCH_INTERVAL": "1",
        "AIRFLOW__GATEWAY_AUTH__LOGIN_URL": "/admin/rest_api/login",
        "AIRFLOW__GATEWAY_AUTH__LOGOUT_URL": "/admin/rest_api/logout",
    }
    if dag_access:
        env["AIRFLOW__GATEWAY_AUTH__DAG_ACCESS"] = json.dumps(DAG_ACCESS)
    return env


def airflow3_env(jwks_url: str, **settings: Any) -> dict[str, str]:
    """An Airflow 3 api-server with ``GatewayAuthManager`` (``settings`` as for :func:`settings_env`)."""
    return {"AIRFLOW__CORE__AUTH_MANAGER": "airflow_gateway_auth.GatewayAuthManager",
            **settings_env(jwks_url, **settings)}  # fmt: skip


def airflow2_env(tmp: Path, jwks_url: str, **settings: Any) -> dict[str, str]:
    """An Airflow 2 webserver with the gateway's FAB pieces (UI and ``/api/v1``).

    Its own ``webserver_config.py`` (``[webserver] config_file``) in ``tmp``, so the shared
    home's file and the other tests' webservers are untouched.
    """
    config = tmp / "webserver_config.py"
    config.write_text("from airflow_gateway_auth.fab_config import *  # noqa: F403\n")
    return {
        "AIRFLOW__WEBSERVER__CONFIG_FILE": str(config),
        "AIRFLOW__API__AUTH_BACKENDS": "airflow_gateway_auth.fab_backend",
        **settings_env(jwks_url, **settings),
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """``alg: none``: a token with no signature at all."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def hs256(claims: dict[str, Any], key: KeyPair) -> str:
    """Algorithm confusion: HMAC-SHA256 keyed with the gateway's *public* key (PEM)."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    signing_input = f"{head}.{_b64(json.dumps(claims).encode())}"
    mac = hmac.new(key.public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def tampered(token: str, **changes: Any) -> str:
    """A real token whose payload is edited after signing (the signature no longer matches)."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def attacks(signer: Signer) -> dict[str, tuple[str | None, str | None]]:
    """Assertions that must be refused, by name: (assertion or None for none, the logged reason)."""
    op = ["team-a"]
    now = int(time.time())
    impostor = ec_key(signer.key.kid)  # same kid, another key: a forged signature
    stranger = ec_key("not-in-jwks")
    edited = tampered(signer.sign("reader", ["readers"]), sub="mallory", groups=["airflow-admins"])
    return {
        "no assertion": (None, None),
        "garbage": ("not-a-jwt", "malformed assertion"),
        "forged signature": (impostor.sign(signer.claims("mallory", op)), "bad signature"),
        "edited payload": (edited, "bad signature"),
        "alg none": (unsigned(signer.claims("mallory", op), signer.key.kid), "algorithm 'none' not accepted"),
        "alg HS256 with the public key": (
            hs256(signer.claims("mallory", op), signer.key),
            "algorithm 'HS256' not accepted",
        ),
        "expired": (
            signer.key.sign({**signer.claims("mallory", op), "iat": now - 120, "exp": now - 60}),
            "expired",
        ),
        "wrong aud": (Signer(signer.key, audience="another-airflow").sign("mallory", op), "wrong audience"),
        "wrong iss": (Signer(signer.key, issuer="https://evil.test").sign("mallory", op), "wrong issuer"),
        "key not in the JWKS": (
            stranger.sign(signer.claims("mallory", op)),
            "key 'not-in-jwks' not in the gateway's JWKS",
        ),
        "lifetime over 60 s": (signer.sign("mallory", op, ttl=3600), "lifetime 3600s over 60s"),
        "no sub": (
            signer.key.sign({k: v for k, v in signer.claims("mallory", op).items() if k != "sub"}),
            "missing claim sub",
        ),
        "no role for the groups": (signer.sign("mallory", ["nobody"]), "no role for 'mallory'"),
    }


def wait_for_log(read: Callable[[], str], line: str, within_s: float = 10.0) -> None:
    """Until the server's log has ``line`` (logs are written asynchronously)."""
    deadline = time.monotonic() + within_s
    while line not in read():
        assert time.monotonic() < deadline, f"not logged: {line!r}\n{read()[-3000:]}"
        time.sleep(0.1)
