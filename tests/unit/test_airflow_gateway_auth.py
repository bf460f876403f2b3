"""airflow-gateway-auth without Airflow: the assertion verifier, the role mapping, the settings (issue 25)."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import jwt
import pytest
from airflow_gateway_auth import roles, settings
from airflow_gateway_auth.verify import KeySet, Refused, Verifier

from tests.support.assertions import AUDIENCE, ISSUER, Signer, attacks
from tests.support.keys import ec_key, ed_key, jwks_server, rsa_key

BASE = {"issuer": ISSUER, "audience": AUDIENCE, "roles": json.dumps({"team-a": "op", "readers": "viewer"})}


def make_settings(**values: str) -> settings.Settings:
    merged = {**BASE, **values}
    return settings.load(merged.get)


def file_verifier(
    tmp_path: Path, *keys: dict[str, object], name: str = "jwks.json", **values: str
) -> Verifier:
    path = tmp_path / name
    path.write_text(json.dumps({"keys": list(keys)}))
    return Verifier(make_settings(jwks_file=str(path), **values))


# -- role mapping ---------------------------------------------------------------------------


def test_highest_role_of_the_groups_wins_and_star_is_a_floor() -> None:
    mapping = roles.parse_roles('{"airflow-admins": "admin", "team-a": "OP", "*": "viewer"}')
    assert mapping.role_for(["team-a"]) == "op"
    assert mapping.role_for(["team-a", "airflow-admins"]) == "admin"
    assert mapping.role_for(["somebody-else"]) == "viewer"
    assert mapping.role_for([]) == "viewer"


def test_no_matching_group_and_no_star_is_no_role() -> None:
    assert roles.parse_roles('{"team-a": "op"}').role_for(["team-b"]) is None
    assert roles.parse_roles("").role_for(["team-a"]) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ('["team-a"]', "must be a JSON object"),
        ('{"team-a": "superuser"}', "not one of viewer, user, op, admin"),
        ('{"team-a": 3}', "not one of"),
    ],
)
def test_bad_role_mappings_are_refused_readably(text: str, message: str) -> None:
    with pytest.raises(roles.MappingError, match=message):
        roles.parse_roles(text)


def test_dag_access_by_group() -> None:
    access = roles.parse_dag_access('{"team-a": ["team_a_*", "shared"], "*": ["public_*"]}')
    assert access.enabled
    assert access.allows(["team-a"], "team_a_etl") and access.allows(["team-a"], "shared")
    assert not access.allows(["team-a"], "team_b_etl")
    assert access.allows(["team-b"], "public_report")  # "*" is everyone's
    assert not roles.parse_dag_access("").enabled and roles.parse_dag_access("").allows([], "x")
    with pytest.raises(roles.MappingError):
        roles.parse_dag_access('{"team-a": "not-a-list"}')


def test_fab_roles_are_airflows_four() -> None:
    assert set(roles.FAB_ROLES) == set(roles.ROLES) and set(roles.FAB_ROLES.values()) == {
        "Viewer",
        "User",
        "Op",
        "Admin",
    }


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"issuer": ""}, "issuer is required"),
        ({}, "exactly one of jwks_url and jwks_file"),
        ({"jwks_url": "https://gw/jwks", "jwks_file": "/x"}, "exactly one of"),
        ({"jwks_file": "/x", "algorithms": "ES256,HS256"}, "only asymmetric"),
        ({"jwks_file": "/x", "leeway": "soon"}, "leeway must be a number"),
        ({"jwks_file": "/x", "require_assertion": "maybe"}, "require_assertion"),
    ],
)
def test_bad_settings_are_refused_at_start(values: dict[str, str], message: str) -> None:
    with pytest.raises(settings.SettingsError, match=message):
        make_settings(**values)


def test_setting_defaults() -> None:
    s = make_settings(jwks_url="https://gw.example/.well-known/jwks.json")
    assert (s.header, s.algorithms, s.max_lifetime, s.require_assertion) == (
        "X-Gateway-Assertion",
        ("ES256", "EdDSA"),
        60,
        True,
    )
    assert s.wsgi_header == "HTTP_X_GATEWAY_ASSERTION"


# -- the verifier ---------------------------------------------------------------------------


def test_a_valid_assertion_gives_the_principal_and_its_role(tmp_path: Path) -> None:
    signer = Signer(ec_key("gw-1"))
    verifier = file_verifier(tmp_path, signer.key.jwk)
    token = signer.sign("ci-bot", ["team-a", "readers"], email="ci@example.test")
    principal, role = verifier.authenticate(token)
    assert (principal.username, principal.name, principal.email, principal.groups, role) == (
        "ci-bot",
        "Ci-Bot",
        "ci@example.test",
        ("team-a", "readers"),
        "op",
    )


def test_eddsa_keys_are_accepted(tmp_path: Path) -> None:
    signer = Signer(ed_key("gw-ed"))
    assert file_verifier(tmp_path, signer.key.jwk).verify(signer.sign("ci-bot", [])).username == "ci-bot"


@pytest.mark.parametrize(
    "name", [n for n in attacks(Signer(ec_key("gw-1"))) if n != "no role for the groups"]
)
def test_attacks_are_refused_with_their_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    signer = Signer(ec_key("gw-1"))
    verifier = file_verifier(tmp_path, signer.key.jwk)
    token, reason = attacks(signer)[name]
    with caplog.at_level(logging.WARNING, "airflow_gateway_auth"), pytest.raises(Refused) as refused:
        verifier.verify(token, where="/api/v2/dags")
    assert refused.value.reason == (reason or "no assertion")
    assert f"gateway assertion refused on /api/v2/dags: {refused.value.reason}" in caplog.text
    if token:
        assert token not in caplog.text
        assert all(part not in caplog.text for part in token.split(".") if len(part) > 8)


def test_no_role_is_refused(tmp_path: Path) -> None:
    signer = Signer(ec_key("gw-1"))
    with pytest.raises(Refused, match="no Airflow role"):
        file_verifier(tmp_path, signer.key.jwk).authenticate(signer.sign("mallory", ["nobody"]))


def test_claim_types_are_checked(tmp_path: Path) -> None:
    signer = Signer(ec_key("gw-1"))
    verifier = file_verifier(tmp_path, signer.key.jwk)
    with pytest.raises(Refused, match="groups must be a list"):
        verifier.verify(signer.key.sign({**signer.claims("x", []), "groups": "team-a"}))
    with pytest.raises(Refused, match="sub must be"):
        verifier.verify(signer.sign(" ", []))
    with pytest.raises(Refused, match="too long"):
        verifier.verify("a" * 9000)


def test_a_key_only_matches_its_own_algorithm(tmp_path: Path) -> None:
    """An RSA key in the JWKS is skipped (not an accepted algorithm); an EC kid signed as EdDSA fails."""
    ec, rsa = Signer(ec_key("gw-1")), Signer(rsa_key("gw-rsa"))
    ed = ed_key("gw-1")  # EdDSA signature under the EC key's kid
    verifier = file_verifier(tmp_path, ec.key.jwk, rsa.key.jwk)
    with pytest.raises(Refused, match="not accepted"):
        verifier.verify(rsa.sign("x", []))
    with pytest.raises(Refused, match="does not match key"):
        verifier.verify(ed.sign(ec.claims("x", [])))


def test_kid_is_optional_with_a_single_key_only(tmp_path: Path) -> None:
    a, b = Signer(ec_key("a")), Signer(ec_key("b"))
    claims = a.claims("x", [])
    without_kid = jwt.encode(claims, a.key.private, algorithm="ES256")
    only = {k: v for k, v in a.key.jwk.items() if k != "kid"}
    assert file_verifier(tmp_path, only).verify(without_kid).username == "x"
    with pytest.raises(Refused, match="not in the gateway's JWKS"):
        file_verifier(tmp_path, a.key.jwk, b.key.jwk, name="two.json").verify(without_kid)


def test_verified_assertions_are_cached_until_they_expire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = Signer(ec_key("gw-1"))
    verifier = file_verifier(tmp_path, signer.key.jwk, leeway="0")
    token = signer.sign("x", [], ttl=60)
    verifier.verify(token)
    calls = []
    monkeypatch.setattr(verifier, "_verify", lambda t: calls.append(t))
    assert verifier.verify(token).username == "x" and calls == []
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert verifier.cached(token) is None  # and the next verify checks the signature (and exp) again


def test_a_rotated_in_key_file_is_read_on_an_unknown_kid(tmp_path: Path) -> None:
    old, new = Signer(ec_key("old")), Signer(ec_key("new"))
    clock = [0.0]
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [old.key.jwk]}))
    s = make_settings(jwks_file=str(path), jwks_refetch_interval="10")
    verifier = Verifier(s, KeySet(s, clock=lambda: clock[0]))
    assert verifier.verify(old.sign("x", [])).username == "x"
    path.write_text(json.dumps({"keys": [old.key.jwk, new.key.jwk]}))
    os.utime(path, (time.time() + 5, time.time() + 5))
    with pytest.raises(Refused):  # within the refetch interval: not reread
        verifier.verify(new.sign("x", []))
    clock[0] = 11
    assert verifier.verify(new.sign("x", [])).username == "x"


def test_jwks_url_refetches_are_bounded_and_failures_keep_the_keys() -> None:
    signer, stranger = Signer(ec_key("gw-1")), Signer(ec_key("unknown"))
    clock = [0.0]
    with jwks_server([signer.key]) as server:
        s = make_settings(jwks_url=server.url, jwks_refetch_interval="10", jwks_cache_seconds="300")
        verifier = Verifier(s, KeySet(s, clock=lambda: clock[0]))
        verifier.verify(signer.sign("x", []))
        assert server.fetches == 1
        for _ in range(20):
            with pytest.raises(Refused):
                verifier.verify(stranger.sign("x", []))
        assert server.fetches == 1  # all within 10 s of the first fetch
        clock[0] = 10
        with pytest.raises(Refused):
            verifier.verify(stranger.sign("x", []))
        assert server.fetches == 2
        server.fail = True
        clock[0] = 400  # stale cache, JWKS down: the known key still verifies
        assert verifier.verify(signer.sign("y", [])).username == "y"
