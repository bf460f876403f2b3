"""Airflow 3.3 with ``airflow_gateway_auth.GatewayAuthManager`` (issue 25): a real api-server
trusting the gateway's signed assertion, attacked directly (bypassing the gateway)."""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import jwt.warnings
import pytest

from tests.support.airflow import AirflowHome
from tests.support.airflow_servers import AirflowServer, start_api_server
from tests.support.assertions import HEADER, LEEWAY, Signer, airflow3_env, attacks, wait_for_log
from tests.support.http import Reply, request
from tests.support.keys import JwksServer, ec_key, jwks_server

pytestmark = pytest.mark.airflow3

JWT_SECRET = "test-jwt-secret-for-loopback-airflow-only"  # tests.support.airflow_servers._SECRETS


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(ec_key("gw-1"))


@pytest.fixture(scope="module")
def jwks(signer: Signer) -> Iterator[JwksServer]:
    with jwks_server([signer.key]) as server:
        yield server


@pytest.fixture(scope="module")
def af3(
    airflow3: AirflowHome, jwks: JwksServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowServer]:
    """An api-server of the shared Airflow 3 home with the gateway auth manager (one per module)."""
    env = airflow3_env(jwks.url, dag_access=True)
    server = start_api_server(airflow3, tmp_path_factory.mktemp("airflow3-gateway-auth"), extra_env=env)
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


def trigger(server: AirflowServer, assertion: str, dag_id: str = "gw_example") -> tuple[str, Reply]:
    run_id = f"identity-{uuid.uuid4().hex[:12]}"
    body = {"dag_run_id": run_id, "logical_date": None, "conf": {"via": "assertion"}}
    return run_id, call(server, "POST", f"/api/v2/dags/{dag_id}/dagRuns", assertion, body)


def test_op_uses_the_rest_api_with_no_airflow_credentials_and_is_recorded(
    af3: AirflowServer, airflow3: AirflowHome, signer: Signer
) -> None:
    """A group mapped to ``op``: /api/v2 works, the run and the ``log`` table name the principal."""
    assertion = signer.sign("ci-bot", ["team-a"])
    dags = call(af3, "GET", "/api/v2/dags", assertion)
    assert dags.status == 200, dags.body
    assert {d["dag_id"] for d in dags.json["dags"]} >= {"gw_example", "gw_slow"}

    run_id, reply = trigger(af3, assertion)
    assert reply.status == 200, reply.body
    assert reply.json["triggering_user_name"] == "ci-bot"
    run = call(af3, "GET", f"/api/v2/dags/gw_example/dagRuns/{run_id}", assertion)
    assert run.status == 200 and run.json["triggering_user_name"] == "ci-bot"
    assert airflow3.sql("SELECT triggering_user_name FROM dag_run WHERE run_id = ?", run_id) == [("ci-bot",)]
    events = airflow3.sql(
        "SELECT event, owner, extra FROM log WHERE dag_id = 'gw_example' AND owner = 'ci-bot' AND extra LIKE ?",
        f"%{run_id}%",
    )
    assert events and events[0][0] == "trigger_dag_run", events


def test_viewer_reads_but_cannot_trigger(af3: AirflowServer, signer: Signer) -> None:
    reader = signer.sign("reader", ["readers"])
    assert call(af3, "GET", "/api/v2/dags/gw_example", reader).status == 200
    _, reply = trigger(af3, reader)
    assert reply.status == 403, reply.body


def test_dag_access_by_group(af3: AirflowServer, signer: Signer) -> None:
    """team-b is ``op`` on gw_slow only: the other DAG is neither listed nor triggerable."""
    team_b = signer.sign("bob", ["team-b"])
    listed = call(af3, "GET", "/api/v2/dags", team_b)
    assert listed.status == 200 and [d["dag_id"] for d in listed.json["dags"]] == ["gw_slow"]
    assert trigger(af3, team_b, "gw_example")[1].status == 403


def test_admin_group_gets_admin_and_viewers_no_variables(af3: AirflowServer, signer: Signer) -> None:
    admin = signer.sign("alice", ["airflow-admins", "readers"])  # the highest role wins
    assert call(af3, "GET", "/api/v2/variables", admin).status == 200
    # Admin is not subject to DAG access by group.
    listed = call(af3, "GET", "/api/v2/dags", admin).json["dags"]
    assert {d["dag_id"] for d in listed} >= {"gw_example", "gw_slow"}
    assert call(af3, "GET", "/api/v2/variables", signer.sign("reader", ["readers"])).status == 403


@pytest.mark.parametrize("name", list(attacks(Signer(ec_key("gw-1")))))
def test_attacks_are_refused(af3: AirflowServer, signer: Signer, name: str) -> None:
    """Each forged, stale or foreign assertion (or none): 401 on the REST API, the UI API and a
    trigger, refused for the right reason (logged), and the assertion never logged."""
    assertion, reason = attacks(signer)[name]
    for path in ("/api/v2/dags", "/ui/config"):
        reply = call(af3, "GET", path, assertion)
        assert reply.status == 401, (name, path, reply.status, reply.body)
    reply = trigger(af3, assertion)[1] if assertion else call(af3, "POST", "/api/v2/dags/x/dagRuns", None, {})
    assert reply.status == 401, (name, reply.body)
    if reason:
        wait_for_log(af3.log_text, f"gateway assertion refused on /api/v2/dags: {reason}")
    if assertion:
        assert assertion not in af3.log_text(), "the log must never hold an assertion"


