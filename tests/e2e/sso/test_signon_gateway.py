"""Sign-on through the real gateway (gunicorn) and the real provider, over HTTP: the routes,
the browser redirect, the cookie, policies by group, and the attacks, each a test."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from openapi_spec_validator import validate

from tests.e2e.sso.conftest import (
    COOKIE,
    SECRET_ENV,
    SsoGateway,
    location_path,
    set_cookies,
    start_sso_gateway,
)
from tests.support.airflow import AirflowHome
from tests.support.browser import Browser
from tests.support.http import get, request
from tests.support.oidc import LoginDriver, OidcProvider, client_metadata
from tests.support.postgres import free_port

pytestmark = pytest.mark.airflow3

JSON = {"Accept": "application/json"}


def csrf_of(browser: Browser) -> str:
    """The session's CSRF token, as the page carries it."""
    page = browser.get("/admin/rest_api/")
    text = page.body.decode()
    marker = 'data-csrf-token="'
    assert marker in text, "not signed in"
    return text.split(marker, 1)[1].split('"', 1)[0]


def whoami(browser: Browser, csrf: str) -> dict[str, object]:
    reply = browser.get("/admin/rest_api/api?api=whoami", headers={**JSON, "X-CSRF-Token": csrf})
    assert reply.status == 200, reply.body[:400]
    return reply.json["data"]  # type: ignore[no-any-return]


def test_sign_in_sets_a_new_session_cookie_and_lands_on_next(sso3: SsoGateway) -> None:
    browser = sso3.browser()
    done = sso3.sign_in(browser, next_path=quote("/dags?tab=runs", safe=""))
    assert done.status == 303 and location_path(done) == "/dags?tab=runs"
    cookie = next(c for c in set_cookies(done) if c.startswith(f"{COOKIE}="))
    flags = {part.strip().split("=")[0] for part in cookie.split(";")}
    assert {"HttpOnly", "SameSite", "Path"} <= flags and "Secure" not in flags  # plain HTTP here
    assert "SameSite=Lax" in cookie and "Path=/;" in cookie + ";"
    me = whoami(browser, csrf_of(browser))
    assert me["principal"]["name"] == "ada" and me["principal"]["method"] == "oidc"  # type: ignore[index]
    assert set(me["principal"]["groups"]) == {"team-a-operators", "viewers"}  # type: ignore[index]


def test_browser_without_session_is_sent_to_login_others_are_not(sso3: SsoGateway) -> None:
    reply = sso3.browser().get("/dags?x=1")
    assert reply.status == 303 and location_path(reply) == "/admin/rest_api/login?next=" + quote(
        "/dags?x=1", safe=""
    )
    # Machine clients on proxied paths: unchanged (Airflow's own auth applies).
    assert get(f"{sso3.url}/api/v2/version", headers=JSON).status == 200
    # Own endpoints without credentials: 401/403 as before; with the plugin token: fine.
    assert get(f"{sso3.url}/admin/rest_api/api?api=version", headers=JSON).status in (401, 403)
    ok = get(f"{sso3.url}/admin/rest_api/api?api=version", headers={"rest_api_plugin_http_token": "changeme"})
    assert ok.status == 200


def test_the_served_openapi_document_describes_sign_on(sso3: SsoGateway) -> None:
    """The session cookie (with its CSRF token) and the three routes, as this gateway answers them."""
    doc = get(f"{sso3.url}/admin/rest_api/openapi.json").json
    validate(doc)
    assert doc["components"]["securitySchemes"]["session"]["name"] == COOKIE
    assert {"session": [], "csrfToken": []} in doc["security"]
    login = doc["paths"]["/admin/rest_api/login"]["get"]
    assert {"/admin/rest_api/oidc/callback", "/admin/rest_api/logout"} <= set(doc["paths"])
    reply = sso3.browser().get("/admin/rest_api/login?next=%2Fdags")
    assert str(reply.status) in login["responses"] and reply.status == 303
    assert reply.headers["Location"].startswith(sso3.provider.issuer)


def test_session_reaches_the_proxied_airflow3_ui_audited_as_the_person(sso3: SsoGateway) -> None:
    browser = sso3.browser()
    sso3.sign_in(browser)
    reply = browser.get("/", headers={"X-Request-ID": "sso-proxied-0001"})
    assert reply.status == 200 and b"rest_api/login" not in reply.body
    deadline = time.monotonic() + 10
    while True:  # the audit event is written when the response closes
        records = [json.loads(line) for line in sso3.audit_file.read_text().splitlines()]
        mine = [r for r in records if r.get("request_id") == "sso-proxied-0001"]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert mine and mine[0]["principal"] == "ada" and mine[0]["auth_method"] == "oidc"
    assert mine[0]["route"] == "proxy" and mine[0]["upstream_status"] == 200


