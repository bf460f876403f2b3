"""The OpenID Connect code flow against a real provider (oidc-provider on loopback), no browser.

authorization URL -> the provider's own login form -> callback parameters -> code exchange
-> validated ID token -> server-side session; and the attacks, each a test.  Nothing here
is a fake: the provider, its keys, its codes and its refusals are real.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest

from gateway.identity.oidc import (
    GrantRejected,
    InvalidIdToken,
    LoginRequest,
    OidcClient,
    ProviderError,
    ProviderUnavailable,
)
from gateway.identity.principal import Principal
from gateway.sessions.store import Sessions, SessionStore, new_id
from tests.support.oidc import (
    CLIENT_ID,
    CLIENT_SECRET,
    POST_LOGOUT_URI,
    REDIRECT_URI,
    USERS,
    LoginDriver,
    OidcProvider,
    callback_params,
    running_provider,
)
from tests.support.postgres import free_port


def make_client(provider: OidcProvider, **kwargs: object) -> OidcClient:
    options: dict[str, object] = {
        "issuer": provider.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": ("openid", "profile", "email", "groups"),
        "groups_claim": "groups",
        "leeway_s": 5,
        "timeout_s": 5,
        "jwks_min_refresh_interval_s": 0,  # rotation is followed at once in these tests
        **kwargs,
    }
    return OidcClient(**options)  # type: ignore[arg-type]


@pytest.fixture
def client(oidc_provider: OidcProvider) -> OidcClient:
    return make_client(oidc_provider)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[Sessions]:
    store = SessionStore(sqlite_path=tmp_path / "sessions.sqlite")
    yield Sessions(store, lifetime_s=3600, idle_timeout_s=900, cache_ttl_s=1, touch_interval_s=60)
    store.close()


@dataclass
class Callback:
    login: LoginRequest
    browser: str
    params: dict[str, str]


def sign_in(client: OidcClient, sessions: Sessions, user: str = "ada", next_path: str = "/home") -> Callback:
    """The gateway's /login, then the user at the provider's form; returns what reaches the callback."""
    login = client.begin(REDIRECT_URI)
    browser = new_id()
    sessions.start_login(
        state=login.state,
        browser=browser,
        nonce=login.nonce,
        code_verifier=login.code_verifier,
        redirect_url=REDIRECT_URI,
        next_path=next_path,
    )
    url = LoginDriver().authorize(login.url, user, USERS[user]["password"], stop_at=REDIRECT_URI)
    return Callback(login, browser, callback_params(url))


def test_the_full_code_flow_ends_in_a_session_with_the_users_name_and_groups(
    client: OidcClient, sessions: Sessions, oidc_provider: OidcProvider
) -> None:
    cb = sign_in(client, sessions)
    assert cb.params["state"] == cb.login.state
    assert cb.params["iss"] == oidc_provider.issuer
    assert "code_challenge=" in cb.login.url and "code_challenge_method=S256" in cb.login.url

    pending = sessions.take_login(cb.params["state"], cb.browser)
    assert pending is not None and pending.next_path == "/home"
    tokens = client.exchange(
        cb.params["code"],
        code_verifier=pending.code_verifier,
        nonce=pending.nonce,
        redirect_url=pending.redirect_url,
    )
    assert tokens.identity is not None
    assert tokens.identity.name == "ada"
    assert tokens.identity.groups == {"team-a-operators", "viewers"}
    assert tokens.claims["aud"] == CLIENT_ID and tokens.refresh_token
    assert "refresh_token" not in tokens.raw and "id_token" not in tokens.raw

    session_id, record = sessions.create(
        principal=tokens.identity.name,
        subject=tokens.identity.subject,
        groups=tokens.identity.groups,
        id_token=tokens.id_token,
        refresh_token=tokens.refresh_token,
        token_expires_at=tokens.expires_at,
    )
    found = sessions.lookup(session_id)
    assert found is not None
    assert found.as_principal() == Principal(
        name="ada", method="oidc", groups=frozenset(tokens.identity.groups)
    )
    assert record.id_hash != session_id and session_id not in json.dumps(found.__repr__())


def test_the_username_falls_back_to_sub_and_groups_follow_a_dotted_path(
    oidc_provider: OidcProvider, sessions: Sessions
) -> None:
    client = make_client(oidc_provider, username_claim="nickname", groups_claim="missing.groups")
    cb = sign_in(client, sessions, user="bob")
    pending = sessions.take_login(cb.params["state"], cb.browser)
    assert pending is not None
    tokens = client.exchange(cb.params["code"], code_verifier=pending.code_verifier, nonce=pending.nonce,
                             redirect_url=REDIRECT_URI)  # fmt: skip
    assert tokens.identity is not None
    assert (tokens.identity.name, tokens.identity.groups) == ("bob", frozenset())  # sub is "bob" too
    assert tokens.identity.subject == "bob"


def test_a_wrong_state_or_another_browsers_state_is_refused_and_the_state_is_then_used_up(
    client: OidcClient, sessions: Sessions
) -> None:
    cb = sign_in(client, sessions)
    assert sessions.take_login("made-up-state", cb.browser) is None
    assert sessions.take_login(cb.params["state"], new_id()) is None  # a state sent to another browser
    assert sessions.take_login(cb.params["state"], cb.browser) is None  # consumed by that attempt


def test_a_replayed_state_is_refused(client: OidcClient, sessions: Sessions) -> None:
    cb = sign_in(client, sessions)
    assert sessions.take_login(cb.params["state"], cb.browser) is not None
    assert sessions.take_login(cb.params["state"], cb.browser) is None


def test_a_replayed_code_is_refused_by_the_provider(client: OidcClient, sessions: Sessions) -> None:
    cb = sign_in(client, sessions)
    args = {"code_verifier": cb.login.code_verifier, "nonce": cb.login.nonce, "redirect_url": REDIRECT_URI}
    client.exchange(cb.params["code"], **args)
    with pytest.raises(GrantRejected) as refused:
        client.exchange(cb.params["code"], **args)
    assert refused.value.status == 401 and "invalid_grant" in refused.value.message


def test_a_code_without_its_pkce_verifier_is_refused(client: OidcClient, sessions: Sessions) -> None:
    cb = sign_in(client, sessions)
    with pytest.raises(GrantRejected):
        client.exchange(cb.params["code"], code_verifier=new_id() + "x" * 20, nonce=cb.login.nonce,
                        redirect_url=REDIRECT_URI)  # fmt: skip


def test_a_nonce_mismatch_is_refused(client: OidcClient, sessions: Sessions) -> None:
    cb = sign_in(client, sessions)
    with pytest.raises(InvalidIdToken, match="nonce"):
        client.exchange(cb.params["code"], code_verifier=cb.login.code_verifier, nonce="another-login",
                        redirect_url=REDIRECT_URI)  # fmt: skip


def _b64(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _claims(provider: OidcProvider, **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": provider.issuer, "aud": CLIENT_ID, "sub": "ada", "preferred_username": "ada",
        "iat": now, "exp": now + 300, "nonce": "n-1",
    }  # fmt: skip
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_token_signed_by_the_providers_key_with_good_claims_passes(
    client: OidcClient, oidc_provider: OidcProvider
) -> None:
    """The control for the forgeries below: only the named claim differs."""
    assert client.validate_id_token(oidc_provider.sign(_claims(oidc_provider)), nonce="n-1")["sub"] == "ada"


def test_alg_none_is_refused(client: OidcClient, oidc_provider: OidcProvider) -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(oidc_provider))}."
    with pytest.raises(InvalidIdToken, match="algorithm"):
        client.validate_id_token(token, nonce="n-1")


def test_hs256_signed_with_the_client_secret_is_refused(
    client: OidcClient, oidc_provider: OidcProvider
) -> None:
    kid = oidc_provider.admin("/_test/keys")["kids"][0]
    token = jwt.encode(_claims(oidc_provider), CLIENT_SECRET, algorithm="HS256", headers={"kid": kid})
    with pytest.raises(InvalidIdToken, match="algorithm"):
        client.validate_id_token(token, nonce="n-1")


def test_a_client_configured_for_hs256_still_refuses_it() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        OidcClient(issuer="http://127.0.0.1:9", client_id="c", client_secret="s", algorithms=["HS256"])


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "http://127.0.0.1:1"}, "issuer"),
        ({"aud": "another-client"}, "aud"),
        ({"aud": [CLIENT_ID, "another-client"]}, "azp"),
        ({"azp": "another-client"}, "azp"),
        ({"exp": int(time.time()) - 60}, "expired"),
        ({"nbf": int(time.time()) + 120}, "not valid yet"),
        ({"iat": None}, "invalid"),
        ({"nonce": "n-2"}, "nonce"),
        ({"nonce": None}, "nonce"),
    ],
    ids=["iss", "aud", "aud-list-without-azp", "azp", "expired", "nbf", "no-iat", "nonce", "no-nonce"],
)
def test_a_validly_signed_token_with_a_wrong_claim_is_refused(
    client: OidcClient, oidc_provider: OidcProvider, changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidIdToken, match=reason):
        client.validate_id_token(oidc_provider.sign(_claims(oidc_provider, **changes)), nonce="n-1")


def test_clock_skew_within_leeway_is_accepted(client: OidcClient, oidc_provider: OidcProvider) -> None:
    now = int(time.time())
    token = oidc_provider.sign(_claims(oidc_provider, exp=now - 3, iat=now - 300, nbf=now + 3))
    assert client.validate_id_token(token, nonce="n-1")["sub"] == "ada"  # leeway_s=5


def test_a_token_signed_by_an_unknown_key_is_refused(client: OidcClient, oidc_provider: OidcProvider) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(oidc_provider), key, algorithm="RS256", headers={"kid": "not-the-providers"})
    with pytest.raises(InvalidIdToken, match="kid"):
        client.validate_id_token(token, nonce="n-1")
    kid = oidc_provider.admin("/_test/keys")["kids"][0]
    token = jwt.encode(_claims(oidc_provider), key, algorithm="RS256", headers={"kid": kid})
    with pytest.raises(InvalidIdToken, match="signature"):
        client.validate_id_token(token, nonce="n-1")


def test_key_rotation_at_the_provider_is_followed() -> None:
    # Its own provider: rotating the shared one would race other tests' cached keys.
    with running_provider() as provider:
        client = make_client(provider)
        with SessionStoreFor() as sessions:
            cb = sign_in(client, sessions)
            first = client.exchange(cb.params["code"], code_verifier=cb.login.code_verifier,
                                    nonce=cb.login.nonce, redirect_url=REDIRECT_URI)  # fmt: skip
            old_kid = jwt.get_unverified_header(first.id_token or "")["kid"]
            provider.rotate_keys(keep_old=False)
            cb = sign_in(client, sessions)
            second = client.exchange(cb.params["code"], code_verifier=cb.login.code_verifier,
                                     nonce=cb.login.nonce, redirect_url=REDIRECT_URI)  # fmt: skip
            assert jwt.get_unverified_header(second.id_token or "")["kid"] != old_kid
            with pytest.raises(InvalidIdToken, match="kid"):  # the retired key no longer verifies
                client.validate_id_token(first.id_token or "", nonce=cb.login.nonce)


class SessionStoreFor:
    """A throwaway SQLite session store, as a context manager."""

    def __enter__(self) -> Sessions:
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        self._store = SessionStore(sqlite_path=Path(self._dir.name) / "s.sqlite")
        return Sessions(self._store, lifetime_s=3600, idle_timeout_s=900, cache_ttl_s=1)

    def __exit__(self, *exc: object) -> None:
        self._store.close()
        self._dir.cleanup()


def test_refresh_renews_the_tokens_and_a_bad_refresh_token_is_refused(
    client: OidcClient, sessions: Sessions
) -> None:
    cb = sign_in(client, sessions)
    tokens = client.exchange(cb.params["code"], code_verifier=cb.login.code_verifier, nonce=cb.login.nonce,
                             redirect_url=REDIRECT_URI)  # fmt: skip
    assert tokens.refresh_token
    renewed = client.refresh(tokens.refresh_token, subject="ada")
    assert renewed.identity is not None and renewed.identity.name == "ada"
    assert renewed.id_token and renewed.id_token != tokens.id_token
    with pytest.raises(GrantRejected):
        client.refresh("not-a-refresh-token", subject="ada")


def test_an_id_token_expires_with_the_lifetime_the_provider_gives_it() -> None:
    with running_provider() as provider, SessionStoreFor() as sessions:
        provider.set_ttl(IdToken=1)
        # The exchange tolerates a slow machine (iat is whole seconds, so a 1 s token can be
        # nearly spent on arrival); the check after its expiry has no leeway at all.
        client = make_client(provider, leeway_s=5)
        strict = make_client(provider, leeway_s=0)
        cb = sign_in(client, sessions)
        tokens = client.exchange(cb.params["code"], code_verifier=cb.login.code_verifier,
                                 nonce=cb.login.nonce, redirect_url=REDIRECT_URI)  # fmt: skip
        assert tokens.expires_at - tokens.claims["iat"] == 1
        time.sleep(max(0.0, tokens.claims["exp"] + 1.1 - time.time()))
        with pytest.raises(InvalidIdToken, match="expired"):
            strict.validate_id_token(tokens.id_token or "", nonce=cb.login.nonce)


def test_a_wrong_client_secret_is_a_502_naming_the_client(
    oidc_provider: OidcProvider, sessions: Sessions
) -> None:
    good = make_client(oidc_provider)
    cb = sign_in(good, sessions)
    bad = make_client(oidc_provider, client_secret="wrong-secret-" + "y" * 24)
    with pytest.raises(ProviderError) as refused:
        bad.exchange(cb.params["code"], code_verifier=cb.login.code_verifier, nonce=cb.login.nonce,
                     redirect_url=REDIRECT_URI)  # fmt: skip
    assert refused.value.status == 502 and "invalid_client" in refused.value.message
    assert "wrong-secret" not in refused.value.message


def test_an_unreachable_provider_is_a_typed_503() -> None:
    client = OidcClient(
        issuer=f"http://127.0.0.1:{free_port()}", client_id="c", client_secret="s", timeout_s=2
    )
    with pytest.raises(ProviderUnavailable) as down:
        client.begin(REDIRECT_URI)
    assert down.value.status == 503 and "unreachable" in down.value.message


def test_a_provider_that_goes_down_after_discovery_is_a_503_at_the_exchange() -> None:
    with running_provider() as provider, SessionStoreFor() as sessions:
        client = make_client(provider)
        cb = sign_in(client, sessions)
        provider.stop()
        with pytest.raises(ProviderUnavailable):
            client.exchange(cb.params["code"], code_verifier=cb.login.code_verifier, nonce=cb.login.nonce,
                            redirect_url=REDIRECT_URI)  # fmt: skip
        # The logout URL needs no provider: it comes from the cached discovery document.
        assert client.end_session_url(id_token_hint="x", post_logout_redirect_url=POST_LOGOUT_URI)


def test_rp_initiated_logout_ends_the_provider_session(client: OidcClient, sessions: Sessions) -> None:
    login = client.begin(REDIRECT_URI)
    driver = LoginDriver()
    url = driver.authorize(login.url, "ada", USERS["ada"]["password"], stop_at=REDIRECT_URI)
    params = callback_params(url)
    tokens = client.exchange(params["code"], code_verifier=login.code_verifier, nonce=login.nonce,
                             redirect_url=REDIRECT_URI)  # fmt: skip
    end = client.end_session_url(id_token_hint=tokens.id_token, post_logout_redirect_url=POST_LOGOUT_URI,
                                 state="s-1")  # fmt: skip
    assert end is not None and end.startswith(client.metadata().end_session_endpoint or "-")
    assert driver.logout(end) == POST_LOGOUT_URI + "?state=s-1"
    # Signed out at the provider: the next authorization shows the login form again.
    again = client.begin(REDIRECT_URI)
    answer = driver.request(again.url)
    while answer.status in {302, 303}:
        answer = driver.request(answer.headers["Location"] if answer.headers["Location"].startswith("http")
                                else client.issuer + answer.headers["Location"])  # fmt: skip
    assert 'id="login"' in answer.body


def test_a_stopped_provider_leaves_no_process() -> None:
    from tests.support.processes import gone

    with running_provider() as provider:
        pid = provider.process.pid
    assert gone(pid, within_s=5)
