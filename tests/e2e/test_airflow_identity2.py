"""Airflow 2.11 (FAB) with the gateway's security manager and ``/api/v1`` auth backend (issue 25):
a real webserver trusting the gateway's signed assertion, attacked directly."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.airflow import AirflowHome
from tests.support.airflow_servers import PASSWORD, USERNAME, AirflowServer, start_webserver
from tests.support.assertions import HEADER, LEEWAY, Signer, airflow2_env, attacks, wait_for_log
from tests.support.http import Reply, request
from tests.support.keys import JwksServer, ec_key, jwks_server

pytestmark = pytest.mark.airflow2


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(ec_key("gw-1"))


@pytest.fixture(scope="module")
def jwks(signer: Signer) -> Iterator[JwksServer]:
    with jwks_server([signer.key]) as server:
        yield server


@pytest.fixture(scope="module")
def af2(
    airflow2: AirflowHome, jwks: JwksServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowServer]:
    """A webserver of the shared Airflow 2 home with the gateway's FAB pieces."""
    tmp = tmp_path_factory.mktemp("airflow2-gateway-auth")
    env = airflow2_env(tmp, jwks.url)
    server = start_webserver(airflow2, tmp, extra_env=env)
    yield server
    server.stop()


def call(
    server: AirflowServer, method: str, path: str, assertion: str | None, body: object = None, **headers: str
) -> Reply:
    sent = {"Accept": "application/json", **headers}
    if assertion is not None:
        sent[HEADER] = assertion
    data = None
    if body is not None:
        sent["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    return request(method, f"{server.url}{path}", headers=sent, body=data, timeout=60)


def trigger(server: AirflowServer, assertion: str | None, **headers: str) -> tuple[str, Reply]:
    run_id = f"identity-{uuid.uuid4().hex[:12]}"
    body = {"dag_run_id": run_id, "conf": {"via": "assertion"}}
    return run_id, call(server, "POST", "/api/v1/dags/gw_example/dagRuns", assertion, body, **headers)


def fab_roles(home: AirflowHome, username: str) -> set[str]:
    rows = home.sql(
        "SELECT r.name FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id "
        "JOIN ab_role r ON r.id = ur.role_id WHERE u.username = ?",
        username,
    )
    return {str(r[0]) for r in rows}


def test_op_uses_the_rest_api_with_no_airflow_credentials_and_is_recorded(
    af2: AirflowServer, airflow2: AirflowHome, signer: Signer
) -> None:
    """``/api/v1`` as an ``op`` group: auto-registered FAB user, the ``log`` table names it."""
    assertion = signer.sign("ci-bot", ["team-a"])
    dags = call(af2, "GET", "/api/v1/dags", assertion)
    assert dags.status == 200, dags.body
    assert {d["dag_id"] for d in dags.json["dags"]} >= {"gw_example", "gw_slow"}
    assert "Op" in fab_roles(airflow2, "ci-bot")

    run_id, reply = trigger(af2, assertion)
    assert reply.status == 200, reply.body
    # Airflow 2 has no triggering_user_name; its log table names the principal.
    events = airflow2.sql(
        "SELECT event, owner FROM log WHERE dag_id = 'gw_example' AND owner = 'ci-bot' AND extra LIKE ?",
        f"%{run_id}%",
    )
    assert events and events[0][0] == "api.post_dag_run", events


def test_viewer_reads_but_cannot_trigger(af2: AirflowServer, airflow2: AirflowHome, signer: Signer) -> None:
    reader = signer.sign("reader", ["readers"])
    assert call(af2, "GET", "/api/v1/dags/gw_example", reader).status == 200
    assert fab_roles(airflow2, "reader") == {"Viewer"}
    assert trigger(af2, reader)[1].status == 403


def test_roles_follow_the_groups(af2: AirflowServer, airflow2: AirflowHome, signer: Signer) -> None:
    """A new assertion with other groups re-syncs the FAB roles (AUTH_ROLES_SYNC_AT_LOGIN)."""
    assert call(af2, "GET", "/api/v1/dags", signer.sign("carol", ["airflow-admins"])).status == 200
    assert "Admin" in fab_roles(airflow2, "carol")
    assert call(af2, "GET", "/api/v1/dags", signer.sign("carol", ["readers"])).status == 200
    assert fab_roles(airflow2, "carol") == {"Viewer"}


@pytest.mark.parametrize("name", list(attacks(Signer(ec_key("gw-1")))))
def test_attacks_are_refused(af2: AirflowServer, signer: Signer, name: str) -> None:
    """Each forged, stale or foreign assertion (or none): 401 on ``/api/v1``, on a trigger and in the UI."""
    assertion, reason = attacks(signer)[name]
    assert call(af2, "GET", "/api/v1/dags", assertion).status == 401, name
    assert trigger(af2, assertion)[1].status == 401, name
    if assertion:
        assert call(af2, "GET", "/home", assertion).status == 401, name
    if reason:
        wait_for_log(af2.log_text, f"gateway assertion refused on /api/v1/dags: {reason}")
    if assertion:
        assert assertion not in af2.log_text()


def test_airflow_credentials_alone_are_not_enough(af2: AirflowServer, signer: Signer) -> None:
    """Basic auth with a real FAB password, without an assertion: 401; with a viewer's: still a viewer."""
    import base64

    basic = {"Authorization": "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()}
    assert call(af2, "GET", "/api/v1/dags", None, **basic).status == 401
    assert trigger(af2, signer.sign("reader", ["readers"]), **basic)[1].status == 403


def test_replay_after_expiry_is_refused(af2: AirflowServer, signer: Signer) -> None:
    captured = signer.sign("ci-bot", ["team-a"], ttl=2)
    assert call(af2, "GET", "/api/v1/dags", captured).status == 200
    time.sleep(2 + LEEWAY + 1.5)
    assert call(af2, "GET", "/api/v1/dags", captured).status == 401


def test_ui_login_registers_the_user_with_the_mapped_role(
    af2: AirflowServer, airflow2: AirflowHome, signer: Signer
) -> None:
    """``/login/`` with an assertion: the FAB user is created with the mapped role, the UI opens."""
    assert fab_roles(airflow2, "dora") == set()
    assertion = signer.sign("dora", ["team-a"], email="dora@example.test")
    login = call(af2, "GET", "/login/?next=/home", assertion)
    assert login.status == 302 and urlsplit(login.headers["Location"]).path == "/home", login.body
    assert "Op" in fab_roles(airflow2, "dora")
    assert airflow2.sql("SELECT email FROM ab_user WHERE username = 'dora'") == [("dora@example.test",)]

    session = next(c for c in login.headers.get_all("Set-Cookie") if c.startswith("session="))
    jar = {"Cookie": session.split(";", 1)[0]}
    home = call(af2, "GET", "/home", assertion, Accept="text/html", **jar)
    assert home.status == 200 and b"Dora" in home.body, home.body[:500]

    # The session alone, without the gateway's assertion, is not a login.
    bare = call(af2, "GET", "/home", None, Accept="text/html", **jar)
    assert bare.status == 302 and "/login/" in bare.headers["Location"]


def test_ui_login_without_assertion_goes_to_the_gateway(af2: AirflowServer) -> None:
    reply = call(af2, "GET", "/login/?next=/home", None)
    assert reply.status == 302
    target = urlsplit(reply.headers["Location"])
    assert target.path == "/admin/rest_api/login"
    assert parse_qs(target.query)["next"] == ["/login/?next=/home"]


def test_logout_goes_through_the_gateway(af2: AirflowServer, signer: Signer) -> None:
    reply = call(af2, "GET", "/logout/", signer.sign("dora", ["team-a"]))
    assert reply.status == 302 and reply.headers["Location"].endswith("/admin/rest_api/logout")
