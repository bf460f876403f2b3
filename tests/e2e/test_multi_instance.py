"""Two gateway instances behind nginx (round-robin, loopback) in front of one Airflow 3 on PostgreSQL.

Same configuration, own state directories and audit files: CLI calls, the Airflow UI login,
deploy_dag into the shared DAGs folder, audit events and /metrics of each (issue 16).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.e2e.conftest import TOKEN, TOKEN_HEADER
from tests.support.airflow import AirflowHome
from tests.support.airflow_servers import PASSWORD, USERNAME, AirflowServer
from tests.support.browser import Browser
from tests.support.http import get, post_multipart, request
from tests.support.nginx import Nginx, start_nginx
from tests.support.servers import GatewayServer, start_gateway

pytestmark = pytest.mark.airflow3


@dataclass
class Cluster:
    balancer: Nginx
    instances: list[GatewayServer]
    audit_files: list[Path]
    airflow: AirflowHome

    def audit(self, index: int) -> list[dict[str, object]]:
        path = self.audit_files[index]
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cluster(
    airflow3_pg: AirflowHome, airflow3_pg_api: AirflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("multi")
    shared = {  # one configuration for both instances
        "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
        "PROXY__UPSTREAM": airflow3_pg_api.url,
        "DEPLOY__DAGS_FOLDER": str(airflow3_pg.dags_folder),
        "GATEWAY__TRUSTED_PROXY_COUNT": "1",
    }
    instances: list[GatewayServer] = []
    audit_files = [tmp / f"instance-{i}" / "audit.jsonl" for i in range(2)]
    try:
        for i, audit in enumerate(audit_files):
            instances.append(
                start_gateway(
                    airflow3_pg, tmp / f"instance-{i}", settings={**shared, "AUDIT__FILE": str(audit)}
                )
            )
        balancer = start_nginx(tmp / "nginx", [s.url.removeprefix("http://") for s in instances])
        try:
            yield Cluster(balancer, instances, audit_files, airflow3_pg)
        finally:
            balancer.stop()
    finally:
        for server in instances:
            server.stop()


T = TypeVar("T")


def until(read: Callable[[], T], done: Callable[[T], bool], within_s: float = 15.0) -> T:
    """``read()`` again until ``done`` says so or ``within_s`` passes; the last reading.

    A request's audit event is written when its response closes, which can be just after
    the client has the response: on a loaded machine the file lags the replies a little.
    """
    deadline = time.monotonic() + within_s
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


def _requests_counted(server: GatewayServer, route: str) -> float:
    """Sum of airflow_gateway_requests_total for ``route`` on this instance's own /metrics."""
    text = get(f"{server.url}/metrics").body.decode()
    pattern = rf'^airflow_gateway_requests_total\{{[^}}]*route="{route}"[^}}]*\}} ([0-9.e+]+)$'
    return sum(float(m) for m in re.findall(pattern, text, re.MULTILINE))


def test_cli_calls_are_shared_out_and_each_instance_audits_and_counts(cluster: Cluster) -> None:
    calls = 6
    for _ in range(calls):
        reply = get(f"{cluster.balancer.url}/admin/rest_api/api?api=version", headers=TOKEN_HEADER)
        assert reply.status == 200 and reply.json["output"]["stdout"].strip().startswith("3."), reply.body[
            :500
        ]

    def version_events() -> list[list[dict[str, Any]]]:
        return [
            [e for e in cluster.audit(i) if e.get("api") == "version" and e.get("http_status") == 200]
            for i in range(2)
        ]

    served = until(version_events, lambda found: sum(len(s) for s in found) >= calls)
    assert all(served), "round-robin: both instances answered"
    assert sum(len(s) for s in served) == calls
    # The client address is the caller's, from nginx's X-Forwarded-For (trusted_proxy_count = 1).
    assert {e["remote_addr"] for s in served for e in s} == {"127.0.0.1"}
    counted = [_requests_counted(server, "api") for server in cluster.instances]
    assert all(c >= 1 for c in counted) and sum(counted) >= calls, counted


def test_airflow_ui_login_through_the_balancer(cluster: Cluster) -> None:
    """A token from one instance works on the other: the gateway holds no session."""
    browser = Browser(cluster.balancer.url)
    index = browser.get("/")
    assert index.status == 200 and index.content_type.startswith("text/html")
    token = request(
        "POST",
        f"{cluster.balancer.url}/auth/token",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"username": USERNAME, "password": PASSWORD}).encode(),
    )
    assert token.status == 201, token.body
    browser.cookies["_token"] = str(token.json["access_token"])
    for _ in range(4):  # lands on both instances
        config = browser.get("/ui/config", headers={"Accept": "application/json"})
        assert config.status == 200 and "instance_name" in config.json, config.body[:500]

    def config_events() -> list[dict[str, Any]]:
        return [e for i in range(2) for e in cluster.audit(i) if e.get("path") == "/ui/config"]

    proxied = until(config_events, lambda found: len({e["request_id"] for e in found}) >= 4)
    assert len({e["request_id"] for e in proxied}) >= 4


def test_deploy_dag_lands_in_the_shared_folder_and_both_instances_see_it(cluster: Cluster) -> None:
    dag_id = f"multi_{uuid.uuid4().hex[:8]}"
    source = (
        "import datetime\nfrom airflow.sdk import DAG\n\n"
        f'with DAG(dag_id="{dag_id}", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as pipeline:\n'
        "    pass\n"
    ).encode()
    reply = post_multipart(
        f"{cluster.balancer.url}/admin/rest_api/api?api=deploy_dag",
        {},
        [("dag_file", f"{dag_id}.py", source)],
        headers=TOKEN_HEADER,
    )
    assert reply.status == 200 and reply.json["dag_ids"] == [dag_id], reply.body[:2000]
    assert (cluster.airflow.dags_folder / f"{dag_id}.py").read_bytes() == source
    for server in cluster.instances:  # each instance directly, not through the balancer
        listed = get(server.api("api=list_dags&output=json"), headers=TOKEN_HEADER)
        assert listed.status == 200, listed.body[:500]
        assert dag_id in {row["dag_id"] for row in listed.json["data"]}

    def deploy_events() -> list[dict[str, Any]]:
        return [e for i in range(2) for e in cluster.audit(i) if e.get("api") == "deploy_dag"]

    deployed = until(deploy_events, lambda found: len(found) >= 1)
    assert len(deployed) == 1 and deployed[0]["http_status"] == 200
