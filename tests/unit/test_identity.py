"""Named tokens, the authenticator's choice of credential, and client addresses."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import jwt
import pytest

from gateway.config.loader import ConfigError, load_config
from gateway.core.errors import TokenAuthenticationFailed, Unauthorized
from gateway.identity.authenticator import Authenticator
from gateway.identity.client import client_address
from gateway.identity.principal import ANONYMOUS, claim_values
from gateway.identity.tokens import NamedTokenAuth, hash_token

ALICE, BOB = "alice-token-0123456789abcdefghij", "bob-token-0123456789abcdefghijkl"
HS_SECRET = "k" * 40
TOKENS = json.dumps(
    [
        {"name": "alice", "sha256": hash_token(ALICE), "groups": ["viewers"]},
        {"name": "bob", "sha256": hash_token(BOB), "groups": ["team-a-operators", "viewers"]},
    ]
)


def make_auth(**settings: str) -> Authenticator:
    env = {f"AIRFLOW_GATEWAY__{k}": v for k, v in settings.items()}
    return Authenticator(load_config(env), {"GW_HS": HS_SECRET})


FULL = {
    "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "changeme",
    "AUTH__TOKENS": TOKENS,
    "JWT__ALGORITHMS": "HS256",
    "JWT__KEY_ENV": "GW_HS",
    "JWT__GROUPS_CLAIM": "groups",
}


def hs_jwt(**claims: Any) -> str:
    # Built at collection time for the parametrized tables, which may run an hour later
    # (the e2e tests come first): a day of validity keeps them independent of suite order.
    return jwt.encode(
        {"sub": "carol", "exp": int(time.time()) + 86400, "groups": ["admins"], **claims},
        HS_SECRET,
        algorithm="HS256",
    )


@pytest.mark.parametrize(
    ("headers", "own", "expected"),
    [
        pytest.param(
            {"HTTP_REST_API_PLUGIN_HTTP_TOKEN": "changeme"},
            True,
            ("rest_api_plugin", "plugin-token"),
            id="plugin-token",
        ),
        pytest.param(
            {"HTTP_AUTHORIZATION": f"Bearer {ALICE}"}, True, ("alice", "token"), id="token-authorization"
        ),
        pytest.param(
            {"HTTP_X_GATEWAY_AUTHORIZATION": f"Bearer {BOB}"}, True, ("bob", "token"), id="token-gw-header"
        ),
        pytest.param(
            {"HTTP_X_GATEWAY_AUTHORIZATION": BOB}, False, ("bob", "token"), id="token-bare-on-proxy"
        ),
        pytest.param(
            {"HTTP_AUTHORIZATION": f"bearer {hs_jwt()}"}, True, ("carol", "jwt"), id="jwt-authorization"
        ),
        pytest.param(
            {"HTTP_AUTHORIZATION": f"Bearer {hs_jwt()}"},
            False,
            ("anonymous", "anonymous"),
            id="authorization-ignored-on-proxy",
        ),
        pytest.param(
            {"HTTP_AUTHORIZATION": "Basic YWRtaW46YWRtaW4="},
            False,
            ("anonymous", "anonymous"),
            id="airflow2-basic-on-proxy",
        ),
        pytest.param({}, False, ("anonymous", "anonymous"), id="nothing-on-proxy"),
    ],
)
def test_principal_sources(headers: dict[str, str], own: bool, expected: tuple[str, str]) -> None:
    """Each credential yields its principal; Authorization is only read on the gateway's own endpoints."""
    principal = make_auth(**FULL).authenticate(dict(headers), own=own)
    assert (principal.name, principal.method) == expected


