"""The admin page in real headless Chromium (Debian's chromium + chromedriver), gunicorn and Airflow 3."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import TOKEN
from tests.support.airflow import AirflowHome
from tests.support.http import get
from tests.support.servers import GatewayServer

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# No internet here: without these Chromium keeps trying to reach Google's services.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,2000",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium driven by Selenium through Debian's chromedriver."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(
            "chromium / chromium-driver are missing: run scripts/bootstrap (bootstrap.d/20-chromium.sh)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def open_page(browser: WebDriver, gateway: GatewayServer) -> None:
    browser.get(f"{gateway.url}/admin/rest_api/")
    token = browser.find_element(By.ID, "token")
    token.clear()
    token.send_keys(TOKEN)


def answer_of(browser: WebDriver, api: str, timeout: float = 240) -> tuple[int, dict[str, object]]:
    """Wait for the JSON answer shown under the API's form."""
    pre = browser.find_element(By.CSS_SELECTOR, f"#api-{api} pre.answer")
    WebDriverWait(browser, timeout).until(lambda _: pre.get_attribute("data-status"))
    status_line, _, text = pre.text.partition("\n")
    return int(status_line.split()[1]), json.loads(text)


def test_page_headers_and_versions(gateway3: GatewayServer) -> None:
    """The page is served with a strict CSP, and shows the Airflow and gateway versions."""
    reply = get(f"{gateway3.url}/admin/rest_api/")
    assert reply.status == 200 and reply.content_type.startswith("text/html")
    csp = reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert b'Airflow <span id="airflow-version">3.' in reply.body


def test_send_a_form_and_see_the_json_answer(browser: WebDriver, gateway3: GatewayServer) -> None:
    """Filling the token and sending rest_api_plugin_version shows its JSON answer on the page."""
    open_page(browser, gateway3)
    assert browser.find_element(By.ID, "gateway-version").text
    browser.find_element(By.CSS_SELECTOR, "#api-rest_api_plugin_version button[type=submit]").click()
    status, body = answer_of(browser, "rest_api_plugin_version", timeout=30)
    assert status == 200 and body["status"] == "OK" and body["airflow_version"]
    # The token is kept for this tab only.
    assert browser.execute_script("return sessionStorage.getItem('airflow-gateway-token')") == TOKEN
    assert browser.execute_script("return localStorage.length") == 0


def test_deploy_a_dag_from_the_page(
    browser: WebDriver, gateway3: GatewayServer, airflow3: AirflowHome, tmp_path: Path
) -> None:
    """A file chosen in the deploy_dag form is deployed, unpaused, and shown by Airflow and the DAG list."""
    source = tmp_path / "from_the_page.py"
    source.write_text(
        "import datetime\n"
        "from airflow.sdk import DAG\n"
        "with DAG(dag_id='gw_from_page', schedule=None, start_date=datetime.datetime(2026, 1, 1)) as etl:\n"
        "    pass\n"
    )
    open_page(browser, gateway3)
    form = browser.find_element(By.CSS_SELECTOR, "#api-deploy_dag form")
    form.find_element(By.NAME, "dag_file").send_keys(str(source))
    form.find_element(By.NAME, "unpause").click()
    form.find_element(By.NAME, "force").click()
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    status, body = answer_of(browser, "deploy_dag")
    assert status == 200, body
    assert body["dag_ids"] == ["gw_from_page"]
    rows = json.loads(airflow3.cli("dags", "list", "-o", "json").stdout.strip().splitlines()[-1])
    assert {r["dag_id"]: r["is_paused"] for r in rows}["gw_from_page"] in ("False", False)
    WebDriverWait(browser, 120).until(lambda b: "gw_from_page" in b.find_element(By.ID, "dags").text)


def test_xss_probe_does_not_execute(browser: WebDriver, gateway3: GatewayServer) -> None:
    """A DAG id with <script> and an onerror image is echoed as text, never run."""
    open_page(browser, gateway3)
    probe = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
    form = browser.find_element(By.CSS_SELECTOR, "#api-dag_details form")
    form.find_element(By.NAME, "dag_id").send_keys(probe)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    status, body = answer_of(browser, "dag_details", timeout=30)
    assert status == 400 and "not a valid DAG id" in str(body["output"])
    pre = browser.find_element(By.CSS_SELECTOR, "#api-dag_details pre.answer")
    assert "<script>window.__xss=1</script>" in pre.text
    assert pre.find_elements(By.TAG_NAME, "img") == [] and pre.find_elements(By.TAG_NAME, "script") == []
    assert browser.execute_script("return window.__xss === undefined")
    # The same probe in the page's URL is not reflected anywhere.
    browser.get(f"{gateway3.url}/admin/rest_api/?dag_id={probe}#{probe}")
    assert browser.execute_script("return window.__xss === undefined")
