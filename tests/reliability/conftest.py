"""A gateway under real gunicorn for the reliability tests (proxying to a loopback echo server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.airflow import AirflowHome
from tests.support.servers import GatewayServer, start_gateway
from tests.support.upstreams import EchoUpstream

TOKEN = "reliability-token"
HEAD_TIMEOUT_S = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/reliability/" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="package")
def echo() -> Iterator[EchoUpstream]:
    server = EchoUpstream()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def gateway(
    echo: EchoUpstream, airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    """The gateway in front of the echo upstream, with a short request-head deadline."""
    server = start_gateway(
        airflow3,
        tmp_path_factory.mktemp("gw-reliability"),
        settings={"REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN, "PROXY__UPSTREAM": echo.url},
        extra_env={"GATEWAY_HEAD_TIMEOUT": str(HEAD_TIMEOUT_S)},
    )
    yield server
    server.stop()
