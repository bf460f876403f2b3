"""The identity assertion: keys generated once and shared, rotation, JWKS, claims and the cache."""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path

import jwt
import pytest
from jwt.algorithms import ECAlgorithm

from gateway.identity.assertion import (
    ALGORITHM,
    AssertionKeyError,
    AssertionSigner,
    KeyRing,
    generate_pem,
    thumbprint,
)
from gateway.identity.principal import Principal

ADA = Principal("ada", "oidc", frozenset({"team-a", "airflow-admins"}))


def verify(token: str, ring: KeyRing, audience: str = "airflow") -> dict[str, object]:
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in ring.jwks()["keys"] if k["kid"] == kid)
    key = ECAlgorithm.from_jwk(json.dumps(jwk))
    return jwt.decode(token, key, algorithms=[ALGORITHM], audience=audience, issuer="airflow-gateway")


def test_the_key_is_generated_once_0600_and_shared_by_concurrent_workers(tmp_path: Path) -> None:
    rings: list[KeyRing] = []
    threads = [
        threading.Thread(target=lambda: rings.append(KeyRing.load(key_dir=tmp_path))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({ring.current.kid for ring in rings}) == 1
    path = tmp_path / "assertion-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["assertion-key.pem"]  # no temporary left


def test_rotation_publishes_both_keys_and_signs_with_the_new_one(tmp_path: Path) -> None:
    old = KeyRing.load(key_dir=tmp_path)
    old_token = AssertionSigner(old, issuer="airflow-gateway", audience="airflow").sign(ADA)
    new_kid = KeyRing.rotate(tmp_path)
    new = KeyRing.load(key_dir=tmp_path)
    assert new.current.kid == new_kid != old.current.kid
    assert [k["kid"] for k in new.jwks()["keys"]] == [new_kid, old.current.kid]
    assert verify(old_token, new)["sub"] == "ada"  # in flight during the rotation: still valid
    token = AssertionSigner(new, issuer="airflow-gateway", audience="airflow").sign(ADA)
    assert jwt.get_unverified_header(token)["kid"] == new_kid


def test_the_jwks_holds_public_keys_only(tmp_path: Path) -> None:
    jwks = KeyRing.load(key_dir=tmp_path).jwks()
    (key,) = jwks["keys"]
    assert set(key) == {"kty", "crv", "x", "y", "kid", "use", "alg"}  # no "d"
    assert key["kid"] == thumbprint(key) and key["alg"] == "ES256"


def test_a_configured_key_file_is_used_and_a_wrong_one_named(tmp_path: Path) -> None:
    path = tmp_path / "gw.pem"
    path.write_bytes(generate_pem())
    ring = KeyRing.load(key_dir=tmp_path / "state", key_file=path)
    assert not (tmp_path / "state").exists()  # nothing generated
    (tmp_path / "rsa.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(AssertionKeyError, match="rsa.pem"):
        KeyRing.load(key_dir=tmp_path, key_file=tmp_path / "rsa.pem")
    with pytest.raises(AssertionKeyError, match="missing.pem"):
        KeyRing.load(key_dir=tmp_path, key_file=tmp_path / "missing.pem")
    assert ring.current.kid


def test_claims_are_short_lived_and_name_the_principal(tmp_path: Path) -> None:
    signer = AssertionSigner(KeyRing.load(key_dir=tmp_path), issuer="airflow-gateway", audience="airflow")
    claims = verify(signer.sign(ADA, email="ada@example.org"), signer.keys)
    assert claims["sub"] == claims["name"] == "ada"
    assert claims["groups"] == ["airflow-admins", "team-a"]
    assert claims["email"] == "ada@example.org" and claims["auth_method"] == "oidc"
    assert claims["exp"] - claims["iat"] == 60  # type: ignore[operator]
    assert len(str(claims["jti"])) >= 16
    with pytest.raises(ValueError):
        AssertionSigner(signer.keys, issuer="i", audience="a", lifetime_s=61)


def test_an_assertion_is_reused_for_three_quarters_of_its_life_then_renewed(tmp_path: Path) -> None:
    now = [time.time()]
    signer = AssertionSigner(
        KeyRing.load(key_dir=tmp_path), issuer="airflow-gateway", audience="airflow", clock=lambda: now[0]
    )
    first = signer.assertion_for(ADA)
    now[0] += 44.9
    assert signer.assertion_for(ADA) == first
    now[0] += 0.2  # 45.1 s: less than a quarter of the life is left
    assert signer.assertion_for(ADA) != first
    other = Principal("ada", "oidc", frozenset({"team-a"}))  # fewer groups: another assertion
    claims = jwt.decode(signer.assertion_for(other), options={"verify_signature": False})
    assert claims["groups"] == ["team-a"]


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    signer = AssertionSigner(
        KeyRing.load(key_dir=tmp_path), issuer="airflow-gateway", audience="airflow", cache_size=3
    )
    for n in range(10):
        signer.assertion_for(Principal(f"user{n}", "token"))
    assert len(signer._cache) == 3


def test_airflow_roles_accept_airflows_four_roles_only(tmp_path: Path) -> None:
    from gateway.config.loader import load_config
    from gateway.config.settings import ConfigError

    path = tmp_path / "gateway.toml"
    path.write_text('[assertion.airflow_roles]\n"team-a" = "op"\n"*" = "viewer"\n')
    assert load_config({}, path).assertion.airflow_roles == {"team-a": "op", "*": "viewer"}
    path.write_text('[assertion.airflow_roles]\n"team-a" = "operator"\n')
    with pytest.raises(ConfigError, match="assertion.airflow_roles.team-a has value 'operator'"):
        load_config({}, path)


def test_the_proxy_strips_a_client_assertion_and_sends_the_principals(tmp_path: Path) -> None:
    from gateway.http.proxy import ReverseProxy
    from gateway.identity.assertion import AssertionHeader
    from gateway.observability.audit import AuditRecord
    from gateway.request.scope import RequestScope

    signer = AssertionSigner(KeyRing.load(key_dir=tmp_path), issuer="airflow-gateway", audience="airflow")
    proxy = ReverseProxy("http://127.0.0.1:9", assertion=AssertionHeader("X-Gateway-Assertion", signer))
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/v2/dags", "HTTP_X_GATEWAY_ASSERTION": "forged"}
    scope = RequestScope(request_id="r" * 16, call_time=0.0, audit=AuditRecord("r" * 16, "GET", "/", None))
    scope.attach(environ)
    assert [v for k, v in proxy.request_headers(environ) if k.lower() == "x-gateway-assertion"] == []
    scope.principal = ADA
    (sent,) = [v for k, v in proxy.request_headers(environ) if k.lower() == "x-gateway-assertion"]
    assert sent != "forged" and verify(sent, signer.keys)["sub"] == "ada"
    off = ReverseProxy("http://127.0.0.1:9", assertion=AssertionHeader("X-Gateway-Assertion", None))
    assert [k for k, _ in off.request_headers(environ) if k.lower() == "x-gateway-assertion"] == []


def test_whoami_role_is_the_highest_mapped(tmp_path: Path) -> None:
    from gateway.identity.assertion import airflow_role

    mapping = {"team-a": "op", "airflow-admins": "admin", "*": "viewer"}
    assert airflow_role(frozenset({"team-a", "airflow-admins"}), mapping) == "admin"
    assert airflow_role(frozenset(), mapping) == "viewer"
    assert airflow_role(frozenset({"x"}), {"team-a": "op"}) is None


def test_rotate_assertion_key_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.entry.commands import main

    monkeypatch.setenv("AIRFLOW_GATEWAY__GATEWAY__STATE_DIR", str(tmp_path))
    before = KeyRing.load(key_dir=tmp_path / "keys").current.kid
    assert main(["rotate-assertion-key"]) == 0
    after = KeyRing.load(key_dir=tmp_path / "keys")
    assert after.current.kid != before and [k.kid for k in after.published][1] == before
