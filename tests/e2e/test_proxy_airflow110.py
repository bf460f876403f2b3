"""Airflow 1.10's webserver through the gateway: Flask-Admin (no RBAC) and FAB (``rbac = True``).

Also the 1.10 meaning of a DAG refresh (issue 14): a deployed DAG's file changes, the
webserver keeps showing the old tasks (its workers are never recycled here), and after
``refresh_dag`` its view through the gateway shows the new ones, without a restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.e2e.conftest import TOKEN, TOKEN_HEADER
from tests.support.airflow import AirflowHome
from tests.support.airflow_servers import PASSWORD, USERNAME, AirflowServer, start_webserver110
from tests.support.browser import Browser, asset_links, hidden_field
from tests.support.http import get, post_multipart
from tests.support.servers import GatewayServer, start_gateway

pytestmark = pytest.mark.airflow110
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}

DAG_SOURCE = '''"""Deployed by test_proxy_airflow110; the DAG object is not called dag."""
import datetime
from airflow import DAG
from airflow.operators.bash_operator import BashOperator

with DAG(dag_id="gw_refreshed", schedule_interval=None, start_date=datetime.datetime(2026, 1, 1)) as pipeline:
{tasks}
'''


def dag_source(*task_ids: str) -> bytes:
    tasks = "\n".join(f'    BashOperator(task_id="{t}", bash_command="echo {t}")' for t in task_ids)
    return DAG_SOURCE.format(tasks=tasks).encode()


@pytest.fixture(scope="module")
def web110(airflow110: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    server = start_webserver110(airflow110, tmp_path_factory.mktemp("af110-web"), rbac=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def front110(
    airflow110: AirflowHome, web110: AirflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    """The gateway in front of the Flask-Admin webserver, with the plugin token for the CLI API."""
    server = start_gateway(
        airflow110,
        tmp_path_factory.mktemp("gw-af110"),
        settings={
            "PROXY__UPSTREAM": web110.url,
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
        },
    )
    yield server
    server.stop()


def graph_page(front: GatewayServer, dag_id: str) -> str:
    reply = get(f"{front.url}/admin/airflow/graph?dag_id={dag_id}")
    assert reply.status == 200, reply.body[:500]
    return reply.body.decode()


def test_flask_admin_ui_and_its_pages_through_the_gateway(front110: GatewayServer) -> None:
    """The 1.10 UI without RBAC: /admin/ lists the DAG, its assets load, a DAG view renders."""
    browser = Browser(front110.url)
    home = browser.follow(browser.get("/"))
    assert home.status == 200 and b"gw_example" in home.body
    for asset in asset_links(home.body.decode())[:5]:
        assert browser.get(asset).status == 200, asset
    for page in ("/admin/airflow/tree?dag_id=gw_example", "/admin/pool/", "/admin/variable/"):
        assert browser.get(page).status == 200, page
    assert '"second"' in graph_page(front110, "gw_example")
    # The gateway's own page and API stay the gateway's, beside the proxied /admin/.
    assert get(front110.api("api=version"), headers=TOKEN_HEADER).json["status"] == "OK"


def test_refresh_dag_makes_the_webserver_show_the_changed_dag(
    front110: GatewayServer, airflow110: AirflowHome
) -> None:
    """deploy_dag, then a change to the file: unseen until refresh_dag, shown after it."""
    reply = post_multipart(
        front110.api("api=deploy_dag"), {"force": "on"}, [("dag_file", "gw_refreshed.py", dag_source("a"))],
        headers=TOKEN_HEADER,
    )  # fmt: skip
    assert reply.status == 200 and reply.json["dag_ids"] == ["gw_refreshed"], reply.json
    assert '"a"' in graph_page(front110, "gw_refreshed")

    (airflow110.dags_folder / "gw_refreshed.py").write_bytes(dag_source("a", "b_added"))
    assert '"b_added"' not in graph_page(front110, "gw_refreshed")  # the webserver still has the old DAG

    refreshed = get(front110.api("api=refresh_dag&dag_id=gw_refreshed"), headers=TOKEN_HEADER)
    assert refreshed.status == 200, refreshed.json
    assert refreshed.json["output"] == "DAG [gw_refreshed] is now fresh as a daisy"
    assert '"b_added"' in graph_page(front110, "gw_refreshed")

    again = post_multipart(
        front110.api("api=deploy_dag"), {"force": "on", "unpause": "on"},
        [("dag_file", "gw_refreshed.py", dag_source("c_redeployed"))], headers=TOKEN_HEADER,
    )  # fmt: skip
    assert again.status == 200 and again.json["data"]["paused"] == {"gw_refreshed": False}, again.json
    assert airflow110.sql("SELECT is_paused FROM dag WHERE dag_id = 'gw_refreshed'") == [(0,)]
    page = graph_page(front110, "gw_refreshed")
    assert '"c_redeployed"' in page and '"b_added"' not in page


def test_rbac_ui_login_with_csrf_through_the_gateway(
    airflow110: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """rbac = True: the FAB login form with its CSRF token, then the DAG list, all through the gateway."""
    web = start_webserver110(airflow110, tmp_path_factory.mktemp("af110-rbac"), rbac=True)
    front = start_gateway(
        airflow110, tmp_path_factory.mktemp("gw-af110-rbac"), settings={"PROXY__UPSTREAM": web.url}
    )
    try:
        browser = Browser(front.url)
        login = browser.follow(browser.get("/"))
        assert login.status == 200 and b'name="csrf_token"' in login.body, login.body[:500]
        done = browser.request(
            "POST",
            "/login/",
            headers=_FORM,
            body=urlencode(
                {"csrf_token": hidden_field(login.body.decode(), "csrf_token"), "username": USERNAME,
                 "password": PASSWORD}
            ).encode(),
        )  # fmt: skip
        assert done.status == 302, done.body[:500]
        home = browser.follow(done)
        text = home.body.decode()
        assert home.status == 200 and "gw_example" in text, (
            done.headers.get("Location"),
            text[text.find("<body") :][:3000],
        )
        graph = browser.get("/graph?dag_id=gw_example")
        assert graph.status == 200 and b'"second"' in graph.body
    finally:
        front.stop()
        web.stop()
