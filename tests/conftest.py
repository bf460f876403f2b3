"""Shared fixtures: real Airflow homes (one per version and metadata backend, per session)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.airflow import AirflowHome, make_airflow_home
from tests.support.airflow_servers import AirflowServer, start_api_server, start_webserver
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.redis import RedisServer, start_redis


@pytest.fixture(scope="session")
def airflow3(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """A migrated Airflow 3 home with the test DAGs parsed."""
    return make_airflow_home("3", tmp_path_factory.mktemp("airflow3-home"))


@pytest.fixture(scope="session")
def airflow2(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """A migrated Airflow 2 home with the test DAGs parsed."""
    return make_airflow_home("2", tmp_path_factory.mktemp("airflow2-home"))


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster on loopback for Airflow's metadata databases (issue 16)."""
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server on loopback (the shared rate-limit store, issue 27); skips without one."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.close()


@pytest.fixture(scope="session")
def airflow3_pg(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """Airflow 3 with its metadata database on PostgreSQL."""
    postgres.create_database("airflow3")
    url = postgres.url_for("airflow3", driver="postgresql+psycopg2")
    return make_airflow_home("3", tmp_path_factory.mktemp("airflow3-pg-home"), db_url=url)


@pytest.fixture(scope="session")
def airflow2_pg(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """Airflow 2 with its metadata database on PostgreSQL."""
    postgres.create_database("airflow2")
    url = postgres.url_for("airflow2", driver="postgresql+psycopg2")
    return make_airflow_home("2", tmp_path_factory.mktemp("airflow2-pg-home"), db_url=url)


@pytest.fixture(scope="session")
def airflow110(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """An initialised Airflow 1.10 home (Python 3.8) with the test DAGs in its DagModel table."""
    return make_airflow_home("1.10", tmp_path_factory.mktemp("airflow110-home"))


@pytest.fixture(scope="session")
def airflow110_cold(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """A second Airflow 1.10 home, driven through the gateway's cold CLI runner."""
    return make_airflow_home("1.10", tmp_path_factory.mktemp("airflow110-cold-home"), gateway_runner="cold")


@pytest.fixture(scope="session")
def airflow3_cold(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """A second Airflow 3 home, driven through the gateway's cold CLI runner."""
    return make_airflow_home("3", tmp_path_factory.mktemp("airflow3-cold-home"), gateway_runner="cold")


@pytest.fixture(scope="session")
def airflow2_cold(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    """A second Airflow 2 home, driven through the gateway's cold CLI runner."""
    return make_airflow_home("2", tmp_path_factory.mktemp("airflow2-cold-home"), gateway_runner="cold")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: the module's `airflow` fixture also runs both Airflows on PostgreSQL"
    )
    config.addinivalue_line(
        "markers",
        "both_runners: the `airflow` fixture also gives homes the gateway drives through its cold CLI runner",
    )
    config.addinivalue_line(
        "markers", "airflow_versions(*names): the `airflow` fixture only gives these homes (e.g. 'airflow3')"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``airflow`` is each supported Airflow in turn.

    In tests marked ``postgres`` also on PostgreSQL; in tests marked ``both_runners`` also
    on 3.x/2.x homes whose gateway uses the cold CLI runner (each on its own home, so fixed
    run ids do not collide between the two runs).
    """
    if "airflow" in metafunc.fixturenames:
        base = ["airflow3", "airflow2", "airflow110"]
        only = metafunc.definition.get_closest_marker("airflow_versions")
        if only is not None:
            base = [name for name in base if name in only.args]
        names = list(base)
        if metafunc.definition.get_closest_marker("postgres"):
            names += [name for name in ("airflow3_pg", "airflow2_pg") if name.split("_")[0] in base]
        if metafunc.definition.get_closest_marker("both_runners"):
            # Not 1.10: its cold calls take ~5 s each, and the cold runner is the same code for
            # every version (covered on 3.x and 2.x); 1.10 runs this suite warm (the default).
            names += [f"{name}_cold" for name in base if name != "airflow110"]
        metafunc.parametrize("airflow", names, indirect=True, scope="session")


@pytest.fixture(scope="session")
def airflow(request: pytest.FixtureRequest) -> AirflowHome:
    """Each supported Airflow in turn (see pytest_generate_tests)."""
    home: AirflowHome = request.getfixturevalue(str(request.param))
    return home


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # -m airflow110 / -m "not airflow110" select the slow Airflow 1.10 runs.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if "airflow110" in getattr(item, "fixturenames", ()) or (
            callspec is not None and any(part.startswith("airflow110") for part in callspec.id.split("-"))
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


@pytest.fixture(scope="session")
def airflow3_pg_api(
    airflow3_pg: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowServer]:
    """An Airflow 3 ``api-server`` whose metadata database is on PostgreSQL."""
    server = start_api_server(airflow3_pg, tmp_path_factory.mktemp("airflow3-pg-api"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def airflow2_pg_web(
    airflow2_pg: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowServer]:
    """An Airflow 2 ``webserver`` whose metadata database is on PostgreSQL."""
    server = start_webserver(airflow2_pg, tmp_path_factory.mktemp("airflow2-pg-web"))
    yield server
    server.stop()


# Lines the fuzz tests report (request counts): shown in every run's terminal summary, so CI
# logs say how much was sent without pytest -s.
RUN_REPORT = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def run_report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Adds a line to the terminal summary's "fuzz runs" section."""
    return request.config.stash.setdefault(RUN_REPORT, []).append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(RUN_REPORT, [])
    if lines:
        terminalreporter.section("fuzz runs")
        for line in lines:
            terminalreporter.write_line(line)