def test_policies_govern_a_session_by_its_groups(sso3: SsoGateway) -> None:
    ada, bob = sso3.browser(), sso3.browser()
    sso3.sign_in(ada, "ada")
    sso3.sign_in(bob, "bob")
    ada_csrf, bob_csrf = csrf_of(ada), csrf_of(bob)
    assert whoami(bob, bob_csrf)["principal"]["groups"] == ["viewers"]  # type: ignore[index]
    call = "/admin/rest_api/api?api=list_pools"
    assert ada.get(call, headers={**JSON, "X-CSRF-Token": ada_csrf}).status == 200
    denied = bob.get(call, headers={**JSON, "X-CSRF-Token": bob_csrf})
    assert denied.status == 403 and b"default-deny" in denied.body


# --- attacks -----------------------------------------------------------------------------


def test_wrong_state_is_refused(sso3: SsoGateway) -> None:
    browser = sso3.browser()
    callback = sso3.callback_url(browser)
    query = parse_qs(urlsplit(callback).query)
    forged = f"/admin/rest_api/oidc/callback?code={query['code'][0]}&state={secrets.token_urlsafe(32)}"
    reply = browser.get(forged)
    assert (
        reply.status == 400
        and b"sign in again" in reply.body
        and not any(c.startswith(f"{COOKIE}=") for c in set_cookies(reply))
    )


def test_replayed_state_is_refused(sso3: SsoGateway) -> None:
    browser = sso3.browser()
    callback = sso3.callback_url(browser).removeprefix(sso3.url)
    assert browser.get(callback).status == 303
    again = Browser(sso3.url)
    again.cookies = dict(browser.cookies)
    assert again.get(callback).status == 400


def test_state_from_another_browser_is_refused(sso3: SsoGateway) -> None:
    callback = sso3.callback_url(sso3.browser()).removeprefix(sso3.url)
    assert sso3.browser().get(callback).status == 400  # no binding cookie: the victim's browser


def test_replayed_code_is_refused(sso3: SsoGateway) -> None:
    browser = sso3.browser()
    first = sso3.callback_url(browser).removeprefix(sso3.url)
    assert browser.get(first).status == 303
    code = parse_qs(urlsplit(first).query)["code"][0]
    # A fresh login of the same browser (valid state and binding) with the spent code.
    started = browser.get("/admin/rest_api/login")
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    reply = browser.get(f"/admin/rest_api/oidc/callback?code={quote(code)}&state={quote(state)}")
    assert reply.status == 401 and b"invalid_grant" in reply.body


@pytest.mark.parametrize("mangle", ["tampered", "guessed"])
def test_tampered_or_guessed_session_id_is_no_session(sso3: SsoGateway, mangle: str) -> None:
    browser = sso3.browser()
    sso3.sign_in(browser)
    csrf = csrf_of(browser)
    real = browser.cookies[COOKIE]
    fake = (
        real[:-1] + ("A" if real[-1] != "A" else "B") if mangle == "tampered" else secrets.token_urlsafe(32)
    )
    browser.cookies[COOKIE] = fake
    api = browser.get("/admin/rest_api/api?api=whoami", headers={**JSON, "X-CSRF-Token": csrf})
    assert api.status in (401, 403)
    assert browser.get("/home").status == 303  # to the login
    assert b"signed-in-as" not in browser.get("/admin/rest_api/").body


def test_a_preset_session_cookie_is_not_adopted(sso3: SsoGateway) -> None:
    """Session fixation: an id planted before the login is neither kept nor made valid."""
    attacker = sso3.browser()
    sso3.sign_in(attacker, "bob")
    planted = attacker.cookies[COOKIE]  # even a real session id of the attacker's
    victim = sso3.browser()
    victim.cookies[COOKIE] = planted
    done = sso3.sign_in(victim, "ada")
    assert victim.cookies[COOKIE] != planted
    assert whoami(victim, csrf_of(victim))["principal"]["name"] == "ada"  # type: ignore[index]
    attacker.cookies[COOKIE] = planted
    assert b"signed-in-as" not in attacker.get("/admin/rest_api/").body  # the planted id ended
    assert done.status == 303


