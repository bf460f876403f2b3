"""Airflow 3 through the gateway: the UI loads and logs in, the official client works."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from urllib.parse import quote

import airflow_client.client as af
import pytest

from tests.e2e.conftest import TOKEN, TOKEN_HEADER
from tests.support.airflow import AirflowHome
from tests.support.airflow_servers import PASSWORD, USERNAME, AirflowServer
from tests.support.browser import Browser, asset_links
from tests.support.http import get, request
from tests.support.servers import GatewayServer, start_gateway

pytestmark = pytest.mark.airflow3


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def upstream3(request: pytest.FixtureRequest) -> tuple[AirflowHome, AirflowServer]:
    """A real Airflow 3 api-server, with its metadata database on each backend in turn (issue 16)."""
    suffix = "_pg" if request.param == "postgres" else ""
    return request.getfixturevalue(f"airflow3{suffix}"), request.getfixturevalue(f"airflow3{suffix}_api")


@pytest.fixture(scope="module")
def front(
    upstream3: tuple[AirflowHome, AirflowServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    """The gateway under gunicorn in front of a real Airflow 3 api-server."""
    airflow3, airflow3_api = upstream3
    server = start_gateway(
        airflow3,
        tmp_path_factory.mktemp("gw-af3"),
        settings={
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
            "PROXY__UPSTREAM": airflow3_api.url,
        },
    )
    yield server
    server.stop()


def _token(base_url: str) -> str:
    reply = request(
        "POST",
        f"{base_url}/auth/token",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"username": USERNAME, "password": PASSWORD}).encode(),
    )
    assert reply.status == 201, reply.body
    return str(reply.json["access_token"])


def test_ui_loads_and_logs_in_through_the_gateway(front: GatewayServer) -> None:
    """Index, its assets, the login redirect, the login page and token, then an authenticated UI call."""
    browser = Browser(front.url)
    index = browser.get("/")
    assert index.status == 200 and index.content_type.startswith("text/html")
    assets = asset_links(index.body.decode())
    assert assets, index.body
    for asset in assets:
        reply = browser.get(asset.replace("./", "/", 1))
        assert reply.status == 200, asset
        assert "javascript" in reply.content_type or "css" in reply.content_type

    assert browser.get("/ui/config", headers={"Accept": "application/json"}).status == 401
    # The UI sends the user here with the page it was on; with the client's Host kept,
    # Airflow sees the gateway's URL as its own and keeps `next` (the Host policy at work).
    came_from = f"{front.url}/dags"
    redirect = browser.get(f"/api/v2/auth/login?next={quote(came_from, safe='')}")
    assert redirect.status == 307
    assert redirect.headers["Location"] == f"/auth/login?next={quote(came_from, safe='')}"
    login_page = browser.follow(redirect)
    assert login_page.status == 200 and b"<base href=" in login_page.body
    for asset in asset_links(login_page.body.decode()):
        assert browser.get(asset.replace("./", "/", 1)).status == 200, asset

    wrong = browser.request(
        "POST",
        "/auth/token",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"username": USERNAME, "password": "wrong"}).encode(),
    )
    assert wrong.status == 401
    browser.cookies["_token"] = _token(front.url)  # what the login page's script does
    config = browser.get("/ui/config", headers={"Accept": "application/json"})
    assert config.status == 200, config.body
    assert "instance_name" in config.json


def test_gzip_assets_pass_through_untouched(
    front: GatewayServer, upstream3: tuple[AirflowHome, AirflowServer]
) -> None:
    """A gzip-encoded asset reaches the client still gzip, byte-identical to Airflow's answer."""
    airflow3_api = upstream3[1]
    index = get(front.url + "/")
    asset = asset_links(index.body.decode())[0].replace("./", "/", 1)
    through = get(front.url + asset, headers={"Accept-Encoding": "gzip"})
    direct = get(airflow3_api.url + asset, headers={"Accept-Encoding": "gzip"})
    assert through.headers["Content-Encoding"] == direct.headers["Content-Encoding"] == "gzip"
    assert through.body == direct.body
    assert gzip.decompress(through.body) == get(airflow3_api.url + asset).body


def test_official_client_lists_triggers_and_reads_back(front: GatewayServer) -> None:
    """apache-airflow-client against the gateway's port: list DAGs, trigger a run, read it back."""
    config = af.Configuration(host=front.url, access_token=_token(front.url))
    with af.ApiClient(config) as client:
        dags = af.DAGApi(client).get_dags()
        assert "gw_example" in [dag.dag_id for dag in dags.dags]
        runs = af.DagRunApi(client)
        run = runs.trigger_dag_run(
            "gw_example", af.TriggerDAGRunPostBody(logical_date=None, conf={"via": "gateway"})
        )
        assert ":" in run.dag_run_id and "+" in run.dag_run_id  # needs the path passed byte for byte
        back = runs.get_dag_run("gw_example", run.dag_run_id)
        assert back.dag_run_id == run.dag_run_id
        assert back.conf == {"via": "gateway"}


def test_gateway_endpoints_still_answer_in_front_of_airflow(front: GatewayServer) -> None:
    """The CLI API, /healthz and /readyz are the gateway's own, with Airflow proxied beside them."""
    reply = get(front.api("api=rest_api_plugin_version"), headers=TOKEN_HEADER)
    assert reply.status == 200 and reply.json["status"] == "OK"
    ready = get(front.url + "/readyz")
    assert ready.status == 200 and ready.json["checks"]["upstream"]["ok"] is True
    assert get(front.url + "/healthz").status == 200
