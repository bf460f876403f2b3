"""Shared fixtures: real Airflow homes (one per version, per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.airflow import AirflowHome, make_airflow_home
from tests.support.airflow_servers import AirflowServer, start_api_server, start_webserver


@pytest.fixture(scope="session")
def airflow3(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """A migrated Airflow 3 home with the test DAGs parsed."""
    return make_airflow_home("3", tmp_path_factory.mktemp("airflow3-home"))


@pytest.fixture(scope="session")
def airflow2(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """A migrated Airflow 2 home with the test DAGs parsed."""
    return make_airflow_home("2", tmp_path_factory.mktemp("airflow2-home"))


@pytest.fixture(scope="session")
def airflow110(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """An initialised Airflow 1.10 home (Python 3.8) with the test DAGs in its DagModel table."""
    return make_airflow_home("1.10", tmp_path_factory.mktemp("airflow110-home"))


@pytest.fixture(scope="session", params=["3", "2", "110"], ids=["airflow3", "airflow2", "airflow110"])
def airflow(request: pytest.FixtureRequest) -> AirflowHome:
    """Each supported Airflow in turn."""
    return request.getfixturevalue(f"airflow{request.param}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # -m airflow110 / -m "not airflow110" select the slow Airflow 1.10 runs.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if "airflow110" in getattr(item, "fixturenames", ()) or (
            callspec is not None and "airflow110" in callspec.id.split("-")
        ):
            item.add_marker(pytest.mark.airflow110)


@pytest.fixture(scope="session")
def airflow3_api(airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    """A real Airflow 3 ``api-server`` on loopback (simple auth manager, admin/admin)."""
    server = start_api_server(airflow3, tmp_path_factory.mktemp("airflow3-api"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def airflow2_web(airflow2: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    """A real Airflow 2 ``webserver`` on loopback (FAB, admin/admin)."""
    server = start_webserver(airflow2, tmp_path_factory.mktemp("airflow2-web"))
    yield server
    server.stop()