OPEN_REDIRECTS = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "/%2F/evil.example/",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%252F%252Fevil.example",
    "javascript:alert(1)",
    "/\t/evil.example",
]


def test_open_redirects_in_next_land_on_the_page(sso3: SsoGateway) -> None:
    driver = LoginDriver()  # one provider session: the later logins skip its form
    for target in OPEN_REDIRECTS:
        browser = sso3.browser()
        done = sso3.sign_in(browser, next_path=quote(target, safe=""), driver=driver)
        assert done.status == 303, target
        assert done.headers["Location"] == "/admin/rest_api/", target


def test_cross_origin_posts_with_the_session_are_refused(sso3: SsoGateway) -> None:
    browser = sso3.browser()
    sso3.sign_in(browser)
    csrf = csrf_of(browser)
    form = {"Content-Type": "application/x-www-form-urlencoded", **JSON}
    body = b"api=version"
    own = "/admin/rest_api/api"
    evil = {"Origin": "http://evil.example"}
    same = {"Origin": sso3.url}
    # The page endpoint: another origin even with the token, the right origin without it.
    assert (
        browser.request("POST", own, headers={**form, **evil, "X-CSRF-Token": csrf}, body=body).status == 403
    )
    assert browser.request("POST", own, headers={**form, **same}, body=body).status == 403
    site = {"Sec-Fetch-Site": "cross-site"}
    assert (
        browser.request("POST", own, headers={**form, **site, "X-CSRF-Token": csrf}, body=body).status == 403
    )
    ok = browser.request("POST", own, headers={**form, **same, "X-CSRF-Token": csrf}, body=body)
    assert ok.status == 200, ok.body[:300]
    # A proxied path: refused by the gateway before Airflow; same-origin goes through to Airflow.
    proxied = "/api/v2/pools"
    refused = browser.request(
        "POST", proxied, headers={**evil, "Content-Type": "application/json"}, body=b"{}"
    )
    assert refused.status == 403 and refused.json["error"] == "csrf"
    passed = browser.request(
        "POST", proxied, headers={**same, "Content-Type": "application/json"}, body=b"{}"
    )
    assert passed.status != 403 or b"csrf" not in passed.body
    # Without the session, the same cross-origin POST is Airflow's business (not the gateway's).
    anonymous = request(
        "POST", sso3.url + proxied, headers={**evil, "Content-Type": "application/json"}, body=b"{}"
    )
    assert b'"csrf"' not in anonymous.body


def test_logout_needs_the_csrf_token_then_ends_the_session(sso3: SsoGateway) -> None:
    browser = sso3.browser()
    sso3.sign_in(browser)
    csrf = csrf_of(browser)
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": sso3.url}
    forged = browser.request("POST", "/admin/rest_api/logout", headers={**form, "Origin": "http://evil.example"},
                             body=f"csrf_token={csrf}".encode())  # fmt: skip
    assert forged.status == 403
    out = browser.request("POST", "/admin/rest_api/logout", headers=form, body=f"csrf_token={csrf}".encode())
    assert out.status == 303
    assert out.headers["Location"].startswith(sso3.provider.issuer + "/session/end")
    assert any(c.startswith(f"{COOKIE}=;") and "Max-Age=0" in c for c in set_cookies(out))
    assert COOKIE not in browser.cookies
    assert browser.get("/home").status == 303


@pytest.fixture(scope="module")
def down_gateway(
    airflow3: AirflowHome, oidc_provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
):  # type: ignore[no-untyped-def]
    gateway = start_sso_gateway(
        airflow3,
        None,
        oidc_provider,
        tmp_path_factory.mktemp("sso-down"),
        issuer=f"http://127.0.0.1:{free_port()}",
    )
    yield gateway
    gateway.server.stop()


def test_provider_unreachable_is_a_503_page_not_a_traceback(down_gateway: SsoGateway) -> None:
    started = time.monotonic()
    page = down_gateway.browser().get("/admin/rest_api/login?next=/home")
    assert page.status == 503 and page.content_type.startswith("text/html")
    assert b"unreachable" in page.body and b"Traceback" not in page.body
    api = get(f"{down_gateway.url}/admin/rest_api/login", headers=JSON)
    assert api.status == 503 and "unreachable" in api.json["output"]
    assert time.monotonic() - started < 30
    assert "Traceback" not in Path(down_gateway.server.log).read_text()


