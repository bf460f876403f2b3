"""The request layer: one typed scope, one route table, one authentication layer, errors
rendered and audited in one place."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Response

from gateway.core.errors import GatewayError, TokenRequired, Unauthorized
from gateway.core.redact import Redactor
from gateway.identity.principal import ANONYMOUS, Principal
from gateway.observability.audit import AuditLog, AuditRecord, AuditSink
from gateway.request.authentication import Authentication
from gateway.request.lifecycle import RequestLifecycle
from gateway.request.routes import ROUTES, TABLE, URL_MAP, Access, Route, RouteTable
from gateway.request.routing import Dispatch, Routing
from gateway.request.scope import RequestScope
from gateway.web.endpoints import Endpoints

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
SCOPE_MODULE = GATEWAY / "request" / "scope.py"


def _environ_keys(path: Path) -> list[str]:
    """``gateway.*`` string keys read or written on an environ: ``environ["gateway.x"]``,
    ``environ.get("gateway.x")`` (also ``setdefault``/``pop``, on any ``*environ*``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        target: ast.expr | None = None
        key: ast.expr | None = None
        if isinstance(node, ast.Subscript):
            target, key = node.value, node.slice
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"get", "setdefault", "pop"}
            and node.args
        ):
            target, key = node.func.value, node.args[0]
        if (
            target is not None
            and "environ" in ast.unparse(target)
            and isinstance(key, ast.Constant)
            and isinstance(key.value, str)
            and key.value.startswith("gateway.")
        ):
            found.append(f"{path.name}:{getattr(node, 'lineno', 0)}: {key.value}")
    return found


def test_no_module_but_the_scope_keeps_request_state_in_the_environ() -> None:
    """Request state is the scope's: no other module reads or writes a ``gateway.*`` environ key."""
    found = [
        hit for path in sorted(GATEWAY.rglob("*.py")) if path != SCOPE_MODULE for hit in _environ_keys(path)
    ]
    assert found == []


