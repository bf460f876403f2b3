"""One identity into Airflow, end to end: the gateway signs an assertion of each principal into
proxied requests, serves its keys at ``/.well-known/jwks.json``, and a real Airflow with
``airflow-gateway-auth`` turns it into an Airflow user with the mapped role.

Machine principals here (named tokens with groups); the browser sign-on is in tests/e2e/sso.
Airflow 3 (auth manager) and Airflow 2 (FAB API backend) verify differently: both are run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from gateway.identity.assertion import AssertionSigner, KeyRing
from gateway.identity.principal import Principal
from gateway.identity.tokens import hash_token
from tests.support.airflow import AirflowHome
from tests.support.airflow_servers import AirflowServer, start_api_server, start_webserver
from tests.support.assertions import AUDIENCE, HEADER, ISSUER, airflow2_env, airflow3_env
from tests.support.http import Reply, request
from tests.support.servers import GatewayServer, free_port, start_gateway

TOKENS = {
    "ci-bot": ("ci-bot-token-" + "a" * 24, ["team-a"]),
    "reader": ("reader-token-" + "b" * 24, ["readers"]),
}


def gateway_settings(upstream: str) -> dict[str, str]:
    tokens = [
        {"name": name, "sha256": hash_token(token), "groups": groups}
        for name, (token, groups) in TOKENS.items()
    ]
    return {
        "AUTH__TOKENS": json.dumps(tokens),
        "AUTH__HEADER_NAME": "X-Gateway-Authorization",
        "PROXY__UPSTREAM": upstream,
        "ASSERTION__ISSUER": ISSUER,
        "ASSERTION__AUDIENCE": AUDIENCE,
    }


def as_(name: str) -> dict[str, str]:
    return {"X-Gateway-Authorization": f"Bearer {TOKENS[name][0]}"}


def call(front: str, method: str, path: str, body: object = None, **headers: str) -> Reply:
    sent = {"Accept": "application/json", **headers}
    data = None
    if body is not None:
        sent["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    return request(method, f"{front}{path}", headers=sent, body=data, timeout=60)


def forged_by_gateway_key(gateway: GatewayServer, name: str, groups: list[str]) -> str:
    """A valid assertion signed with the gateway's own key: what a client could have captured."""
    keys = KeyRing.load(key_dir=gateway.state_dir / "keys")
    signer = AssertionSigner(keys, issuer=ISSUER, audience=AUDIENCE)
    return signer.sign(Principal(name, "token", frozenset(groups)))


@pytest.fixture(scope="module")
def stack3(
    airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AirflowServer, GatewayServer]]:
    """Airflow 3 with the gateway auth manager reading the gateway's JWKS, and the gateway in front."""
    tmp = tmp_path_factory.mktemp("assertion-af3")
    port = free_port()
    env = airflow3_env(f"http://127.0.0.1:{port}/.well-known/jwks.json")
    airflow = start_api_server(airflow3, tmp, extra_env=env)
    gateway = start_gateway(airflow3, tmp, settings=gateway_settings(airflow.url), port=port)
    yield airflow, gateway
    gateway.stop()
    airflow.stop()


@pytest.mark.airflow3
def test_a_named_token_uses_airflows_api_with_no_airflow_credentials(
    stack3: tuple[AirflowServer, GatewayServer], airflow3: AirflowHome
) -> None:
    _, gateway = stack3
    dags = call(gateway.url, "GET", "/api/v2/dags", **as_("ci-bot"))
    assert dags.status == 200, dags.body
    run_id = f"assertion-{uuid.uuid4().hex[:12]}"
    body = {"dag_run_id": run_id, "logical_date": None, "conf": {}}
    reply = call(gateway.url, "POST", "/api/v2/dags/gw_example/dagRuns", body, **as_("ci-bot"))
    assert reply.status == 200, reply.body
    assert reply.json["triggering_user_name"] == "ci-bot"
    assert airflow3.sql("SELECT triggering_user_name FROM dag_run WHERE run_id = ?", run_id) == [("ci-bot",)]
    events = airflow3.sql("SELECT event FROM log WHERE owner = 'ci-bot' AND extra LIKE ?", f"%{run_id}%")
    assert events and events[0][0] == "trigger_dag_run", events


