"""Identities and policies through real gunicorn, in front of a real Airflow 3 api-server.

One gateway serves every test here: the plugin token, two named tokens, JWTs from a
loopback JWKS, a three-team policy file, and the reverse proxy to ``airflow api-server``
for the proxied paths.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.identity.tokens import hash_token
from tests.support.airflow import AirflowHome
from tests.support.airflow_servers import PASSWORD as ADMIN_PASSWORD
from tests.support.airflow_servers import USERNAME as ADMIN_USER
from tests.support.airflow_servers import AirflowServer
from tests.support.http import Reply, get, post_form, request
from tests.support.keys import JwksServer, KeyPair, jwks_server, rsa_key
from tests.support.servers import GatewayServer, start_gateway

PLUGIN = {"rest_api_plugin_http_token": "changeme"}
VIEWER_TOKEN = "viewer-token-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
OPS_TOKEN = "ops-token-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ISSUER, AUDIENCE = "https://idp.test/realms/ops", "airflow-gateway"

POLICY = """
[[rule]]
id = "legacy-plugin"
effect = "allow"
principals = ["rest_api_plugin"]
auth_methods = ["plugin-token"]
apis = ["version", "rest_api_plugin_version", "whoami"]

[[rule]]
id = "viewers-read"
effect = "allow"
groups = ["viewers"]
apis = ["list_*", "whoami", "dag_state", "version"]

[[rule]]
id = "ops-gw-dags"
effect = "allow"
groups = ["ops"]
apis = ["pause", "unpause", "trigger_dag"]
dag_ids = ["gw_*"]
sources = ["127.0.0.0/8"]

[[rule]]
id = "ops-whoami"
effect = "allow"
groups = ["ops"]
apis = ["whoami"]

[[rule]]
id = "idp-admins"
effect = "allow"
claims = { "realm_access.roles" = ["airflow-admin"] }
apis = ["*"]

[[rule]]
id = "no-daemons"
effect = "deny"
principals = ["*"]
apis = ["scheduler", "worker", "flower", "kerberos", "triggerer", "dag_processor", "serve_logs"]

[[rule]]
id = "airflow-passthrough"
effect = "allow"
principals = ["*"]
proxy_paths = ["/auth/*", "/api/v2/*", "/ui/*"]
proxy_methods = ["GET", "HEAD", "POST"]

[[rule]]
id = "no-anonymous-variables-api"
effect = "deny"
auth_methods = ["anonymous"]
proxy_paths = ["/api/v2/variables*"]
"""


@pytest.fixture(scope="module")
def signing_key() -> KeyPair:
    """The identity provider's RSA key."""
    return rsa_key("idp-key-1")


@pytest.fixture(scope="module")
def jwks(signing_key: KeyPair) -> Iterator[JwksServer]:
    """The identity provider's JWKS on loopback."""
    with jwks_server([signing_key]) as server:
        yield server


@pytest.fixture(scope="module")
def gw(
    airflow3: AirflowHome,
    airflow3_api: AirflowServer,
    jwks: JwksServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayServer]:
    """The gateway with every principal source, the three-team policy and the real proxy to Airflow."""
    tmp = tmp_path_factory.mktemp("identity-gateway")
    (tmp / "policies").mkdir()
    (tmp / "policies" / "teams.toml").write_text(POLICY)
    tokens = [
        {"name": "vera", "sha256": hash_token(VIEWER_TOKEN), "groups": ["viewers"]},
        {"name": "otto", "sha256": hash_token(OPS_TOKEN), "groups": ["ops"]},
    ]
    jwks.fail = True  # the first JWT must meet an unreachable key service (see the first test)
    server = start_gateway(
        airflow3,
        tmp,
        settings={
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "changeme",
            "AUTH__TOKENS": json.dumps(tokens),
            "JWT__ALGORITHMS": "RS256",
            "JWT__JWKS_URL": jwks.url,
            "JWT__JWKS_MIN_REFRESH_INTERVAL": "1",
            "JWT__ISSUER": ISSUER,
            "JWT__AUDIENCE": AUDIENCE,
            "JWT__GROUPS_CLAIM": "realm_access.roles",
            "POLICY__DIR": str(tmp / "policies"),
            "LIMITS__MAX_BODY_BYTES": "8192",
            "PROXY__UPSTREAM": airflow3_api.url,
        },
    )
    yield server
    server.stop()


def idp_token(key: KeyPair, **over: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": "ada",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": ["airflow-admin"]},
    }
    claims.update(over)
    return key.sign(claims)


def test_jwks_unreachable_is_503_then_recovers(
    gw: GatewayServer, jwks: JwksServer, signing_key: KeyPair
) -> None:
    """With the JWKS down and nothing cached a JWT gets 503; once it is back the same token works."""
    headers = {"Authorization": f"Bearer {idp_token(signing_key)}"}
    for _ in range(2):  # both workers
        reply = get(gw.api("api=whoami"), headers=headers)
        assert reply.status == 503, reply.body
        assert reply.json["status"] == "ERROR"
    jwks.fail = False
    time.sleep(1.2)  # the refresh throttle window
    reply = get(gw.api("api=whoami"), headers=headers)
    assert reply.status == 200, reply.body
    assert reply.json["data"]["principal"]["name"] == "ada"


