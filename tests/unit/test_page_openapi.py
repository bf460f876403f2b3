"""The admin page and the OpenAPI document come from the catalogue (gateway.web.page, gateway.web.openapi)."""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from gateway.cli.apis import CATALOGUE
from gateway.cli.dialects import DIALECTS
from gateway.cli.interpreter import Interpreter
from gateway.cli.spec import Api, ApiKind, Kind, Param
from gateway.config.loader import load_config
from gateway.core.envelope import Envelope
from gateway.web.openapi import ENVELOPE, Security, build_document
from gateway.web.page import render_page

VERSIONS = {"gateway": "0.1.0", "airflow": "3.3.2", "dialect": "3"}


def interpreter(dialect: str = "3", catalogue: dict[str, Api] | None = None) -> Interpreter:
    return Interpreter(
        DIALECTS[dialect], catalogue or CATALOGUE, executable="/x/bin/airflow", files_dir=Path("/nonexistent")
    )


class Forms(HTMLParser):
    """Collects each form's api and its named inputs (with type), and every script tag."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self.current: str | None = None
        self.scripts: list[dict[str, str | None]] = []
        self.styles = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.current = a["data-api"]
            self.forms[str(self.current)] = {"_enctype": str(a.get("enctype"))}
        elif tag in {"input", "textarea"} and self.current and a.get("name") and a.get("form") is None:
            self.forms[self.current][str(a["name"])] = str(a.get("type", tag))
        elif tag == "script":
            self.scripts.append(a)
        elif tag == "style" or "style" in a:
            self.styles += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.current = None


@pytest.mark.parametrize("dialect", [pytest.param("3", id="airflow3"), pytest.param("2", id="airflow2")])
def test_page_has_a_form_with_fitting_inputs_for_every_api(dialect: str) -> None:
    """Every API has a form with one input per argument: checkbox for booleans, file for uploads."""
    parser = Forms()
    parser.feed(
        render_page(
            interpreter(dialect), CATALOGUE, versions=VERSIONS, token_header="rest_api_plugin_http_token"
        )
    )
    assert set(parser.forms) == set(CATALOGUE)
    for name, api in CATALOGUE.items():
        form = parser.forms[name]
        assert form["api"] == "hidden"
        for param in api.params:
            expected = {Kind.BOOL: "checkbox", Kind.UPLOAD: "file", Kind.JSON_OBJECT: "textarea"}.get(
                param.kind
            )
            assert form[param.name] == (expected or form[param.name]), (name, param.name)
    assert parser.forms["deploy_dag"]["_enctype"] == "multipart/form-data"
    assert {"set", "set_value"} <= set(parser.forms["variables"])


def test_page_has_no_inline_script_or_style() -> None:
    """Only the gateway's own script file is loaded: the CSP forbids inline code."""
    parser = Forms()
    parser.feed(render_page(interpreter(), CATALOGUE, versions=VERSIONS, token_header="h"))
    assert parser.scripts == [{"src": "/admin/rest_api/static/page.js"}]
    assert parser.styles == 0
    assert "http://" not in render_page(interpreter(), CATALOGUE, versions=VERSIONS, token_header="h")


def test_every_value_is_html_escaped() -> None:
    """Names, help texts and versions with markup come out escaped."""
    evil = '<script>alert(1)</script>"'
    catalogue = {**CATALOGUE, "version": Api("version", evil, (Param("x", Kind.TEXT, evil),))}
    text = render_page(
        interpreter(catalogue=catalogue), catalogue, versions={**VERSIONS, "airflow": evil}, token_header="h"
    )
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in text


def test_unavailable_api_is_marked_and_disabled() -> None:
    """An API without an equivalent on this Airflow is shown as not available, its form disabled."""
    text = render_page(interpreter("3"), CATALOGUE, versions=VERSIONS, token_header="h")
    section = re.search(r'<section class="api" id="api-serve_logs">.*?</section>', text, re.S)
    assert section is not None
    assert "not available on Airflow 3.x" in section.group(0)
    assert '<button type="submit" disabled>' in section.group(0)


@pytest.mark.parametrize("dialect", [pytest.param("3", id="airflow3"), pytest.param("2", id="airflow2")])
def test_openapi_document_is_valid_and_covers_the_catalogue(dialect: str) -> None:
    """The document validates as OpenAPI 3.1 and has one path per API with its arguments."""
    doc = build_document(
        interpreter(dialect), CATALOGUE, token_header="rest_api_plugin_http_token", token_required=True
    )
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    for name, api in CATALOGUE.items():
        path = doc["paths"][f"/admin/rest_api/api/{name}"]
        assert set(path) == {m.lower() for m in api.methods}
        if "get" in path:
            assert [p["name"] for p in path["get"]["parameters"]] == [p.name for p in api.params]
    deploy = doc["paths"]["/admin/rest_api/api/deploy_dag"]["post"]["requestBody"]["content"]
    assert deploy["multipart/form-data"]["schema"]["required"] == ["dag_file"]
    assert doc["components"]["securitySchemes"]["pluginToken"]["name"] == "rest_api_plugin_http_token"
    assert {"400", "403", "404", "409", "413", "500", "503", "504"} <= set(
        doc["paths"]["/admin/rest_api/api/version"]["get"]["responses"]
    )