@pytest.mark.airflow3
def test_roles_follow_groups_and_anonymous_gets_nothing(stack3: tuple[AirflowServer, GatewayServer]) -> None:
    _, gateway = stack3
    assert call(gateway.url, "GET", "/api/v2/dags/gw_example", **as_("reader")).status == 200
    body = {"dag_run_id": f"denied-{uuid.uuid4().hex[:8]}", "logical_date": None}
    assert call(gateway.url, "POST", "/api/v2/dags/gw_example/dagRuns", body, **as_("reader")).status == 403
    assert call(gateway.url, "GET", "/api/v2/dags").status == 401  # anonymous: no assertion


@pytest.mark.airflow3
@pytest.mark.parametrize(
    "spelling", ["X-Gateway-Assertion", "x-gateway-assertion", "X-GATEWAY-ASSERTION", "X_Gateway_Assertion"]
)
def test_a_client_sent_assertion_never_reaches_airflow(
    stack3: tuple[AirflowServer, GatewayServer], spelling: str
) -> None:
    """Even a valid one, signed with the gateway's key: anonymous stays anonymous, and a
    principal's own assertion replaces it (the run names ci-bot, not the admin it claimed)."""
    airflow, gateway = stack3
    captured = forged_by_gateway_key(gateway, "admin-person", ["airflow-admins"])
    assert call(airflow.url, "GET", "/api/v2/dags", **{HEADER: captured}).status == 200  # valid directly
    assert call(gateway.url, "GET", "/api/v2/dags", **{spelling: captured}).status == 401
    run_id = f"spelling-{uuid.uuid4().hex[:12]}"
    body = {"dag_run_id": run_id, "logical_date": None}
    reply = call(
        gateway.url, "POST", "/api/v2/dags/gw_example/dagRuns", body, **as_("ci-bot"), **{spelling: captured}
    )
    assert reply.status == 200 and reply.json["triggering_user_name"] == "ci-bot", reply.body


@pytest.mark.airflow3
def test_the_jwks_is_the_gateways_key_and_whoami_is_unchanged(
    stack3: tuple[AirflowServer, GatewayServer],
) -> None:
    _, gateway = stack3
    jwks = call(gateway.url, "GET", "/.well-known/jwks.json")
    assert jwks.status == 200
    (key,) = jwks.json["keys"]
    assert "d" not in key and key["kid"] == KeyRing.load(key_dir=gateway.state_dir / "keys").current.kid
    path = gateway.state_dir / "keys" / "assertion-key.pem"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    token = forged_by_gateway_key(gateway, "x", [])
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]


@pytest.fixture(scope="module")
def stack2(
    airflow2: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AirflowServer, GatewayServer]]:
    """Airflow 2 with the gateway's FAB API backend reading the gateway's JWKS, the gateway in front."""
    tmp: Path = tmp_path_factory.mktemp("assertion-af2")
    port = free_port()
    env = airflow2_env(tmp, f"http://127.0.0.1:{port}/.well-known/jwks.json")
    airflow = start_webserver(airflow2, tmp, extra_env=env)
    gateway = start_gateway(airflow2, tmp, settings=gateway_settings(airflow.url), port=port)
    yield airflow, gateway
    gateway.stop()
    airflow.stop()


@pytest.mark.airflow2
def test_airflow2_api_v1_takes_the_gateways_principal(
    stack2: tuple[AirflowServer, GatewayServer], airflow2: AirflowHome
) -> None:
    _, gateway = stack2
    run_id = f"assertion-{uuid.uuid4().hex[:12]}"
    reply = call(
        gateway.url, "POST", "/api/v1/dags/gw_example/dagRuns", {"dag_run_id": run_id}, **as_("ci-bot")
    )
    assert reply.status == 200, reply.body
    events = airflow2.sql(
        "SELECT owner FROM log WHERE event = 'api.post_dag_run' AND extra LIKE ?", f"%{run_id}%"
    )
    assert ("ci-bot",) in events, events
    body = {"dag_run_id": f"denied-{uuid.uuid4().hex[:8]}"}
    assert call(gateway.url, "POST", "/api/v1/dags/gw_example/dagRuns", body, **as_("reader")).status == 403
    assert call(gateway.url, "GET", "/api/v1/dags").status == 401
