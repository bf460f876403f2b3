"""Jobs on the admin page in real headless Chromium (issue 15): live output, elapsed time, cancel."""

from __future__ import annotations

import json
import re

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.test_page_browser import answer_of, browser, open_page  # noqa: F401 - the fixture
from tests.support.servers import GatewayServer

FIRST = re.compile(r"gw-line 1\b")


def submit_test(driver: WebDriver, execution_date: str, lines: int) -> None:
    form = driver.find_element(By.CSS_SELECTOR, "#api-test form")
    for name, value in (
        ("dag_id", "gw_slow"),
        ("task_id", "lines"),
        ("execution_date", execution_date),
        ("task_params", json.dumps({"n": lines})),
    ):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    assert driver.find_element(By.CSS_SELECTOR, "#api-test input.as-job").is_selected()
    before = job_id_shown(driver)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 30).until(lambda d: job_id_shown(d) not in (None, before))  # the new job's panel


# Each read is one script in the page: the page re-renders the job panel as events arrive, and
# an element found by one WebDriver command may be gone by the next (CI, 2026-12-01: a
# StaleElementReferenceException between find_elements and get_attribute).
def job_id_shown(driver: WebDriver) -> str | None:
    found = driver.execute_script(
        "const e = document.querySelector('#api-test div.job'); return e ? e.dataset.jobId || null : null;"
    )
    return str(found) if found is not None else None


def panel_text(driver: WebDriver, selector: str) -> str:
    found = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
        f"#api-test div.job {selector}",
    )
    return str(found).strip()


def test_page_runs_a_test_as_a_job_with_live_output_and_cancels_another(
    browser: WebDriver,  # noqa: F811
    gateway3: GatewayServer,
) -> None:
    open_page(browser, gateway3)
    submit_test(browser, "2026-11-20", 16)
    wait = WebDriverWait(browser, 240, poll_frequency=0.2)
    wait.until(lambda b: FIRST.search(panel_text(b, "pre.job-output")))
    # A line is on the page while the job still runs, and the elapsed time is shown.
    assert panel_text(browser, "span.job-state") == "running"
    assert panel_text(browser, "span.job-elapsed").endswith(" s")
    status, body = answer_of(browser, "test")
    assert status == 200 and body["status"] == "OK", body
    output = panel_text(browser, "pre.job-output")
    assert re.search(r"gw-line 16\b", output) and panel_text(browser, "span.job-state") == "succeeded"

    submit_test(browser, "2026-11-21", 60)
    wait.until(lambda b: FIRST.search(panel_text(b, "pre.job-output")))
    browser.find_element(By.CSS_SELECTOR, "#api-test div.job button.job-cancel").click()
    wait.until(lambda b: panel_text(b, "span.job-state") == "cancelled")
    status, body = answer_of(browser, "test")
    assert body["status"] == "ERROR" and "cancelled" in str(body["error"])
    assert not re.search(r"gw-line 60\b", panel_text(browser, "pre.job-output"))
    wait.until(lambda b: "test · cancelled" in b.find_element(By.ID, "jobs").text)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not [e for e in errors if "Content Security Policy" in e["message"]], errors