def _headers(kind: str, key: KeyPair) -> dict[str, str]:
    return {
        "plugin": PLUGIN,
        "viewer": {"Authorization": f"Bearer {VIEWER_TOKEN}"},
        "ops": {"X-Gateway-Authorization": f"Bearer {OPS_TOKEN}"},
        "admin-jwt": {"Authorization": f"Bearer {idp_token(key)}"},
        "nobody": {},
    }[kind]


@pytest.mark.parametrize(
    ("who", "query", "status", "rule"),
    [
        pytest.param("plugin", "api=version", 200, "legacy-plugin", id="plugin-token-allowed"),
        pytest.param("plugin", "api=list_dags", 403, "default-deny", id="plugin-token-denied"),
        pytest.param("viewer", "api=list_dags&output=json", 200, "viewers-read", id="viewer-allowed"),
        pytest.param("viewer", "api=pause&dag_id=gw_example", 403, "default-deny", id="viewer-denied"),
        pytest.param("ops", "api=pause&dag_id=gw_example", 200, "ops-gw-dags", id="ops-allowed"),
        pytest.param(
            "ops", "api=pause&dag_id=other_team_dag", 403, "default-deny", id="ops-other-dag-denied"
        ),
        pytest.param("admin-jwt", "api=list_pools", 200, "idp-admins", id="jwt-admin-allowed"),
        pytest.param("admin-jwt", "api=scheduler", 403, "no-daemons", id="jwt-admin-deny-wins"),
    ],
)
def test_each_principal_kind_against_real_airflow(
    gw: GatewayServer, signing_key: KeyPair, who: str, query: str, status: int, rule: str
) -> None:
    """Every principal kind gets exactly its scope; the envelope names the deciding rule."""
    reply = get(gw.api(query), headers=_headers(who, signing_key))
    body = reply.json
    assert reply.status == status, reply.body
    assert body["policy"]["rule"] == rule
    assert body["policy"]["decision"] == ("allow" if status == 200 else "deny")
    if status == 403:
        assert rule in body["output"] and body["airflow_cmd"] is None
    else:
        assert body["exit_code"] == 0
    if who == "viewer" and status == 200:
        assert "gw_example" in json.dumps(body["data"])


def test_denials_are_logged_with_rule_id(gw: GatewayServer) -> None:
    """A denial shows up in the gateway log with principal, API and rule id."""
    get(gw.api("api=trigger_dag&dag_id=not_ours"), headers=_headers("ops", rsa_key("unused")))
    deadline = time.monotonic() + 10
    while "policy deny: otto -> trigger_dag by rule default-deny" not in gw.log_text():
        assert time.monotonic() < deadline, gw.log_text()[-3000:]
        time.sleep(0.1)


def test_missing_credentials_keep_the_plugin_answer(gw: GatewayServer) -> None:
    """No credentials on the API: the original plugin's 403 'Token Authentication Failed'."""
    reply = get(gw.api("api=version"))
    assert reply.status == 403 and reply.json["output"] == "Token Authentication Failed"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("expired", id="expired"),
        pytest.param("alg-none", id="alg-none"),
        pytest.param("wrong-aud", id="wrong-aud"),
        pytest.param("unknown-token", id="unknown-named-token"),
    ],
)
def test_bad_bearer_is_401_with_challenge(gw: GatewayServer, signing_key: KeyPair, token: str) -> None:
    """Invalid JWTs and unknown tokens get 401 with WWW-Authenticate and never an echo of the token."""
    import base64

    def b64(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    value = {
        "expired": idp_token(signing_key, exp=int(time.time()) - 3600),
        "alg-none": f"{b64({'alg': 'none', 'kid': signing_key.kid})}.{b64({'sub': 'ada', 'exp': 2**31})}.",
        "wrong-aud": idp_token(signing_key, aud="other"),
        "unknown-token": "unknown-token-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    }[token]
    reply = get(gw.api("api=whoami"), headers={"Authorization": f"Bearer {value}"})
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="airflow-gateway", error="invalid_token"'
    assert value not in reply.body.decode() and reply.json["status"] == "ERROR"


def test_whoami_lists_principal_and_permissions(gw: GatewayServer) -> None:
    """whoami returns the caller's principal and the APIs its rules allow."""
    reply = get(gw.api("api=whoami"), headers=_headers("ops", rsa_key("unused")))
    assert reply.status == 200, reply.body
    data = reply.json["data"]
    assert data["principal"] == {"name": "otto", "method": "token", "groups": ["ops"], "claims": {}}
    allowed = {entry["api"]: entry["rules"] for entry in data["policy"]["apis"]}
    assert allowed["pause"] == ["ops-gw-dags"] and "list_dags" not in allowed
    assert data["client_address"] == "127.0.0.1"


def test_body_limit_is_413_envelope(gw: GatewayServer) -> None:
    """A form body over limits.max_body_bytes is refused with the 413 envelope."""
    reply = post_form(gw.api(""), {"api": "version", "pad": "x" * 20000}, headers=PLUGIN)
    assert reply.status == 413
    assert reply.json["http_response_code"] == 413 and reply.json["status"] == "ERROR"


def _login(gw: GatewayServer) -> Reply:
    return request(
        "POST",
        f"{gw.url}/auth/token",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"username": ADMIN_USER, "password": ADMIN_PASSWORD}).encode(),
    )