def test_builtins_and_kinds_are_all_described() -> None:
    """Builtin APIs are documented like the others (the table is the single source)."""
    doc = build_document(interpreter(), CATALOGUE, token_header="h", token_required=False)
    builtins = [n for n, a in CATALOGUE.items() if a.kind is ApiKind.BUILTIN]
    assert {"deploy_dag", "refresh_dag", "rest_api_plugin_version"} <= set(builtins)
    # No credential configured (token_required False): the API is open, as the original plugin's.
    assert doc["security"] == [{}]


GATEWAY = Path(__file__).resolve().parent.parent.parent / "gateway"
SCHEMES = {"pluginToken", "namedToken", "jwt", "gatewayHeader", "metricsToken", "session", "csrfToken"}


def document(security: Security | None = None) -> dict[str, Any]:
    doc = build_document(
        interpreter(), CATALOGUE, token_header="X-Plugin", token_required=True, security=security
    )
    validate(doc)
    return doc


def test_every_security_scheme_is_described() -> None:
    """The plugin header (apiKey, its configured name), named tokens and JWT (bearer), the gateway header."""
    schemes = document(Security(plugin_header="X-Plugin", bearer_header="X-Gw"))["components"][
        "securitySchemes"
    ]
    assert set(schemes) == SCHEMES
    api_keys = {
        "pluginToken": ("header", "X-Plugin"),
        "gatewayHeader": ("header", "X-Gw"),
        "session": ("cookie", "airflow_gateway_session"),
        "csrfToken": ("header", "X-CSRF-Token"),
    }
    for name, (where, key) in api_keys.items():
        assert (schemes[name]["type"], schemes[name]["in"], schemes[name]["name"]) == (
            "apiKey",
            where,
            key,
        ), name
    assert schemes["namedToken"]["type"] == "http" and schemes["namedToken"]["scheme"] == "bearer"
    assert schemes["jwt"]["scheme"] == "bearer" and schemes["jwt"]["bearerFormat"] == "JWT"
    assert schemes["metricsToken"]["scheme"] == "bearer"
    # Without a configuration every kind is accepted on the API; nothing else is open.
    assert document()["security"] == [
        {"pluginToken": []},
        {"namedToken": []},
        {"jwt": []},
        {"gatewayHeader": []},
        {"session": [], "csrfToken": []},
    ]


def test_security_follows_the_configuration(tmp_path: Path) -> None:
    """From the real configuration: only what is configured is required; /metrics has its own token."""
    toml = tmp_path / "gw.toml"
    toml.write_text(
        '[rest_api_plugin]\nrest_api_plugin_expected_http_token = "s3cret-plugin-token"\n'
        '[auth]\nheader_name = "X-Gw"\n'
        '[[auth.tokens]]\nname = "ci"\nsha256 = "sha256:' + "ab" * 32 + '"\n'
        '[metrics]\ntoken = "a-long-random-scraper-token"\n',
        encoding="utf-8",
    )
    security = Security.from_config(load_config({}, toml))
    assert (security.plugin_token, security.named_tokens, security.jwt, security.anonymous) == (
        True,
        True,
        False,
        False,
    )
    doc = document(security)
    assert doc["security"] == [{"pluginToken": []}, {"namedToken": []}, {"gatewayHeader": []}]
    assert doc["components"]["securitySchemes"]["gatewayHeader"]["name"] == "X-Gw"
    assert doc["paths"]["/metrics"]["get"]["security"] == [{"metricsToken": []}]
    assert "401" in doc["paths"]["/metrics"]["get"]["responses"]
    # Nothing configured: open API, open /metrics without a 401.
    open_doc = document(Security.from_config(load_config({})))
    assert open_doc["security"] == [{}]
    assert open_doc["paths"]["/metrics"]["get"]["security"] == []
    assert "401" not in open_doc["paths"]["/metrics"]["get"]["responses"]


def test_gateway_paths_are_described_with_their_security() -> None:
    """/metrics, /readyz and /healthz are there; page, document and health checks are open."""
    paths = document()["paths"]
    assert {"/metrics", "/readyz", "/healthz", "/admin/rest_api/jobs"} <= set(paths)
    for open_path in ("/healthz", "/readyz", "/admin/rest_api/", "/admin/rest_api/openapi.json"):
        assert paths[open_path]["get"]["security"] == [], open_path
    assert "security" not in paths["/admin/rest_api/jobs"]["get"]  # the document's: the API's credentials
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "503"}
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {
        "text/plain",
        "application/openmetrics-text",
    }
    assert paths["/metrics"]["get"]["security"] == [{"metricsToken": []}, {}]  # configuration unknown


