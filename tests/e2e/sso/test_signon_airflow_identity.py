"""One sign-in at the gateway gives a person their Airflow identity and role (Airflow 3 with
``airflow_gateway_auth.GatewayAuthManager`` reading the gateway's JWKS), in real Chromium.

ada's groups map to ``op``, bob's to ``viewer``: the Airflow UI session (Airflow's own
``_token`` cookie, issued by the auth manager from the gateway's assertion) names the person,
with no second login; ada's DAG run, triggered from the browser, records her; bob's is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import jwt
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.sso.conftest import SsoGateway, start_sso_gateway
from tests.e2e.sso.test_signon_browser import provider_login
from tests.e2e.test_page_browser import browser as _browser_fixture  # noqa: F401 - the shared Chromium
from tests.support.airflow import AirflowHome
from tests.support.airflow_servers import AirflowServer, start_api_server, start_webserver
from tests.support.assertions import AUDIENCE, ISSUER, airflow2_env, airflow3_env
from tests.support.oidc import OidcProvider
from tests.support.servers import free_port

pytestmark = [pytest.mark.airflow3, pytest.mark.airflow2]

ROLES = {"team-a-operators": "op", "viewers": "viewer"}  # ada has both groups, bob only viewers


@pytest.fixture(scope="module")
def browser(_browser_fixture: WebDriver) -> Iterator[WebDriver]:  # noqa: F811
    yield _browser_fixture


@pytest.fixture(scope="module")
def identity3(
    airflow3: AirflowHome, oidc_provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AirflowServer, SsoGateway]]:
    tmp = tmp_path_factory.mktemp("sso-identity3")
    port = free_port()
    env = airflow3_env(f"http://127.0.0.1:{port}/.well-known/jwks.json", roles=ROLES)
    airflow = start_api_server(airflow3, tmp, extra_env=env)
    gateway = start_sso_gateway(
        airflow3, airflow, oidc_provider, tmp,
        settings={"ASSERTION__ISSUER": ISSUER, "ASSERTION__AUDIENCE": AUDIENCE,
                  "SESSIONS__COOKIE_NAME": "airflow_gateway_session_id3"},
        port=port,
    )  # fmt: skip
    yield airflow, gateway
    gateway.server.stop()
    airflow.stop()


def trigger_from_the_browser(browser: WebDriver, run_id: str, api: str = "v2") -> int:
    """POST a DAG run from the page's own origin, as the Airflow UI does (same-origin fetch):
    Airflow 3's ``/api/v2`` (its run needs ``logical_date``), or Airflow 2's ``/api/v1``."""
    script = """
        const [url, body, done] = arguments;
        fetch(url, {method: 'POST', credentials: 'same-origin',
               headers: {'Content-Type': 'application/json', 'Accept': 'application/json'},
               body: JSON.stringify(body)})
          .then(r => done(r.status), e => done(-1));
    """
    body: dict[str, object] = {"dag_run_id": run_id, **({"logical_date": None} if api == "v2" else {})}
    browser.set_script_timeout(60)
    return int(browser.execute_async_script(script, f"/api/{api}/dags/gw_example/dagRuns", body))


def sign_in_to_airflow(browser: WebDriver, gateway: SsoGateway, user: str) -> dict[str, object]:
    """Open Airflow's UI through the gateway: the gateway's sign-in, then Airflow's own login
    route exchanges the assertion for its ``_token`` cookie with no form of Airflow's."""
    browser.delete_all_cookies()
    browser.get(f"{gateway.url}/auth/login?next={gateway.url}/")
    if browser.find_elements(By.CSS_SELECTOR, "form#login") or gateway.provider.issuer in browser.current_url:
        provider_login(browser, user)
    WebDriverWait(browser, 60).until(lambda b: b.get_cookie("_token") is not None)
    token = browser.get_cookie("_token")
    assert token is not None
    return dict(jwt.decode(token["value"], options={"verify_signature": False}))