def test_airflow3_own_login_through_the_gateway(gw: GatewayServer) -> None:
    """Airflow's /auth/token and its Bearer JWT (and _token cookie) work through the gateway's auth layer."""
    login = _login(gw)
    assert login.status == 201, login.body
    airflow_jwt = login.json["access_token"]
    dags = get(f"{gw.url}/api/v2/dags", headers={"Authorization": f"Bearer {airflow_jwt}"})
    assert dags.status == 200, dags.body
    assert dags.headers["X-Gateway-Policy"] == "allow; rule=airflow-passthrough"
    assert "gw_example" in {d["dag_id"] for d in dags.json["dags"]}
    by_cookie = get(f"{gw.url}/api/v2/dags", headers={"Cookie": f"_token={airflow_jwt}"})
    assert by_cookie.status == 200, by_cookie.body
    assert get(f"{gw.url}/api/v2/dags").status == 401  # Airflow's own refusal, passed through


def test_proxied_path_policy_runs_before_airflow(gw: GatewayServer) -> None:
    """A path rule denies before Airflow; gateway credentials lift it and Airflow's own auth still applies."""
    airflow_jwt = _login(gw).json["access_token"]
    bearer = {"Authorization": f"Bearer {airflow_jwt}"}
    denied = get(f"{gw.url}/api/v2/variables", headers=bearer)
    assert denied.status == 403 and denied.json["policy"]["rule"] == "no-anonymous-variables-api"
    with_gateway_identity = get(
        f"{gw.url}/api/v2/variables", headers={**bearer, **_headers("ops", rsa_key("u"))}
    )
    assert with_gateway_identity.status == 200, with_gateway_identity.body
    wrong = get(f"{gw.url}/api/v2/variables", headers={**bearer, "X-Gateway-Authorization": "Bearer nope"})
    assert wrong.status == 401
    delete = request("DELETE", f"{gw.url}/api/v2/dags/gw_example", headers=bearer)
    assert delete.status == 403 and delete.json["policy"]["rule"] == "default-deny"


def test_unknown_kid_flood_through_gunicorn(gw: GatewayServer, jwks: JwksServer) -> None:
    """A burst of JWTs with made-up kids costs each worker at most one JWKS fetch per 1 s window."""
    rogue = rsa_key("rogue")
    before, started = jwks.fetches, time.monotonic()
    for i in range(40):
        token = rogue.sign(
            {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}, kid=f"k{i}"
        )
        assert get(gw.api("api=whoami"), headers={"Authorization": f"Bearer {token}"}).status == 401
    windows = int(time.monotonic() - started) + 1
    assert jwks.fetches - before <= 2 * windows  # two workers, one fetch per window each


@pytest.fixture(scope="module")
def shadow_gw(airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway running the shipped example policies in shadow mode."""
    tokens = [
        {"name": "vera", "sha256": hash_token(VIEWER_TOKEN), "groups": ["viewers"]},
        {"name": "stranger", "sha256": hash_token(OPS_TOKEN), "groups": []},
    ]
    server = start_gateway(
        airflow3,
        tmp_path_factory.mktemp("shadow-gateway"),
        settings={
            "AUTH__TOKENS": json.dumps(tokens),
            "POLICY__DIR": str(Path(__file__).resolve().parents[2] / "policies"),
            "POLICY__SHADOW": "true",
        },
    )
    yield server
    server.stop()


def test_shadow_mode_with_the_shipped_examples(shadow_gw: GatewayServer) -> None:
    """Shadow mode lets a denied call through, marks it shadow and logs 'would deny'; allows are unchanged."""
    allowed = get(shadow_gw.api("api=whoami"), headers={"Authorization": f"Bearer {VIEWER_TOKEN}"})
    assert allowed.status == 200
    version = allowed.json["output"]["policy"]["policy_version"]  # whoami: which policy files decide
    assert len(version) == 12
    assert allowed.json["policy"] == {
        "decision": "allow",
        "rule": "viewers-read",
        "shadow": False,
        "policy_version": version,
    }
    shadowed = get(
        shadow_gw.api("api=rest_api_plugin_version"), headers={"Authorization": f"Bearer {OPS_TOKEN}"}
    )
    assert shadowed.status == 200, shadowed.body
    assert shadowed.json["policy"] == {
        "decision": "deny",
        "rule": "default-deny",
        "shadow": True,
        "policy_version": version,
    }
    deadline = time.monotonic() + 10
    while "policy would deny (shadow mode): stranger -> rest_api_plugin_version" not in shadow_gw.log_text():
        assert time.monotonic() < deadline, shadow_gw.log_text()[-3000:]
        time.sleep(0.1)
