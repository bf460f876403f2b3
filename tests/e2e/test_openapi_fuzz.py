"""The OpenAPI document served by real gunicorn validates, and a bounded schemathesis run finds no 5xx."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode

from tests.e2e.conftest import TOKEN_HEADER
from tests.support.http import get
from tests.support.servers import GatewayServer

# Operations that answer without a CLI call (builtins, validation failures, cached or static
# answers); each CLI call costs seconds, and daemons must not be started by a fuzzer.
CHEAP = [
    "rest_api_plugin_version_get",
    "rest_api_plugin_version_post",
    "list_daemons_get",
    "stop_daemon_get",
    "stop_daemon_post",
    "deploy_dag_post",
    "openapi",
    "healthz",
    "dags",
    # issue 15: random job ids are 404s, listing reads the store
    "jobs_list",
    "job_get",
    "job_cancel",
    "job_output",
]


def test_served_document_validates(gateway3: GatewayServer) -> None:
    """/admin/rest_api/openapi.json is a valid OpenAPI 3.1 document covering deploy_dag."""
    reply = get(f"{gateway3.url}/admin/rest_api/openapi.json")
    assert reply.status == 200 and reply.content_type == "application/json"
    doc = reply.json
    validate(doc)
    assert "/admin/rest_api/api/deploy_dag" in doc["paths"]


@pytest.fixture(scope="module")
def api_schema(gateway3: GatewayServer) -> schemathesis.BaseSchema:
    """The gateway's own document, loaded by schemathesis from the running server."""
    return schemathesis.openapi.from_url(f"{gateway3.url}/admin/rest_api/openapi.json")


# Invalid input must be refused before any CLI call: these get schema-violating data only.
NEGATIVE = ["pause_post", "deploy_dag_post", "stop_daemon_get"]
# gunicorn answers these itself, in HTML, before the gateway sees the request
# (limit_request_line / limit_request_field_size): the only non-JSON answers allowed.
GUNICORN_LIMITS = {414, 431}


@pytest.mark.parametrize(
    ("operation_id", "mode"),
    [pytest.param(op, GenerationMode.POSITIVE, id=f"{op}-positive") for op in CHEAP]
    + [pytest.param(op, GenerationMode.NEGATIVE, id=f"{op}-negative") for op in NEGATIVE],
)
def test_no_server_error_and_always_json(
    api_schema: schemathesis.BaseSchema, gateway3: GatewayServer, operation_id: str, mode: GenerationMode
) -> None:
    """Whatever schemathesis sends, the answer is JSON (the envelope for API calls) and never a 5xx."""
    operation = api_schema.find_operation_by_id(operation_id)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=gateway3.url, headers=dict(TOKEN_HEADER), timeout=60)
        assert response.status_code < 500, response.text[:500]
        if response.status_code in GUNICORN_LIMITS:
            return
        content_type = response.headers.get("content-type", [""])[0]  # schemathesis: lower-case keys, lists
        assert content_type.startswith("application/json"), (response.status_code, response.text[:300])
        body = json.loads(response.text)
        if operation.path.startswith("/admin/rest_api/api"):
            assert body["http_response_code"] == response.status_code
            if mode is GenerationMode.NEGATIVE:
                assert body["status"] == "ERROR" and response.status_code in {400, 403, 404, 405, 413}, body

    check()
