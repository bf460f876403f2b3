"""Fixtures for the sign-on tests: the real OpenID provider (tests/support/oidc.py) and gateways
under gunicorn with sign-on on, in front of the session's Airflow 3 and 2 servers.

Each gateway gets its own client at the provider (registered once its port is known; the
gateway contacts the provider only at the first login).  Shared per session: the tests of
every file here use the same servers.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.e2e.conftest import TOKEN
from tests.support.airflow import AirflowHome
from tests.support.airflow_servers import AirflowServer
from tests.support.browser import Browser
from tests.support.http import Reply
from tests.support.oidc import LoginDriver, OidcProvider, client_metadata, oidc_provider
from tests.support.servers import GatewayServer, start_gateway

__all__ = ["oidc_provider"]

COOKIE = "airflow_gateway_session"
SECRET_ENV = "GATEWAY_TEST_OIDC_SECRET"
POLICIES = """
[[rule]]
id = "ui"
effect = "allow"
principals = ["*"]
proxy_paths = ["/*"]
proxy_methods = ["*"]

[[rule]]
id = "plugin-token"
effect = "allow"
auth_methods = ["plugin-token"]
apis = ["*"]

[[rule]]
id = "team-a-operators"
effect = "allow"
groups = ["team-a-operators"]
apis = ["*"]

[[rule]]
id = "viewers"
effect = "allow"
groups = ["viewers"]
apis = ["version", "rest_api_plugin_version", "whoami"]
"""


@dataclass
class SsoGateway:
    server: GatewayServer
    provider: OidcProvider
    client_id: str
    audit_file: Path

    @property
    def url(self) -> str:
        return self.server.url

    def browser(self) -> Browser:
        return Browser(self.url)

    def sign_in(
        self,
        browser: Browser,
        user: str = "ada",
        next_path: str = "/admin/rest_api/",
        driver: LoginDriver | None = None,
    ) -> Reply:
        """The whole flow over HTTP: the gateway's login, the provider's form, the callback.
        Returns the callback's answer (303 to ``next`` with the session cookie)."""
        started = browser.get(f"/admin/rest_api/login?next={next_path}")
        assert started.status == 303, started.body[:300]
        callback = (driver or LoginDriver()).authorize(
            started.headers["Location"], user, f"{user}-password", stop_at=self.url
        )
        return browser.get(callback.removeprefix(self.url))

    def callback_url(self, browser: Browser, user: str = "ada") -> str:
        """Start a login and sign in at the provider; the callback URL, not yet requested."""
        started = browser.get("/admin/rest_api/login")
        return LoginDriver().authorize(
            started.headers["Location"], user, f"{user}-password", stop_at=self.url
        )


def start_sso_gateway(
    airflow: AirflowHome,
    upstream: AirflowServer | None,
    provider: OidcProvider,
    tmp: Path,
    *,
    issuer: str | None = None,
    settings: dict[str, str] | None = None,
    workers: int = 1,
    port: int | None = None,
) -> SsoGateway:
    client_id = f"gw-{uuid.uuid4().hex[:8]}"
    secret = secrets.token_urlsafe(24)
    policy_dir = tmp / "policies"
    policy_dir.mkdir(parents=True, exist_ok=True)
    (policy_dir / "rules.toml").write_text(POLICIES)
    audit = tmp / "audit.jsonl"
    server = start_gateway(
        airflow,
        tmp,
        workers=workers,
        settings={
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
            "CLI__RUNNER": "cold",
            "POLICY__DIR": str(policy_dir),
            "AUDIT__FILE": str(audit),
            "OIDC__ISSUER": issuer or provider.issuer,
            "OIDC__CLIENT_ID": client_id,
            "OIDC__CLIENT_SECRET_ENV": SECRET_ENV,
            "OIDC__SCOPES": "openid,profile,email,groups,offline_access",
            "OIDC__GROUPS_CLAIM": "groups",
            "OIDC__JWKS_MIN_REFRESH_INTERVAL": "1",
            "SESSIONS__CACHE_TTL": "1",
            **({"PROXY__UPSTREAM": upstream.url} if upstream is not None else {}),
            **(settings or {}),
        },
        extra_env={SECRET_ENV: secret},
        port=port,
    )
    provider.add_client(
        client_metadata(
            client_id=client_id,
            secret=secret,
            redirect_uris=(f"{server.url}/admin/rest_api/oidc/callback",),
            post_logout_redirect_uris=(f"{server.url}/admin/rest_api/",),
        )
    )
    return SsoGateway(server, provider, client_id, audit)


@pytest.fixture(scope="session")
def sso3(
    airflow3: AirflowHome,
    airflow3_api: AirflowServer,
    oidc_provider: OidcProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SsoGateway]:
    """A gateway with sign-on in front of the Airflow 3 api-server."""
    gateway = start_sso_gateway(
        airflow3, airflow3_api, oidc_provider, tmp_path_factory.mktemp("sso3"), workers=2
    )
    yield gateway
    gateway.server.stop()


@pytest.fixture(scope="session")
def sso2(
    airflow2: AirflowHome,
    airflow2_web: AirflowServer,
    oidc_provider: OidcProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SsoGateway]:
    """A gateway with sign-on in front of the Airflow 2 webserver."""
    # Browsers keep cookies per host, not per port: another cookie name beside sso3 on 127.0.0.1.
    gateway = start_sso_gateway(
        airflow2, airflow2_web, oidc_provider, tmp_path_factory.mktemp("sso2"),
        settings={"SESSIONS__COOKIE_NAME": "airflow_gateway_session_2"},
    )  # fmt: skip
    yield gateway
    gateway.server.stop()


def location_path(reply: Reply) -> str:
    """The redirect target of ``reply`` as a path (+ query) when it stays on the same host."""
    location = reply.headers["Location"]
    parts = urlsplit(urljoin("http://gateway.invalid/", location))
    assert parts.netloc == "gateway.invalid", location
    return parts.path + (f"?{parts.query}" if parts.query else "")


def set_cookies(reply: Reply) -> list[str]:
    return reply.headers.get_all("Set-Cookie") or []


AuditReader = Callable[[], list[dict[str, object]]]
