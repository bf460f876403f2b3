"""JWT verification: algorithms, claims, key sources, the JWKS cache and the attack set."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from gateway.config.loader import ConfigError, load_config
from gateway.core.errors import KeyServiceUnavailable, Unauthorized
from gateway.identity.jwt import JwksCache, JwtVerifier
from tests.support.keys import JwksServer, KeyPair, ec_key, ed_key, jwks_server, rsa_key

HS_SECRET = "s" * 48
ISS, AUD = "https://idp.example.test/realms/ops", "airflow-gateway"


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "alice",
        "iss": ISS,
        "aud": AUD,
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": ["ops", "viewers"]},
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def verifier(env: dict[str, str], extra: dict[str, str] | None = None, **kwargs: Any) -> JwtVerifier:
    environ = {
        "AIRFLOW_GATEWAY__JWT__ISSUER": ISS,
        "AIRFLOW_GATEWAY__JWT__AUDIENCE": AUD,
        "AIRFLOW_GATEWAY__JWT__GROUPS_CLAIM": "realm_access.roles",
        **env,
    }
    return JwtVerifier(load_config(environ).jwt, extra or {}, **kwargs)


@pytest.fixture(scope="module")
def keys() -> dict[str, KeyPair]:
    """One key of each family, generated once for the module."""
    return {
        "rsa": rsa_key("rsa-1"),
        "rsa2": rsa_key("rsa-2"),
        "ec": ec_key("ec-1"),
        "ed": ed_key("ed-1"),
        "ps": rsa_key("ps-1", alg="PS256"),
    }


@pytest.fixture()
def jwks(keys: dict[str, KeyPair]) -> Iterator[JwksServer]:
    """A loopback JWKS serving the RSA, EC, Ed25519 and PS256 public keys."""
    with jwks_server([keys["rsa"], keys["ec"], keys["ed"], keys["ps"]]) as server:
        yield server


def jwks_verifier(
    server: JwksServer, algs: str = "RS256,PS256,ES256,EdDSA", interval: float = 30
) -> JwtVerifier:
    return verifier(
        {
            "AIRFLOW_GATEWAY__JWT__ALGORITHMS": algs,
            "AIRFLOW_GATEWAY__JWT__JWKS_URL": server.url,
            "AIRFLOW_GATEWAY__JWT__JWKS_MIN_REFRESH_INTERVAL": str(interval),
        }
    )


@pytest.mark.parametrize("family", ["rsa", "ec", "ed", "ps"])
def test_each_key_family_verifies_through_jwks(
    keys: dict[str, KeyPair], jwks: JwksServer, family: str
) -> None:
    """RS256, ES256, EdDSA and PS256 tokens verify against keys fetched from a JWKS."""
    principal = jwks_verifier(jwks).verify(keys[family].sign(claims()))
    assert principal.name == "alice" and principal.method == "jwt"
    assert principal.groups == {"ops", "viewers"}  # nested claim mapping


def test_static_key_from_file_and_from_env(keys: dict[str, KeyPair], tmp_path: Path) -> None:
    """A PEM key file and an HS secret from an environment variable both work."""
    pem = tmp_path / "pub.pem"
    pem.write_bytes(keys["ec"].public_pem)
    by_file = verifier(
        {"AIRFLOW_GATEWAY__JWT__ALGORITHMS": "ES256", "AIRFLOW_GATEWAY__JWT__KEY_FILE": str(pem)}
    )
    assert by_file.verify(keys["ec"].sign(claims())).name == "alice"
    by_env = verifier(
        {"AIRFLOW_GATEWAY__JWT__ALGORITHMS": "HS256", "AIRFLOW_GATEWAY__JWT__KEY_ENV": "GW_SECRET"},
        {"GW_SECRET": HS_SECRET},
    )
    assert by_env.verify(jwt.encode(claims(), HS_SECRET, algorithm="HS256")).name == "alice"


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _attack(kind: str, keys: dict[str, KeyPair]) -> str:
    rsa = keys["rsa"]
    now = int(time.time())
    if kind == "alg-none":
        return f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': rsa.kid})}.{_b64(claims())}."
    if kind == "hs256-with-rsa-public-key":
        import hashlib
        import hmac

        head = _b64({"alg": "HS256", "typ": "JWT", "kid": rsa.kid})
        body = _b64(claims())
        sig = hmac.new(rsa.public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(sig)}"
    if kind == "tampered-payload":
        head, _, sig = rsa.sign(claims()).split(".")
        return f"{head}.{_b64(claims(sub='admin'))}.{sig}"
    table: dict[str, dict[str, Any]] = {
        "expired": claims(exp=now - 120, iat=now - 600),
        "nbf-in-future": claims(nbf=now + 600),
        "wrong-iss": claims(iss="https://evil.test"),
        "wrong-aud": claims(aud="someone-else"),
        "missing-exp": claims(exp=None),
        "no-subject": claims(sub=None),
    }
    if kind in table:
        return rsa.sign(table[kind])
    if kind == "unknown-kid":
        return rsa_key("rogue").sign(claims())
    if kind == "garbage":
        return "not.a.jwt"
    raise AssertionError(kind)


ATTACKS = [
    "alg-none",
    "hs256-with-rsa-public-key",
    "tampered-payload",
    "expired",
    "nbf-in-future",
    "wrong-iss",
    "wrong-aud",
    "missing-exp",
    "no-subject",
    "unknown-kid",
    "garbage",
]


@pytest.mark.parametrize("kind", [pytest.param(k, id=k) for k in ATTACKS])
def test_attack_set_is_refused_with_401(keys: dict[str, KeyPair], jwks: JwksServer, kind: str) -> None:
    """Every forged, stale or mis-addressed token is a 401 invalid_token that does not echo the token."""
    token = _attack(kind, keys)
    with pytest.raises(Unauthorized) as info:
        jwks_verifier(jwks, algs="RS256").verify(token)
    assert info.value.code == 401
    assert 'error="invalid_token"' in info.value.get_response().headers["WWW-Authenticate"]
    assert token not in info.value.get_response().get_data(as_text=True)


@pytest.mark.parametrize(
    "kind",
    [pytest.param(k, id=k) for k in ["alg-none", "hs256-with-rsa-public-key", "expired", "missing-exp"]],
)
def test_attack_set_with_a_static_pem_key(keys: dict[str, KeyPair], tmp_path: Path, kind: str) -> None:
    """The same attacks fail when the RSA public key comes from a file rather than a JWKS."""
    pem = tmp_path / "rsa.pem"
    pem.write_bytes(keys["rsa"].public_pem)
    v = verifier({"AIRFLOW_GATEWAY__JWT__ALGORITHMS": "RS256", "AIRFLOW_GATEWAY__JWT__KEY_FILE": str(pem)})
    with pytest.raises(Unauthorized):
        v.verify(_attack(kind, keys))


def test_leeway_accepts_slightly_expired_tokens(keys: dict[str, KeyPair], jwks: JwksServer) -> None:
    """A token expired 5 s ago passes with the default 10 s leeway; 60 s ago does not."""
    now = int(time.time())
    v = jwks_verifier(jwks)
    assert v.verify(keys["rsa"].sign(claims(exp=now - 5))).name == "alice"
    with pytest.raises(Unauthorized):
        v.verify(keys["rsa"].sign(claims(exp=now - 60)))


def test_algorithm_not_configured_is_refused(keys: dict[str, KeyPair], jwks: JwksServer) -> None:
    """An ES256 token is refused when only RS256 is configured, although the JWKS has its key."""
    with pytest.raises(Unauthorized):
        jwks_verifier(jwks, algs="RS256").verify(keys["ec"].sign(claims()))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"AIRFLOW_GATEWAY__JWT__ALGORITHMS": "none"}, "never 'none'", id="alg-none"),
        pytest.param(
            {"AIRFLOW_GATEWAY__JWT__ALGORITHMS": "HS256,RS256"}, "cannot be mixed", id="hs-rs-mixed"
        ),
        pytest.param({"AIRFLOW_GATEWAY__JWT__ALGORITHMS": "RS256"}, "exactly one of", id="no-key"),
        pytest.param(
            {
                "AIRFLOW_GATEWAY__JWT__ALGORITHMS": "HS256",
                "AIRFLOW_GATEWAY__JWT__JWKS_URL": "http://127.0.0.1:9/j",
            },
            "JWKS",
            id="hs-from-jwks",
        ),
        pytest.param(
            {
                "AIRFLOW_GATEWAY__JWT__ALGORITHMS": "RS256",
                "AIRFLOW_GATEWAY__JWT__JWKS_URL": "http://127.0.0.1:9/j",
                "AIRFLOW_GATEWAY__JWT__JWKS_TIMEOUT": "60",
            },
            "at most 30",
            id="timeout",
        ),
    ],
)
def test_bad_jwt_config_fails_at_start_up(env: dict[str, str], message: str) -> None:
    """Unsafe or incomplete [jwt] settings are refused when the config is loaded."""
    with pytest.raises(ConfigError, match=message):
        load_config(env)


def test_rsa_public_key_cannot_be_an_hs_secret(keys: dict[str, KeyPair], tmp_path: Path) -> None:
    """Configuring HS256 with a PEM public key fails at start-up (algorithm confusion)."""
    pem = tmp_path / "rsa.pem"
    pem.write_bytes(keys["rsa"].public_pem)
    with pytest.raises(ConfigError, match="cannot be used for HS256"):
        verifier({"AIRFLOW_GATEWAY__JWT__ALGORITHMS": "HS256", "AIRFLOW_GATEWAY__JWT__KEY_FILE": str(pem)})


def test_key_rotation_mid_test_is_picked_up_on_unknown_kid(
    keys: dict[str, KeyPair], jwks: JwksServer
) -> None:
    """After the issuer rotates to a new key, the first token with the new kid triggers one refetch."""
    v = jwks_verifier(jwks, algs="RS256", interval=0.2)
    assert v.verify(keys["rsa"].sign(claims())).name == "alice"
    assert jwks.fetches == 1
    jwks.keys = [keys["rsa2"].jwk]  # rotation: old key withdrawn, new key published
    time.sleep(0.25)
    assert v.verify(keys["rsa2"].sign(claims(sub="bob"))).name == "bob"
    assert jwks.fetches == 2


def test_unknown_kid_flood_fetches_at_most_once_per_window(
    keys: dict[str, KeyPair], jwks: JwksServer
) -> None:
    """100 tokens with made-up kids cause at most one JWKS fetch per throttle window."""
    clock = [1000.0]
    cache = JwksCache(
        jwks.url, timeout_s=2, lifespan_s=300, min_refresh_interval_s=30, clock=lambda: clock[0]
    )
    v = verifier(
        {"AIRFLOW_GATEWAY__JWT__ALGORITHMS": "RS256", "AIRFLOW_GATEWAY__JWT__JWKS_URL": jwks.url}, jwks=cache
    )
    rogue = rsa_key("rogue-base")
    for i in range(100):
        with pytest.raises(Unauthorized):
            v.verify(rogue.sign(claims(), kid=f"kid-{i}"))
        clock[0] += 0.1  # 10 s of flood in total, inside one 30 s window
    assert jwks.fetches == 1
    clock[0] += 30
    for i in range(20):
        with pytest.raises(Unauthorized):
            v.verify(rogue.sign(claims(), kid=f"next-{i}"))
    assert jwks.fetches == 2
    assert v.verify(keys["rsa"].sign(claims())).name == "alice"  # known kids never need a fetch
    assert jwks.fetches == 2


def test_failed_refresh_keeps_the_last_good_key_set(keys: dict[str, KeyPair], jwks: JwksServer) -> None:
    """When the JWKS starts failing after its lifespan, cached keys keep verifying."""
    clock = [0.0]
    cache = JwksCache(jwks.url, timeout_s=2, lifespan_s=60, min_refresh_interval_s=5, clock=lambda: clock[0])
    v = verifier(
        {"AIRFLOW_GATEWAY__JWT__ALGORITHMS": "RS256", "AIRFLOW_GATEWAY__JWT__JWKS_URL": jwks.url}, jwks=cache
    )
    assert v.verify(keys["rsa"].sign(claims())).name == "alice"
    jwks.fail = True
    clock[0] = 120.0  # past the lifespan: a refresh is attempted and fails
    assert v.verify(keys["rsa"].sign(claims())).name == "alice"
    assert jwks.fetches == 2


def test_jwks_unreachable_without_cached_keys_is_503(keys: dict[str, KeyPair]) -> None:
    """No key set was ever fetched and the JWKS does not answer: 503, not 401."""
    from tests.support.servers import free_port

    url = f"http://127.0.0.1:{free_port()}/jwks"
    v = verifier(
        {
            "AIRFLOW_GATEWAY__JWT__ALGORITHMS": "RS256",
            "AIRFLOW_GATEWAY__JWT__JWKS_URL": url,
            "AIRFLOW_GATEWAY__JWT__JWKS_TIMEOUT": "1",
        }
    )
    with pytest.raises(KeyServiceUnavailable) as info:
        v.verify(keys["rsa"].sign(claims()))
    assert info.value.code == 503
