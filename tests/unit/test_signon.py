"""The sign-on wiring without a provider: cookies, the browser redirect, the CSRF rules, the
page for one browser, and the settings' cross-checks.  The flow itself is tested against the
real provider in tests/e2e/sso/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from gateway.config.loader import load_config
from gateway.config.settings import ConfigError
from gateway.core.errors import Refused, Unauthorized
from gateway.identity.oidc import OidcClient
from gateway.identity.principal import ANONYMOUS, METHODS, Principal
from gateway.sessions.signon import LoginRedirect, SignOn, cookie_value, without_cookies
from gateway.sessions.store import Sessions, SessionStore
from gateway.web.page import personal_page

COOKIE = "airflow_gateway_session"


@pytest.fixture
def signon(tmp_path: Path) -> SignOn:
    store = SessionStore(sqlite_path=tmp_path / "s.sqlite3")
    sessions = Sessions(store, lifetime_s=3600, idle_timeout_s=900)
    client = OidcClient(issuer="http://127.0.0.1:9", client_id="gw", client_secret="s")  # never contacted
    return SignOn(client, sessions, protect=("/home", "/dags"))


def environ(path: str = "/", method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    return EnvironBuilder(
        path=path, method=method, headers=headers or {}, base_url="http://gw.test"
    ).get_environ()


def signed_in(signon: SignOn) -> tuple[str, str]:
    session_id, record = signon.sessions.create(principal="ada", subject="s1", groups=["viewers"])
    return session_id, record.csrf_token


def test_oidc_is_a_principal_method() -> None:
    assert "oidc" in METHODS


def test_cookie_value_and_without_cookies() -> None:
    header = f"other=1; {COOKIE}=abc; {COOKIE}_login=x; _token=t"
    assert cookie_value(header, COOKIE) == "abc"
    assert cookie_value("x_airflow_gateway_session=1", COOKIE) is None
    assert cookie_value(None, COOKIE) is None
    assert without_cookies(header, [COOKIE, f"{COOKIE}_login"]) == "other=1; _token=t"


def test_strip_removes_the_gateway_cookies_before_the_proxy(signon: SignOn) -> None:
    seen: list[str | None] = []

    def proxy(env: Any, start_response: Any) -> list[bytes]:
        seen.append(env.get("HTTP_COOKIE"))
        return []

    app = signon.strip(proxy)
    app(environ(headers={"Cookie": f"{COOKIE}=abc; session=airflow"}), lambda *a: None)
    app(environ(headers={"Cookie": f"{COOKIE}=abc"}), lambda *a: None)
    assert seen == ["session=airflow", None]


def test_browser_navigation_to_a_protected_path_is_sent_to_login(signon: SignOn) -> None:
    missing = signon.missing_with(lambda env, *, own: ANONYMOUS, closed=True)
    html = {"Accept": "text/html,*/*"}
    with pytest.raises(LoginRedirect) as redirect:
        missing(environ("/dags/x", headers=html, method="GET"), own=False)
    assert redirect.value.location == "/admin/rest_api/login?next=%2Fdags%2Fx"
    assert redirect.value.to_response(None).status_code == 303
    # Not a browser navigation, not protected, or Airflow's own credential: as before.
    assert missing(environ("/dags", headers={"Accept": "application/json"}), own=False) is ANONYMOUS
    assert missing(environ("/api/v2/dags", headers=html), own=False) is ANONYMOUS
    assert missing(environ("/dags", headers={**html, "Authorization": "Basic x"}), own=False) is ANONYMOUS
    assert missing(environ("/dags", method="POST", headers=html), own=False) is ANONYMOUS
    # The gateway's own routes: never anonymous while sign-on is on (unless allowed).
    with pytest.raises(Unauthorized):
        missing(environ("/admin/rest_api/api", headers=html), own=True)
    assert signon.missing_with(lambda env, *, own: ANONYMOUS, closed=False)(environ(), own=True) is ANONYMOUS


def test_session_needs_the_csrf_token_on_own_routes_and_same_origin_for_unsafe(signon: SignOn) -> None:
    session_id, csrf = signed_in(signon)
    cookie = {"Cookie": f"{COOKIE}={session_id}"}
    principal = signon(environ("/admin/rest_api/api", headers={**cookie, "X-CSRF-Token": csrf}), own=True)
    assert principal == Principal("ada", "oidc", frozenset({"viewers"}))
    for headers in (
        cookie,  # GET without the token: the plugin's API runs calls on GET
        {**cookie, "X-CSRF-Token": csrf + "x"},
    ):
        with pytest.raises(Refused, match="CSRF"):
            signon(environ("/admin/rest_api/api", headers=headers), own=True)
    post = {**cookie, "X-CSRF-Token": csrf}
    with pytest.raises(Refused, match="cross-origin"):
        signon(environ("/admin/rest_api/api", "POST", {**post, "Origin": "http://evil.test"}), own=True)
    with pytest.raises(Refused, match="cross-origin"):
        signon(environ("/admin/rest_api/api", "POST", {**post, "Origin": "null"}), own=True)
    assert signon(environ("/admin/rest_api/api", "POST", {**post, "Origin": "http://gw.test"}), own=True)
    assert signon(environ("/admin/rest_api/api", "POST", {**post, "Sec-Fetch-Site": "same-origin"}), own=True)
    # Proxied paths: safe methods pass, unsafe ones must be same-origin.
    assert signon(environ("/dags", headers=cookie), own=False)
    with pytest.raises(Refused, match="cross-origin"):
        signon(environ("/api/v2/pools", "POST", {**cookie, "Sec-Fetch-Site": "cross-site"}), own=False)
    assert signon(environ("/api/v2/pools", "POST", {**cookie, "Origin": "http://gw.test"}), own=False)
    # Tampered and unknown ids are no session at all.
    # The last character changed for certain (ids are random: one in 64 already ends in "A").
    tampered = session_id[:-1] + ("A" if session_id[-1] != "A" else "B")
    assert signon(environ(headers={"Cookie": f"{COOKIE}={tampered}"}), own=False) is None


def test_personal_page_shows_who_is_signed_in() -> None:
    page = '<header><!--session--><div class="token">T</div><!--/session--></header>'
    mine = personal_page(page, principal="<ada>", csrf_token="tok")
    assert "&lt;ada&gt;" in mine and 'data-csrf-token="tok"' in mine and 'class="token"' not in mine
    assert 'action="/admin/rest_api/logout"' in mine and 'name="csrf_token" value="tok"' in mine
    anonymous = personal_page(page, principal=None, csrf_token=None)
    assert 'id="sign-in"' in anonymous and 'class="token"' in anonymous


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AIRFLOW_GATEWAY__OIDC__CLIENT_ID": "gw"}, "oidc.client_id is set but oidc.issuer is not"),
        ({"AIRFLOW_GATEWAY__OIDC__ISSUER": "https://idp.test"}, "set oidc.client_id and exactly one"),
        (
            {
                "AIRFLOW_GATEWAY__OIDC__ISSUER": "https://idp.test",
                "AIRFLOW_GATEWAY__OIDC__CLIENT_ID": "gw",
                "AIRFLOW_GATEWAY__OIDC__CLIENT_SECRET_ENV": "A",
                "AIRFLOW_GATEWAY__OIDC__CLIENT_SECRET_FILE": "/x",
            },
            "exactly one",
        ),
        ({"AIRFLOW_GATEWAY__OIDC__ALGORITHMS": "HS256"}, "HS"),
        ({"AIRFLOW_GATEWAY__SESSIONS__IDLE_TIMEOUT": "30"}, "idle_timeout"),
    ],
)
def test_settings_cross_checks(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env)


def test_client_secret_from_the_environment_only(tmp_path: Path) -> None:
    env = {
        "AIRFLOW_GATEWAY__OIDC__ISSUER": "https://idp.test/",
        "AIRFLOW_GATEWAY__OIDC__CLIENT_ID": "gw",
        "AIRFLOW_GATEWAY__OIDC__CLIENT_SECRET_ENV": "GW_SECRET",
        "AIRFLOW_GATEWAY__GATEWAY__STATE_DIR": str(tmp_path),
    }
    config = load_config(env)
    assert config.oidc.issuer == "https://idp.test/"  # kept exactly, trailing slash included
    with pytest.raises(ConfigError, match="GW_SECRET is empty or unset"):
        SignOn.from_config(config, {})
    signon = SignOn.from_config(config, {"GW_SECRET": "s3cret"})
    assert signon is not None and signon.client.issuer == "https://idp.test/"
    assert (tmp_path / "sessions.sqlite3").exists()
    assert SignOn.from_config(load_config({}), {}) is None