@pytest.mark.parametrize(
    ("settings", "headers", "error", "status"),
    [
        pytest.param(FULL, {}, TokenAuthenticationFailed, 403, id="missing-with-plugin-token-is-plugin-403"),
        pytest.param(
            FULL,
            {"HTTP_REST_API_PLUGIN_HTTP_TOKEN": "nope"},
            TokenAuthenticationFailed,
            403,
            id="wrong-plugin-token",
        ),
        pytest.param({"AUTH__TOKENS": TOKENS}, {}, Unauthorized, 401, id="missing-without-plugin-token"),
        pytest.param(
            FULL,
            {"HTTP_AUTHORIZATION": "Bearer wrong-token-0123456789abcdef"},
            Unauthorized,
            401,
            id="unknown-token",
        ),
        pytest.param(
            FULL, {"HTTP_AUTHORIZATION": f"Bearer {ALICE}x"}, Unauthorized, 401, id="near-miss-token"
        ),
        pytest.param(FULL, {"HTTP_AUTHORIZATION": "Bearer "}, Unauthorized, 401, id="empty-bearer"),
        pytest.param(
            FULL, {"HTTP_AUTHORIZATION": f"Bearer {hs_jwt(exp=1)}"}, Unauthorized, 401, id="expired-jwt"
        ),
        pytest.param(
            FULL,
            {"HTTP_X_GATEWAY_AUTHORIZATION": "Bearer nope"},
            Unauthorized,
            401,
            id="bad-gateway-header-on-proxy",
        ),
    ],
)
def test_refusals(
    settings: dict[str, str], headers: dict[str, str], error: type[Exception], status: int
) -> None:
    """Missing or wrong credentials: the plugin's 403 where it applies, otherwise 401 with a challenge."""
    own = "HTTP_X_GATEWAY_AUTHORIZATION" not in headers
    with pytest.raises(error) as info:
        make_auth(**settings).authenticate(dict(headers), own=own)
    response = info.value.get_response()  # type: ignore[attr-defined]
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="airflow-gateway"')
    body = response.get_data(as_text=True)
    assert ALICE not in body and "wrong-token" not in body


def test_anonymous_when_nothing_configured_or_allowed() -> None:
    """Nothing configured: anonymous (the plugin's default); allow_anonymous does the same with tokens."""
    assert make_auth().authenticate({}, own=True) == ANONYMOUS
    auth = make_auth(AUTH__TOKENS=TOKENS, AUTH__ALLOW_ANONYMOUS="true", POLICY__DIR="policies")
    assert auth.authenticate({}, own=True) == ANONYMOUS
    with pytest.raises(ConfigError, match="needs policy.dir"):
        make_auth(AUTH__TOKENS=TOKENS, AUTH__ALLOW_ANONYMOUS="true")


def test_credential_keys_name_both_gateway_headers() -> None:
    """The proxy strips the plugin header and the gateway header, never Authorization or cookies."""
    keys = make_auth(**FULL).credential_keys()
    assert set(keys) == {"HTTP_REST_API_PLUGIN_HTTP_TOKEN", "HTTP_X_GATEWAY_AUTHORIZATION"}