def test_one_sign_in_gives_the_person_their_airflow_identity_and_role(
    browser: WebDriver, identity3: tuple[AirflowServer, SsoGateway], airflow3: AirflowHome
) -> None:
    _, gateway = identity3
    claims = sign_in_to_airflow(browser, gateway, "ada")
    assert claims["sub"] == "ada" and str(claims["role"]).lower() == "op", claims  # Airflow's own session
    browser.get(f"{gateway.url}/")
    WebDriverWait(browser, 60).until(lambda b: "airflow" in b.page_source.lower())
    assert "/login" not in browser.current_url  # no second login at Airflow
    run_id = f"sso-{uuid.uuid4().hex[:12]}"
    assert trigger_from_the_browser(browser, run_id) == 200
    assert airflow3.sql("SELECT triggering_user_name FROM dag_run WHERE run_id = ?", run_id) == [("ada",)]
    events = airflow3.sql(
        "SELECT owner FROM log WHERE event = 'trigger_dag_run' AND extra LIKE ?", f"%{run_id}%"
    )
    assert ("ada",) in events, events


def test_a_viewer_signed_in_at_the_gateway_cannot_trigger(
    browser: WebDriver, identity3: tuple[AirflowServer, SsoGateway]
) -> None:
    _, gateway = identity3
    # ada's provider session would sign her in again: sign out at the provider first.
    browser.get(f"{gateway.provider.issuer}/session/end")
    confirm = browser.find_elements(By.CSS_SELECTOR, "button[name=logout], button[type=submit]")
    if confirm:
        confirm[0].click()
    claims = sign_in_to_airflow(browser, gateway, "bob")
    assert claims["sub"] == "bob" and str(claims["role"]).lower() == "viewer", claims
    browser.get(f"{gateway.url}/")
    assert trigger_from_the_browser(browser, f"sso-{uuid.uuid4().hex[:12]}") == 403


@pytest.fixture(scope="module")
def identity2(
    airflow2: AirflowHome, oidc_provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AirflowServer, SsoGateway]]:
    """Airflow 2 with the gateway's FAB pieces (UI and /api/v1) reading the gateway's JWKS."""
    tmp = tmp_path_factory.mktemp("sso-identity2")
    port = free_port()
    env = airflow2_env(tmp, f"http://127.0.0.1:{port}/.well-known/jwks.json", roles=ROLES)
    airflow = start_webserver(airflow2, tmp, extra_env=env)
    gateway = start_sso_gateway(
        airflow2, airflow, oidc_provider, tmp,
        settings={"ASSERTION__ISSUER": ISSUER, "ASSERTION__AUDIENCE": AUDIENCE,
                  "SESSIONS__COOKIE_NAME": "airflow_gateway_session_id2"},
        port=port,
    )  # fmt: skip
    yield airflow, gateway
    gateway.server.stop()
    airflow.stop()


def test_airflow2_ui_knows_the_person_from_one_sign_in(
    browser: WebDriver, identity2: tuple[AirflowServer, SsoGateway], airflow2: AirflowHome
) -> None:
    """Airflow 2's FAB UI opens as the person (registered with the mapped role) with no login
    of its own; the person's run through /api/v1 is recorded under their name."""
    _, gateway = identity2
    browser.delete_all_cookies()
    browser.get(f"{gateway.provider.issuer}/session/end")  # no provider session left from other tests
    confirm = browser.find_elements(By.CSS_SELECTOR, "button[name=logout], button[type=submit]")
    if confirm:
        confirm[0].click()
    browser.get(f"{gateway.url}/home")
    provider_login(browser, "ada")
    WebDriverWait(browser, 60).until(lambda b: b.current_url.startswith(f"{gateway.url}/home"))
    assert "ada" in browser.page_source.lower()  # FAB's navbar names the signed-in user
    roles = airflow2.sql(
        "SELECT r.name FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id "
        "JOIN ab_role r ON r.id = ur.role_id WHERE u.username = 'ada'"
    )
    assert ("Op",) in roles, roles
    run_id = f"sso2-{uuid.uuid4().hex[:12]}"
    assert trigger_from_the_browser(browser, run_id, "v1") == 200
    # With FAB's session cookie beside the assertion, Airflow files it as ui.post_dag_run.
    events = airflow2.sql(
        "SELECT owner FROM log WHERE event LIKE '%.post_dag_run' AND extra LIKE ?", f"%{run_id}%"
    )
    assert ("ada",) in events, events