def test_an_admins_revocation_ends_every_session_of_the_person(sso3: SsoGateway) -> None:
    """``airflow-gateway revoke-sessions bob`` against the shared store: both of bob's browsers
    lose their session within the cache TTL; ada's is untouched."""
    bob_one, bob_two, ada = sso3.browser(), sso3.browser(), sso3.browser()
    sso3.sign_in(bob_one, "bob")
    sso3.sign_in(bob_two, "bob")
    sso3.sign_in(ada, "ada")
    tokens = {name: csrf_of(b) for name, b in (("one", bob_one), ("two", bob_two), ("ada", ada))}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.entry.commands", "revoke-sessions", "bob"],
        env=sso3.server.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # Two here, more when an earlier test of the session left bob signed in too.
    assert done.returncode == 0 and int(done.stdout.split()[0]) >= 2 and "of bob ended" in done.stdout, done
    deadline = time.monotonic() + 10  # sessions.cache_ttl is 1 s here
    while time.monotonic() < deadline:
        states = [
            b.get("/admin/rest_api/api?api=whoami", headers={**JSON, "X-CSRF-Token": tokens[n]}).status
            for n, b in (("one", bob_one), ("two", bob_two))
        ]
        if all(status != 200 for status in states):
            break
        time.sleep(0.3)
    assert all(status in (401, 403) for status in states), states
    assert whoami(ada, tokens["ada"])["principal"]["name"] == "ada"  # type: ignore[index]


def test_a_session_is_renewed_by_its_refresh_token_and_ends_when_the_provider_refuses_it(
    sso3: SsoGateway,
) -> None:
    """Renewal before the ID token expires, against the real provider: with ID tokens of 63 s
    the session is renewed once less than 60 s are left; once its refresh token has expired
    (20 s here), the next renewal is refused and the session ends."""
    sso3.provider.set_ttl(IdToken=63, RefreshToken=20)
    try:
        browser = sso3.browser()
        mark = len(sso3.server.log_text())
        assert sso3.sign_in(browser, "ada").status == 303
        csrf = csrf_of(browser)
        time.sleep(4)  # the ID token now has less than 60 s left: the next request renews it
        assert whoami(browser, csrf)["principal"]["name"] == "ada"  # type: ignore[index]
        deadline = time.monotonic() + 15
        while "session of ada renewed with its refresh token" not in sso3.server.log_text()[mark:]:
            assert time.monotonic() < deadline, sso3.server.log_text()[mark:][-3000:]
            time.sleep(0.2)
        renewed_at = time.monotonic()
        # Still signed in: the renewed session serves without a new login.
        assert whoami(browser, csrf)["principal"]["name"] == "ada"  # type: ignore[index]
        # The renewed refresh token expires 20 s after the renewal; the next renewal is refused.
        time.sleep(max(0.0, renewed_at + 22 - time.monotonic()))
        ended = browser.get("/admin/rest_api/api?api=whoami", headers={**JSON, "X-CSRF-Token": csrf})
        assert ended.status in (401, 403), ended.body[:400]  # no session: anonymous, refused
        assert "session of ada ended: refresh failed" in sso3.server.log_text()[mark:]
        # Ended for good (in the shared store): the next request finds no session either.
        assert browser.get("/admin/rest_api/api?api=whoami", headers=JSON).status in (401, 403)
        assert browser.get("/admin/rest_api/").body.count(b"data-csrf-token") == 0
    finally:
        sso3.provider.set_ttl(IdToken=600, RefreshToken=86400)


def test_a_client_secret_the_provider_refuses_is_a_502_page_not_a_traceback(sso3: SsoGateway) -> None:
    """A misconfigured client (its secret rotated at the provider only): the callback answers
    502 naming the provider's refusal, no session, no secret and no traceback."""
    secret = sso3.server.env[SECRET_ENV]
    registered = client_metadata(
        client_id=sso3.client_id, secret=secret,
        redirect_uris=(f"{sso3.url}/admin/rest_api/oidc/callback",),
        post_logout_redirect_uris=(f"{sso3.url}/admin/rest_api/",),
    )  # fmt: skip
    sso3.provider.add_client({**registered, "client_secret": "rotated-at-the-provider-" + "z" * 24})
    try:
        answer = sso3.sign_in(sso3.browser(), "ada")
        assert answer.status == 502, answer.body[:400]
        assert answer.content_type.startswith("text/html") and b"invalid_client" in answer.body
        assert b"Traceback" not in answer.body and secret.encode() not in answer.body
        assert not any(c.startswith(f"{COOKIE}=") and "Max-Age=0" not in c for c in set_cookies(answer))
        assert "Traceback" not in sso3.server.log_text()
    finally:
        sso3.provider.add_client(registered)