def test_status_codes_where_they_can_happen() -> None:
    """401/403/413/503 wherever credentials or limits apply; 415 with a body; 202 unless a daemon."""
    doc = document()
    paths = doc["paths"]
    get = set(paths["/admin/rest_api/api/trigger_dag"]["get"]["responses"])
    post = set(paths["/admin/rest_api/api/trigger_dag"]["post"]["responses"])
    assert {"200", "202", "400", "401", "403", "404", "409", "413", "500", "503", "504"} <= get
    assert "415" not in get and post == get | {"415"}
    assert "202" not in paths["/admin/rest_api/api/scheduler"]["get"]["responses"]
    assert {"401", "403", "413", "503"} <= set(paths["/admin/rest_api/api"]["get"]["responses"])
    assert {"401", "403", "503"} <= set(paths["/admin/rest_api/jobs"]["get"]["responses"])
    for path in (
        "/admin/rest_api/jobs",
        "/admin/rest_api/jobs/{job_id}",
        "/admin/rest_api/jobs/{job_id}/output",
    ):
        assert {"401", "403"} <= set(paths[path]["get"]["responses"]), path
    shared = doc["components"]["responses"]
    assert "WWW-Authenticate" in shared["Error401"]["headers"]
    assert "Retry-After" in shared["Error503"]["headers"]
    assert "Location" in shared["Accepted"]["headers"]
    body = paths["/admin/rest_api/api/trigger_dag"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/x-www-form-urlencoded", "application/json"}


def test_job_output_offsets_are_bounded_integers() -> None:
    """offset and Last-Event-ID are 0..2^53-1 (what clients hold exactly); job ids are the store's."""
    paths = document()["paths"]
    output = paths["/admin/rest_api/jobs/{job_id}/output"]
    params = {(p["in"], p["name"]): p for p in output["get"]["parameters"]}
    bounded = {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}
    assert params[("query", "offset")]["schema"] == bounded
    assert params[("header", "Last-Event-ID")]["schema"] == bounded
    assert "400" in output["get"]["responses"]
    job_id = output["parameters"][0]
    assert job_id["name"] == "job_id" and job_id["in"] == "path"
    assert re.fullmatch(job_id["schema"]["pattern"].strip("^$"), uuid.uuid4().hex)  # JobService's ids


def test_envelope_schema_has_every_key_the_gateway_sets() -> None:
    """Every envelope field and every ``envelope.extra[...]`` key set anywhere in gateway/ is described."""
    documented = set(ENVELOPE["properties"])
    fields = set(Envelope(call_time=0, request_id="r").to_dict(0))
    assert fields <= documented, fields - documented
    extra = set()
    for source in GATEWAY.rglob("*.py"):
        extra |= set(re.findall(r"""\.extra\[["']([a-z_]+)["']\]\s*=""", source.read_text(encoding="utf-8")))
    assert {
        "policy",
        "daemon",
        "file",
        "dag_ids",
        "data",
        "runner",
        "error",
        "job",
    } <= extra  # the scan works
    assert extra <= documented, extra - documented


def test_sign_on_is_described_when_configured(tmp_path: Path) -> None:
    """With oidc.issuer: the session cookie (with its CSRF token) closes the API, and the three
    sign-on routes are documented; without it neither appears."""
    toml = tmp_path / "gw.toml"
    toml.write_text(
        '[oidc]\nissuer = "https://idp.example.com"\nclient_id = "gw"\nclient_secret_env = "GW_SECRET"\n'
        '[sessions]\ncookie_name = "gw_session"\n',
        encoding="utf-8",
    )
    security = Security.from_config(load_config({"GW_SECRET": "s"}, toml))
    assert (security.session_cookie, security.anonymous) == ("gw_session", False)
    doc = document(security)
    assert doc["security"] == [{"session": [], "csrfToken": []}]  # no {}: sign-on is a credential
    assert doc["components"]["securitySchemes"]["session"]["name"] == "gw_session"
    login, callback, logout = (
        doc["paths"][p]
        for p in ("/admin/rest_api/login", "/admin/rest_api/oidc/callback", "/admin/rest_api/logout")
    )
    assert login["get"]["security"] == [] and "303" in login["get"]["responses"]
    assert callback["get"]["security"] == [] and {"400", "401", "502", "503"} <= set(
        callback["get"]["responses"]
    )
    assert {"session": [], "csrfToken": []} in logout["post"]["security"]

    off = Security.from_config(load_config({}, None))
    assert off.session_cookie is None
    doc = document(off)
    assert "/admin/rest_api/login" not in doc["paths"]
    assert {"session": [], "csrfToken": []} not in doc["security"]