def test_the_key_check_sees_a_key(tmp_path: Path) -> None:
    """The check above is not vacuous: it finds keys written the ways the gateway used to."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f(environ, request):\n"
        '    environ["gateway.a"] = request.environ.get("gateway.b")\n'
        '    return environ.setdefault("gateway.c", 0), log.get("gateway.not_environ")\n'
    )
    assert sorted(hit.split(": ")[1] for hit in _environ_keys(probe)) == [
        "gateway.a",
        "gateway.b",
        "gateway.c",
    ]


def _scope(route: Route | None = None) -> RequestScope:
    return RequestScope("req-00000001", 1.5, AuditRecord("req-00000001", "GET", "/", None), route=route)


def test_scope_accessors() -> None:
    environ: dict[str, Any] = {}
    assert RequestScope.find(environ) is None
    with pytest.raises(LookupError, match="RequestLifecycle"):
        RequestScope.of(environ)
    scope = _scope()
    scope.attach(environ)
    assert RequestScope.of(environ) is scope is RequestScope.find(environ)
    with pytest.raises(LookupError, match="public"):
        scope.caller()
    scope.authenticated(Principal("ops", "token"))
    assert scope.caller().name == "ops"
    assert (scope.audit.principal, scope.audit.auth_method) == ("ops", "token")
    assert not hasattr(scope, "__dict__")  # slots: one small object per request


def test_the_url_map_and_the_fast_path_come_from_the_routes() -> None:
    assert {rule.endpoint for rule in URL_MAP.iter_rules()} == {route.name for route in ROUTES}
    assert TABLE.segments == {"admin", "healthz", "metrics", "readyz", ".well-known"}
    assert not TABLE.may_own("/api/v2/dags") and TABLE.may_own("/admin/x") and TABLE.may_own("//x")
    with pytest.raises(ValueError, match="two routes"):
        RouteTable([ROUTES[0], ROUTES[0]])


def test_public_routes_are_declared() -> None:
    """What needs no gateway credential today: health, the page and its files, OpenAPI, metrics,
    the assertion keys and the sign-on routes (each checks its own state, session and CSRF token)."""
    public = {route.name for route in ROUTES if route.access is Access.PUBLIC}
    assert public == {
        "page",
        "static",
        "openapi",
        "healthz",
        "readyz",
        "metrics",
        "jwks",
        "login",
        "oidc_callback",
        "logout",
    }
    assert {route.name for route in ROUTES} - public == {"api", "jobs"}


def test_dispatch_needs_a_handler_per_route() -> None:
    with pytest.raises(ValueError, match="do not match"):
        Dispatch({"api": lambda environ, scope: Response()}, lambda e, s: [], TABLE)


def test_every_route_has_a_named_handler() -> None:
    assert all(callable(getattr(Endpoints, f"on_{name}", None)) for name in TABLE.routes)


def _layers(sources: list[Any], missing: Any, seen: list[RequestScope], table: RouteTable = TABLE) -> Client:
    """Lifecycle -> routing -> authentication -> dispatch, every handler and the proxy noting the scope."""

    def handler(environ: Any, scope: RequestScope) -> Response:
        seen.append(scope)
        return Response("own")

    def proxied(environ: Any, start_response: Any) -> Any:
        seen.append(RequestScope.of(environ))
        start_response("200 OK", [])
        return [b"proxied"]

    dispatch = Dispatch(dict.fromkeys(table.routes, handler), proxied, table)
    auth = Authentication(dispatch, sources=sources, missing=missing)
    audit = AuditLog(Redactor(), AuditSink(stdout=False))
    return Client(RequestLifecycle(Routing(auth, table, proxying=True), audit=audit, redactor=Redactor()))


def test_a_principal_source_plugs_in() -> None:
    """A second source (say a browser session cookie) is tried after the first, on own routes
    and proxied paths alike; public routes read none."""
    calls: list[tuple[str, bool]] = []

    def tokens(environ: Any, *, own: bool) -> Principal | None:
        calls.append(("tokens", own))
        return None

    def session(environ: Any, *, own: bool) -> Principal | None:
        calls.append(("session", own))
        return Principal("alice", "session") if "session=s1" in environ.get("HTTP_COOKIE", "") else None

    def missing(environ: Any, *, own: bool) -> Principal:
        if own:
            raise Unauthorized()
        return ANONYMOUS

    seen: list[RequestScope] = []
    client = _layers([tokens, session], missing, seen)
    client.set_cookie("session", "s1")
    assert client.get("/admin/rest_api/api").text == "own"
    assert client.get("/api/v2/dags").text == "proxied"
    assert client.get("/healthz").text == "own"
    assert [(s.route.name if s.route else None, s.principal) for s in seen] == [
        ("api", Principal("alice", "session")),
        (None, Principal("alice", "session")),
        ("healthz", None),
    ]
    assert calls == [("tokens", True), ("session", True), ("tokens", False), ("session", False)]
    client.delete_cookie("session")
    reply = client.get("/admin/rest_api/jobs")
    assert reply.status_code == 401 and reply.headers["WWW-Authenticate"] == 'Bearer realm="airflow-gateway"'
    assert client.get("/api/v2/dags").text == "proxied" and seen[-1].principal == ANONYMOUS


def test_a_route_declared_public_reads_no_credential() -> None:
    """A login callback, say: added to the table as public, it is answered without a principal."""

    def refuse(environ: Any, *, own: bool) -> Principal | None:
        raise AssertionError("a public route read a credential")

    table = RouteTable([*ROUTES, Route("login_callback", Access.PUBLIC, (("/oauth2/callback", "GET"),))])
    seen: list[RequestScope] = []
    client = _layers([refuse], refuse, seen, table)
    assert client.get("/oauth2/callback").text == "own"
    assert seen[0].principal is None and seen[0].route_values == {}


def test_errors_are_rendered_and_audited_by_the_lifecycle() -> None:
    """A GatewayError from any inner layer becomes the envelope with the request's id and call
    time and the error's headers; the audit record gets the failure reason and envelope status."""
    records: list[AuditRecord] = []

    class Audit(AuditLog):
        def emit(self, record: AuditRecord) -> None:
            records.append(record)

    def app(environ: Any, start_response: Any) -> Any:
        raise TokenRequired(auth_failure="bad_token")

    lifecycle = RequestLifecycle(app, audit=Audit(Redactor(), AuditSink(stdout=False)), redactor=Redactor())
    environ = EnvironBuilder("/metrics", headers=[("X-Request-ID", "client-id-1234")]).get_environ()
    body: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        body.append(status.encode())
        body.append(json.dumps(headers).encode())
        return body.append

    iterable = lifecycle(environ, start_response)
    data = b"".join(iterable)
    iterable.close()  # type: ignore[attr-defined]
    envelope = json.loads(data)
    assert body[0] == b"401 UNAUTHORIZED"
    assert ["WWW-Authenticate", "Bearer"] in json.loads(body[1])
    assert envelope["request_id"] == "client-id-1234" and envelope["http_response_code"] == 401
    [record] = records
    assert (record.auth_failure_reason, record.envelope_status, record.status) == ("bad_token", "ERROR", 401)


def test_get_response_has_no_side_effects() -> None:
    """Outside a request an error still renders (werkzeug's entry point), and touches nothing."""
    error = GatewayError("boom")
    environ: dict[str, Any] = {}
    response = error.get_response(environ)
    assert response.status_code == 500 and environ == {}


@pytest.mark.parametrize(
    "path", ["/admin/rest_api/api/%2Fhome?x=1", "/admin//rest_api/api", "/admin/rest_api//jobs"]
)
def test_doubled_slashes_in_an_own_path_get_a_308_envelope_not_an_html_page(
    tmp_path: Path, path: str
) -> None:
    """Found by the fuzz test in CI: an API named ``/home`` in the path (``api/%2Fhome``) was
    answered with werkzeug's HTML redirect page, so a JSON client got HTML."""
    from tests.unit.gateway_app import TOKEN, unit_gateway

    with unit_gateway(tmp_path) as gw:
        method = "GET" if "jobs" in path else "POST"
        reply = Client(gw.app).open(
            path, method=method, headers={"rest_api_plugin_http_token": TOKEN}, buffered=True
        )
        assert reply.status_code == 308 and reply.content_type == "application/json"
        body = json.loads(reply.data)
        assert body["http_response_code"] == 308 and "single slashes" in body["output"]
        assert reply.headers["Location"].endswith(path.replace("%2F", "/").replace("//", "/"))
        assert gw.events()[-1]["http_status"] == 308
