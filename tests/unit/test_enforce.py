"""The proxy guard and the API hook: decisions land on the audit record and in the 403 envelope."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from gateway.cli.apis import CATALOGUE
from gateway.config.loader import load_config
from gateway.core.errors import GatewayError
from gateway.identity.authenticator import Authenticator
from gateway.identity.tokens import hash_token
from gateway.observability.audit import AuditRecord
from gateway.policy.enforce import ProxyGuard
from gateway.policy.engine import PolicyEngine
from gateway.policy.loader import load_policies
from gateway.request.authentication import Authentication
from gateway.request.lifecycle import error_response
from gateway.request.scope import RequestScope

TOKEN = "guard-token-0123456789abcdefghijklmn"
RULES = """
[[rule]]
id = "read-ui"
effect = "allow"
principals = ["*"]
proxy_paths = ["/api/v2/*"]
proxy_methods = ["GET"]

[[rule]]
id = "no-anon-config"
effect = "deny"
auth_methods = ["anonymous"]
proxy_paths = ["/api/v2/config*"]
"""


def guard(tmp_path: Path, shadow: bool = False) -> tuple[Any, list[dict[str, Any]]]:
    (tmp_path / "p.toml").write_text(RULES)
    tokens = json.dumps([{"name": "ops", "sha256": hash_token(TOKEN), "groups": ["ops"]}])
    auth = Authenticator(load_config({"AIRFLOW_GATEWAY__AUTH__TOKENS": tokens}), {})
    engine = PolicyEngine(load_policies(tmp_path, CATALOGUE), shadow=shadow)
    seen: list[dict[str, Any]] = []

    def upstream(environ: Any, start_response: Any) -> Any:
        seen.append(dict(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"upstream"]

    # The layers a proxied request passes in the gateway: authentication, then the guard.
    inner = Authentication(ProxyGuard(upstream, engine), sources=[auth.identify], missing=auth.missing)

    def app(environ: Any, start_response: Any) -> Any:
        record = AuditRecord("req-12345678", environ["REQUEST_METHOD"], environ["PATH_INFO"], None)
        RequestScope("req-12345678", 0.0, record).attach(environ)
        seen.append({"record": record})
        try:
            return inner(environ, start_response)
        except GatewayError as exc:  # the lifecycle layer's part in the gateway
            return error_response(exc, environ)(environ, start_response)

    return app, seen


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "rule", "principal"),
    [
        pytest.param("GET", "/api/v2/dags", {}, 200, "read-ui", "anonymous", id="anonymous-allowed"),
        pytest.param("GET", "/api/v2/config", {}, 403, "no-anon-config", "anonymous", id="anonymous-denied"),
        pytest.param(
            "GET",
            "/api/v2/config",
            {"X-Gateway-Authorization": f"Bearer {TOKEN}"},
            200,
            "read-ui",
            "ops",
            id="token-lifts-deny",
        ),
        pytest.param(
            "POST",
            "/api/v2/dags",
            {"X-Gateway-Authorization": TOKEN},
            403,
            "default-deny",
            "ops",
            id="method-not-allowed",
        ),
    ],
)
def test_proxy_guard(
    tmp_path: Path, method: str, path: str, headers: dict[str, str], status: int, rule: str, principal: str
) -> None:
    """The guard decides before the upstream is called and records principal and rule on the audit record."""
    app, seen = guard(tmp_path)
    response = Client(app).open(path, method=method, headers=headers)
    record = seen[0]["record"]
    assert response.status_code == status
    assert (record.principal, record.rule_id, record.decision) == (
        principal,
        rule,
        "allow" if status == 200 else "deny",
    )
    assert (len(seen) == 2) == (status == 200)  # the upstream ran only when allowed
    if status == 200:
        assert response.headers["X-Gateway-Policy"] == f"allow; rule={rule}"
    if status == 403:
        assert response.json["policy"] == {"decision": "deny", "rule": rule, "shadow": False}  # type: ignore[index]
        assert rule in response.json["output"]  # type: ignore[index]


def test_shadow_guard_passes_and_records(tmp_path: Path) -> None:
    """In shadow mode a denied proxied request reaches the upstream and the record says shadow."""
    app, seen = guard(tmp_path, shadow=True)
    response = Client(app).get("/api/v2/config")
    assert response.status_code == 200 and len(seen) == 2
    assert response.headers["X-Gateway-Policy"] == "deny; rule=no-anon-config; shadow"
    assert (seen[0]["record"].decision, seen[0]["record"].shadow) == ("deny", True)


def test_invalid_gateway_credential_on_proxy_is_401(tmp_path: Path) -> None:
    """A wrong X-Gateway-Authorization on a proxied path is refused; Airflow never sees it."""
    app, seen = guard(tmp_path)
    response = Client(app).get("/api/v2/dags", headers={"X-Gateway-Authorization": "Bearer wrong"})
    assert response.status_code == 401 and len(seen) == 1
