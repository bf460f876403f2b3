"""Airflow 2 (FAB webserver) through the gateway: login with CSRF, then a CSRF-protected form post."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.support.airflow import AirflowHome
from tests.support.airflow_servers import PASSWORD, USERNAME, AirflowServer
from tests.support.browser import Browser, asset_links, hidden_field
from tests.support.servers import GatewayServer, start_gateway

pytestmark = pytest.mark.airflow2
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def front2(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    """The gateway in front of a real Airflow 2 webserver, its metadata on each backend (issue 16)."""
    suffix = "_pg" if request.param == "postgres" else ""
    airflow2: AirflowHome = request.getfixturevalue(f"airflow2{suffix}")
    airflow2_web: AirflowServer = request.getfixturevalue(f"airflow2{suffix}_web")
    server = start_gateway(
        airflow2, tmp_path_factory.mktemp("gw-af2"), settings={"PROXY__UPSTREAM": airflow2_web.url}
    )
    yield server
    server.stop()


def test_fab_login_and_csrf_form_post_through_the_gateway(front2: GatewayServer) -> None:
    """Log in with the FAB form and its CSRF token, then trigger a DAG through the CSRF-protected form."""
    browser = Browser(front2.url)
    login = browser.follow(browser.get("/"))
    assert login.status == 200 and b'name="csrf_token"' in login.body
    for asset in asset_links(login.body.decode())[:5]:
        assert browser.get(asset).status == 200, asset
    assert "session" in browser.cookies
    done = browser.request(
        "POST",
        "/login/",
        headers=_FORM,
        body=urlencode(
            {
                "csrf_token": hidden_field(login.body.decode(), "csrf_token"),
                "username": USERNAME,
                "password": PASSWORD,
            }
        ).encode(),
    )
    assert done.status == 302 and done.headers["Location"] == "/home"
    home = browser.follow(done)
    assert home.status == 200 and b"gw_example" in home.body

    run_id = f"via_gateway_{uuid.uuid4().hex[:8]}"
    form = {"run_id": run_id, "conf": '{"via": "gateway"}', "origin": "/home"}
    refused = browser.request(
        "POST", "/dags/gw_example/trigger", headers=_FORM, body=urlencode(form).encode()
    )
    assert refused.status == 400 and b"CSRF token is missing" in refused.body  # CSRF really is enforced

    page = browser.get("/dags/gw_example/trigger")
    form["csrf_token"] = hidden_field(page.body.decode(), "csrf_token")
    triggered = browser.request(
        "POST", "/dags/gw_example/trigger", headers=_FORM, body=urlencode(form).encode()
    )
    assert triggered.status == 302, triggered.body[:500]
    run = browser.get(f"/api/v1/dags/gw_example/dagRuns/{run_id}", headers={"Accept": "application/json"})
    assert run.status == 200, run.body
    assert run.json["conf"] == {"via": "gateway"}