def test_token_lookup_compares_every_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Known, unknown and near-miss tokens all cost one compare_digest per configured token."""
    import gateway.identity.tokens as tokens_module

    auth = NamedTokenAuth(load_config({"AIRFLOW_GATEWAY__AUTH__TOKENS": TOKENS}).auth.tokens)
    calls: list[int] = []
    real = tokens_module.hmac.compare_digest
    monkeypatch.setattr(tokens_module.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    for presented in (ALICE, BOB, "unknown-0123456789abcdefghijkl", ALICE[:-1] + "x"):
        calls.clear()
        auth.lookup(presented)
        assert len(calls) == 2


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        pytest.param('[{"name": "a", "sha256": "plaintext-token"}]', "64 lower-case hex", id="plain-text"),
        pytest.param(
            '[{"name": "a", "token": "x", "sha256": "sha256:' + "0" * 64 + '"}]',
            "unknown key",
            id="token-key",
        ),
        pytest.param(
            '[{"name": "a", "sha256": "sha256:'
            + "0" * 64
            + '"}, {"name": "a", "sha256": "sha256:'
            + "1" * 64
            + '"}]',
            "unique",
            id="duplicate-name",
        ),
        pytest.param('{"name": "a"}', "array of tables", id="not-an-array"),
    ],
)
def test_token_config_errors(tokens: str, message: str) -> None:
    """Bad [[auth.tokens]] entries fail at load time without echoing the value."""
    with pytest.raises(ConfigError, match=message) as info:
        load_config({"AIRFLOW_GATEWAY__AUTH__TOKENS": tokens})
    assert "plaintext-token" not in str(info.value)


def test_tokens_from_toml_array_of_tables(tmp_path: Any) -> None:
    """[[auth.tokens]] tables in the TOML file are read with their groups."""
    path = tmp_path / "gw.toml"
    path.write_text(
        f'[[auth.tokens]]\nname = "alice"\nsha256 = "{hash_token(ALICE)}"\ngroups = ["viewers"]\n'
    )
    (token,) = load_config({}, path).auth.tokens
    assert token.name == "alice" and token.groups == {"viewers"}


def test_hash_token_command_reads_stdin_and_generates() -> None:
    """`airflow-gateway hash-token` hashes stdin; --generate prints a fresh token and its hash."""
    cmd = [sys.executable, "-m", "gateway.entry.commands", "hash-token"]
    done = subprocess.run(cmd, input=ALICE + "\n", capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == hash_token(ALICE)
    short = subprocess.run(cmd, input="short\n", capture_output=True, text=True, timeout=60, check=False)
    assert short.returncode == 2 and "at least" in short.stderr
    fresh = subprocess.run([*cmd, "--generate"], capture_output=True, text=True, timeout=60, check=True)
    lines = dict(line.split(": ", 1) for line in fresh.stdout.strip().splitlines())
    assert hash_token(lines["token"].strip()) == lines["sha256"].strip()


@pytest.mark.parametrize(
    ("environ", "trusted", "expected"),
    [
        pytest.param({"REMOTE_ADDR": "10.0.0.5"}, 0, "10.0.0.5", id="direct"),
        pytest.param(
            {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "6.6.6.6"},
            0,
            "10.0.0.5",
            id="xff-ignored-untrusted",
        ),
        pytest.param(
            {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7"},
            1,
            "203.0.113.7",
            id="one-proxy-spoof-ignored",
        ),
        pytest.param(
            {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7, 10.0.0.9"},
            2,
            "203.0.113.7",
            id="two-proxies",
        ),
        pytest.param({"REMOTE_ADDR": "10.0.0.1"}, 1, "10.0.0.1", id="missing-xff"),
        pytest.param({"REMOTE_ADDR": "::1"}, 0, "::1", id="ipv6"),
    ],
)
def test_client_address(environ: dict[str, str], trusted: int, expected: str) -> None:
    """The client is the N-th X-Forwarded-For entry from the right for N trusted proxies:
    set once, by the trusted-proxy layer, and read by everything after it."""
    from gateway.http.forwarded import trust_proxies

    seen: list[object] = []

    def inner(env: Any, start_response: Any) -> list[bytes]:
        seen.append(client_address(env))
        return []

    trust_proxies(inner, trusted)({"wsgi.url_scheme": "http", **environ}, lambda *a: None)
    assert [str(a) for a in seen] == [expected]


def test_nested_claim_values() -> None:
    """Dotted claim paths reach nested lists and scalars; other shapes give nothing."""
    claims = {"realm_access": {"roles": ["a", "b"]}, "tenant": "acme", "n": {"x": {"y": 1}}}
    assert claim_values(claims, "realm_access.roles") == ("a", "b")
    assert claim_values(claims, "tenant") == ("acme",)
    assert claim_values(claims, "n.x") == ()
    assert claim_values(claims, "missing.path") == ()
