"""Two gateways (gunicorn) sharing sessions in one PostgreSQL: a session made on A works on B,
and a logout on A ends it on B (within sessions.cache_ttl, 1 s here)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.sso.conftest import COOKIE, SsoGateway, start_sso_gateway
from tests.support.airflow import AirflowHome
from tests.support.browser import Browser
from tests.support.oidc import OidcProvider
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.airflow3


@pytest.fixture(scope="module")
def pair(
    airflow3: AirflowHome,
    oidc_provider: OidcProvider,
    postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SsoGateway, SsoGateway]]:
    url = postgres.create_database("gateway_sso_sessions")
    shared = {"SESSIONS__DATABASE_URL": url}
    gateways: list[SsoGateway] = []
    try:
        for name in ("a", "b"):
            tmp = tmp_path_factory.mktemp(f"sso-pg-{name}")
            gateways.append(start_sso_gateway(airflow3, None, oidc_provider, tmp, settings=shared))
        yield gateways[0], gateways[1]
    finally:
        for gateway in gateways:
            gateway.server.stop()


def signed_in(browser: Browser) -> bool:
    return b"signed-in-as" in browser.get("/admin/rest_api/").body


def test_logout_on_instance_a_ends_the_session_on_instance_b(pair: tuple[SsoGateway, SsoGateway]) -> None:
    a, b = pair
    on_a = a.browser()
    a.sign_in(on_a)
    on_b = b.browser()
    on_b.cookies = {COOKIE: on_a.cookies[COOKIE]}  # the same browser, another instance behind a balancer
    assert signed_in(on_a) and signed_in(on_b)
    csrf = on_a.get("/admin/rest_api/").body.decode().split('data-csrf-token="')[1].split('"')[0]
    out = on_a.request(
        "POST", "/admin/rest_api/logout", body=f"csrf_token={csrf}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": a.url},
    )  # fmt: skip
    assert out.status == 303
    deadline = time.monotonic() + 5
    while signed_in(on_b):
        assert time.monotonic() < deadline, "instance B still serves the session"
        time.sleep(0.2)
    assert on_b.get("/home").status == 303  # to the login
