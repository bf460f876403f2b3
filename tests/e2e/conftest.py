"""Fixtures for end-to-end tests: a gateway under real gunicorn per Airflow version."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.airflow import AirflowHome
from tests.support.docker import DockerUnavailable, Images, build_images, start_engine
from tests.support.servers import GatewayServer, start_gateway, wait_warm

TOKEN = "changeme"
TOKEN_HEADER = {"rest_api_plugin_http_token": TOKEN}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def gateway(airflow: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """The gateway with the original plugin's token, in front of each Airflow in turn (and runner)."""
    server = start_gateway(
        airflow,
        tmp_path_factory.mktemp(f"gateway-{airflow.major}-{airflow.gateway_runner}"),
        settings={"REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN},
    )
    if airflow.gateway_runner == "warm":
        wait_warm(server, TOKEN_HEADER)  # so that tests can assert which runner served a call
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway3(airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway on Airflow 3 with small upload limits, for the deploy, page and OpenAPI tests (issue 6)."""
    server = start_gateway(
        airflow3,
        tmp_path_factory.mktemp("gateway-deploy"),
        settings={
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
            "DEPLOY__MAX_UPLOAD_BYTES": str(64 * 1024),
            "LIMITS__MAX_BODY_BYTES": str(256 * 1024),
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def docker_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    """The private Docker engine (tests/support/docker.py) with the gateway image built on the
    Airflow stand-in, once per session for the image and compose tests; skipped, with the
    reason, where no engine can run."""
    work = tmp_path_factory.mktemp("docker")
    try:
        with start_engine() as engine:
            images = build_images(engine, work)
            print(f"\nimage build seconds: {json.dumps(images.seconds)}")
            yield images
    except DockerUnavailable as exc:
        pytest.skip(f"no Docker engine: {exc}")
