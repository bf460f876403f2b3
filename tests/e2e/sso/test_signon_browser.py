"""A person signs in once in real Chromium (Selenium) through the provider's own login form,
uses the page as themselves, reaches the proxied Airflow 3 and Airflow 2 UIs, signs out and
is sent to the login again.  One browser and the session's servers for the whole file."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.sso.conftest import SsoGateway
from tests.e2e.test_page_browser import answer_of
from tests.e2e.test_page_browser import browser as _browser_fixture  # noqa: F401 - the shared Chromium

pytestmark = [pytest.mark.airflow3, pytest.mark.airflow2]


@pytest.fixture(scope="module")
def browser(_browser_fixture: WebDriver) -> Iterator[WebDriver]:  # noqa: F811
    yield _browser_fixture


def provider_login(browser: WebDriver, user: str) -> None:
    """Fill in the provider's own login form (and its consent, if it asks)."""
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, "form#login"))
    browser.find_element(By.NAME, "username").send_keys(user)
    browser.find_element(By.NAME, "password").send_keys(f"{user}-password")
    browser.find_element(
        By.CSS_SELECTOR, "form#login button[type=submit], form#login input[type=submit]"
    ).click()


def audit_of(gateway: SsoGateway, request_filter: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while True:
        rows = [json.loads(line) for line in gateway.audit_file.read_text().splitlines()]
        found = [r for r in rows if r.get("route") == "api" and r.get("api") == request_filter]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_sign_in_use_the_page_and_airflow_then_sign_out(
    browser: WebDriver, sso3: SsoGateway, sso2: SsoGateway
) -> None:
    # A protected Airflow 3 page sends the browser to the provider's own login form.
    browser.delete_all_cookies()
    browser.get(f"{sso3.url}/dags")
    provider_login(browser, "ada")
    WebDriverWait(browser, 30).until(lambda b: b.current_url.startswith(sso3.url))
    assert "airflow" in browser.page_source.lower()  # Airflow 3's own UI, proxied (its login or the DAGs)

    # The page: signed in, no token field, a sign-out button; a form call audited as ada.
    browser.get(f"{sso3.url}/admin/rest_api/")
    assert browser.find_element(By.ID, "signed-in-as").text == "ada"
    assert not browser.find_elements(By.ID, "token")
    browser.find_element(By.CSS_SELECTOR, "#api-rest_api_plugin_version button[type=submit]").click()
    status, body = answer_of(browser, "rest_api_plugin_version", timeout=120)
    assert status == 200 and body["status"] == "OK"
    browser.find_element(By.CSS_SELECTOR, "#api-whoami button[type=submit]").click()
    status, body = answer_of(browser, "whoami", timeout=60)
    assert status == 200 and body["data"]["principal"]["name"] == "ada"  # type: ignore[index]
    assert body["data"]["principal"]["method"] == "oidc"  # type: ignore[index]
    audited = audit_of(sso3, "rest_api_plugin_version")
    assert audited and audited[-1]["principal"] == "ada" and audited[-1]["auth_method"] == "oidc"

    # Airflow 2 behind its own gateway: the provider remembers ada (single sign-on, no form).
    browser.get(f"{sso2.url}/home")
    WebDriverWait(browser, 30).until(lambda b: b.current_url.startswith(sso2.url))
    WebDriverWait(browser, 30).until(lambda b: "/admin/rest_api/" not in b.current_url)
    assert "airflow" in browser.page_source.lower()  # Airflow 2's own page (its login or home), proxied

    # Sign out on the Airflow 3 gateway: the provider's logout, then the login form again.
    browser.get(f"{sso3.url}/admin/rest_api/")
    browser.find_element(By.ID, "sign-out").click()
    WebDriverWait(browser, 20).until(lambda b: b.current_url.startswith(sso3.provider.issuer))
    confirm = browser.find_elements(By.CSS_SELECTOR, "button[name=logout], button[type=submit]")
    if confirm:  # oidc-provider asks to confirm the sign-out at the provider too
        confirm[0].click()
    WebDriverWait(browser, 20).until(lambda b: b.current_url.startswith(f"{sso3.url}/admin/rest_api/"))
    assert not browser.find_elements(By.ID, "signed-in-as")
    assert browser.find_element(By.ID, "sign-in")
    browser.get(f"{sso3.url}/dags")
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, "form#login"))
    assert browser.current_url.startswith(sso3.provider.issuer)