def test_airflow_credentials_alone_are_not_enough(af3: AirflowServer, signer: Signer) -> None:
    """Airflow's own JWT without an assertion (Bearer or cookie) is dropped: 401."""
    token = call(af3, "POST", "/auth/token", signer.sign("ci-bot", ["team-a"]), {})
    assert token.status == 201, token.body
    bearer = {"Authorization": f"Bearer {token.json['access_token']}"}
    assert call(af3, "GET", "/api/v2/dags", None, **bearer).status == 401
    cookie = {"Cookie": f"_token={token.json['access_token']}"}
    assert call(af3, "GET", "/api/v2/dags", None, **cookie).status == 401
    # The password login of the simple auth manager is gone.
    body = {"username": "admin", "password": "admin"}
    assert call(af3, "POST", "/auth/token", None, body).status == 401
    # A client's own Bearer token cannot override the asserted principal.
    reader = signer.sign("reader", ["readers"])
    assert trigger(af3, reader, "gw_example")[1].status == 403  # even with an op's token:
    assert call(af3, "POST", "/api/v2/dags/gw_example/dagRuns", reader, {}, **bearer).status == 403


def test_replay_after_expiry_is_refused(af3: AirflowServer, signer: Signer) -> None:
    """A captured assertion works only while it lives (plus the leeway), also from the cache."""
    captured = signer.sign("ci-bot", ["team-a"], ttl=2)
    assert call(af3, "GET", "/api/v2/dags", captured).status == 200
    time.sleep(2 + LEEWAY + 1.5)
    assert call(af3, "GET", "/api/v2/dags", captured).status == 401


def test_rotated_in_key_is_fetched_once(af3: AirflowServer, signer: Signer, jwks: JwksServer) -> None:
    """A new kid makes the auth manager refetch the JWKS; unknown kids refetch at most once a second."""
    rotated = Signer(ec_key("gw-2"))
    jwks.keys = [signer.key.jwk, rotated.key.jwk]
    time.sleep(1.1)  # past the test's refetch interval
    try:
        assert call(af3, "GET", "/api/v2/dags", rotated.sign("ci-bot", ["team-a"])).status == 200
        before = jwks.fetches
        stranger = Signer(ec_key("unknown"))
        for _ in range(5):
            assert call(af3, "GET", "/api/v2/dags", stranger.sign("x", ["team-a"])).status == 401
        assert jwks.fetches - before <= 1
    finally:
        jwks.keys = [signer.key.jwk]


def test_ui_login_exchanges_the_assertion_for_the_token_cookie(af3: AirflowServer, signer: Signer) -> None:
    """Airflow's login URL -> the auth manager's /auth/login -> ``_token`` set, back to ``next``."""
    came_from = f"{af3.url}/dags"
    redirect = call(af3, "GET", f"/api/v2/auth/login?next={quote(came_from, safe='')}", None)
    assert redirect.status == 307
    login_path = redirect.headers["Location"]
    assert login_path.startswith("/auth/login?")

    # Not signed in at the gateway: sent to its sign-in, which returns here afterwards.
    to_gateway = call(af3, "GET", login_path, None)
    assert to_gateway.status == 307
    target = urlsplit(to_gateway.headers["Location"])
    assert target.path == "/admin/rest_api/login"
    assert parse_qs(target.query)["next"] == [login_path]

    assertion = signer.sign("ci-bot", ["team-a"], email="ci@example.test")
    done = call(af3, "GET", login_path, assertion)
    assert done.status == 307 and done.headers["Location"] == came_from
    cookie = next(c for c in done.headers.get_all("Set-Cookie") if c.startswith("_token="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    token = cookie.split(";", 1)[0].split("=", 1)[1]
    with warnings.catch_warnings():  # the fixture's secret is shorter than HS512 would like
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        claims = jwt.decode(token, JWT_SECRET, algorithms=["HS512"], audience="apache-airflow")
    assert (claims["sub"], claims["role"], claims["email"]) == ("ci-bot", "op", "ci@example.test")

    # The UI's own API calls with the cookie (and the gateway's assertion on each request).
    jar = {"Cookie": f"_token={token}"}
    for path in ("/ui/config", "/ui/auth/menus", "/api/v2/dags?limit=1"):
        reply = call(af3, "GET", path, assertion, **jar)
        assert reply.status == 200, (path, reply.body)
    menus = call(af3, "GET", "/ui/auth/menus", assertion, **jar).json
    assert "authorized_menu_items" in menus

    # A refused assertion at the exchange gets no cookie.
    refused = call(af3, "GET", login_path, attacks(signer)["expired"][0])
    assert refused.status == 401 and not refused.headers.get_all("Set-Cookie")


def test_logout_goes_through_the_gateway(af3: AirflowServer, signer: Signer) -> None:
    reply = call(af3, "GET", "/api/v2/auth/logout", signer.sign("ci-bot", ["team-a"]))
    assert reply.status == 307 and reply.headers["Location"] == "/admin/rest_api/logout"


def test_public_endpoints_stay_public(af3: AirflowServer) -> None:
    assert call(af3, "GET", "/api/v2/version", None).status == 200
    assert call(af3, "GET", "/api/v2/monitor/health", None).status == 200
