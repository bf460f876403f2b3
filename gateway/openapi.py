"""OpenAPI 3.1 description of the gateway, generated from the API catalogue.

Each API gets its own path, ``/admin/rest_api/api/{name}`` (the same endpoint as
``/admin/rest_api/api?api={name}``), so its arguments and their types can be described
exactly.  Served at ``/admin/rest_api/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway import __version__
from gateway.cli.interpreter import Interpreter
from gateway.cli.spec import Api, Kind, Param, Unavailable
from gateway.jobs.openapi import JOB_SCHEMA, job_paths

API_PATH = "/admin/rest_api/api"
ERROR_CODES = {
    "400": "Bad request: unknown api or argument, invalid value, refused upload",
    "403": "Token authentication failed, or forbidden by policy",
    "404": "Not found (DAG, task, run, variable, pool, connection...)",
    "405": "Method not allowed",
    "409": "Conflict (already exists; deploy_dag without force)",
    "413": "Request body or uploaded file too large",
    "500": "The command failed, or an internal error (see the gateway log for the request id)",
    "501": "Not available on this Airflow (missing provider package)",
    "503": "Too many CLI calls in progress; retry later",
    "504": "The command did not finish in time and was killed (raise cli.timeouts.<api>, or use mode=job)",
}
_ID = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,249}$"
_BOOL = {"type": "string", "enum": ["on", "off", "true", "false", "1", "0", "yes", "no"]}
_SCHEMAS: dict[Kind, dict[str, Any]] = {
    Kind.DAG_ID: {"type": "string", "pattern": _ID},
    Kind.TASK_ID: {"type": "string", "pattern": _ID},
    Kind.RUN_ID: {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.~:+\-]{0,249}$"},
    Kind.DATE: {
        "type": "string",
        "description": "ISO 8601 date or date-time",
        "examples": ["2017-01-02T03:04:05"],
    },
    Kind.DATE_OR_RUN_ID: {"type": "string", "description": "ISO 8601 date-time or a run_id"},
    Kind.JSON_OBJECT: {
        "type": "string",
        "contentMediaType": "application/json",
        "examples": ['{"key": "value"}'],
    },
    Kind.BOOL: _BOOL,
    Kind.INT: {"type": "string", "pattern": r"^[0-9]{1,9}$"},
    Kind.PORT: {"type": "string", "pattern": r"^[0-9]{1,5}$"},
    Kind.REGEX: {"type": "string", "format": "regex"},
    Kind.POOL: {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,255}$"},
    Kind.POOL_SET: {"type": "string", "description": "NAME SLOT_COUNT [DESCRIPTION]"},
    Kind.CONN_ID: {"type": "string", "pattern": _ID},
    Kind.CONN_URI: {"type": "string", "description": "scheme://..."},
    Kind.CONN_TYPE: {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$"},
    Kind.VAR_KEY: {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.\-/:]{0,249}$"},
    Kind.TEXT: {"type": "string", "maxLength": 65536},
    Kind.FILE_NAME: {
        "type": "string",
        "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}\.(json|yaml|yml|env)$",
    },
    Kind.SERVER_PATH: {"type": "string", "pattern": r"^/"},
    Kind.HOST: {"type": "string"},
    Kind.QUEUES: {"type": "string", "description": "comma-separated queue names"},
    Kind.PRINCIPAL: {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.\-/@]{0,255}$"},
    Kind.BUNDLE: {"type": "string", "pattern": _ID},
    Kind.DAEMON_ID: {"type": "string", "pattern": r"^[a-z0-9_]{1,40}-[0-9a-f]{8,32}$"},
    Kind.STATE: {"type": "string", "enum": ["queued", "running", "success", "failed"]},
    Kind.UPLOAD: {"type": "string", "contentMediaType": "application/octet-stream"},
    Kind.SUBFOLDER: {
        "type": "string",
        "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,63}(/[A-Za-z0-9_][A-Za-z0-9_\-]{0,63}){0,3}$",
    },
}
assert set(_SCHEMAS) == set(Kind), "every Kind needs an OpenAPI schema"  # noqa: S101

ENVELOPE: dict[str, Any] = {
    "type": "object",
    "description": "The original airflow-rest-api-plugin's answer, plus the gateway's additions",
    "required": ["status", "http_response_code", "call_time", "response_time", "output"],
    "properties": {
        "airflow_cmd": {"type": ["string", "null"], "description": "The Airflow command line run"},
        "arguments": {"type": "object", "description": "Query arguments (secrets masked)"},
        "post_arguments": {"type": "object", "description": "Body arguments (secrets masked)"},
        "call_time": {"type": "string", "description": "When the request arrived (HTTP date)"},
        "response_time": {"type": "string", "description": "When the answer was sent (HTTP date)"},
        "output": {"description": "The command's output ({stdout, stderr, stdin}), a message or a value"},
        "status": {"type": "string", "enum": ["OK", "ERROR"]},
        "warning": {"type": ["string", "null"]},
        "http_response_code": {"type": "integer"},
        "exit_code": {"type": ["integer", "null"]},
        "duration_seconds": {"type": ["number", "null"]},
        "request_id": {"type": "string"},
        "data": {"description": "Parsed JSON result, when asked for (output=json) or given by the API"},
        "error": {"type": "string"},
    },
}


def _schema(param: Param) -> dict[str, Any]:
    schema = dict(_SCHEMAS[param.kind])
    schema["description"] = param.help + (
        f" (also accepted as: {', '.join(param.aliases)})" if param.aliases else ""
    )
    return schema


def _shared_responses() -> dict[str, Any]:
    """One response object per status, all the envelope (referenced from every operation)."""
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}}
    answers: dict[str, Any] = {"Ok": {"description": "OK", **body}}
    answers.update({f"Error{code}": {"description": text, **body} for code, text in ERROR_CODES.items()})
    return answers


def _responses() -> dict[str, Any]:
    answers: dict[str, Any] = {"200": {"$ref": "#/components/responses/Ok"}}
    answers.update({code: {"$ref": f"#/components/responses/Error{code}"} for code in ERROR_CODES})
    return answers


def _operation(api: Api, method: str, interpreter: Interpreter) -> dict[str, Any]:
    entry = interpreter.dialect.table.get(api.name)
    available = interpreter.available(api.name)
    note = (
        ""
        if available
        else (
            f" **Not available on this Airflow ({interpreter.dialect.versions})**"
            + (f": {entry.reason}" if isinstance(entry, Unavailable) else ".")
        )
    )
    op: dict[str, Any] = {
        "operationId": f"{api.name}_{method.lower()}",
        "summary": api.summary,
        "description": f"`{API_PATH}?api={api.name}`, kind {api.kind.value}, origin {api.origin}.{note}",
        "tags": [api.kind.value],
        "x-available": available,
        "responses": _responses(),
    }
    if method == "GET":
        op["parameters"] = [
            {"name": p.name, "in": "query", "required": p.required, "schema": _schema(p)} for p in api.params
        ]
        return op
    upload = any(p.kind is Kind.UPLOAD for p in api.params)
    body = {
        "type": "object",
        "properties": {p.name: _schema(p) for p in api.params},
        "required": [p.name for p in api.params if p.required],
        "additionalProperties": False,
    }
    media = "multipart/form-data" if upload else "application/x-www-form-urlencoded"
    op["requestBody"] = {"required": bool(body["required"]), "content": {media: {"schema": body}}}
    return op


def build_document(
    interpreter: Interpreter, catalogue: Mapping[str, Api], *, token_header: str, token_required: bool
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for this gateway and the detected Airflow."""
    paths: dict[str, Any] = {}
    for api in catalogue.values():
        paths[f"{API_PATH}/{api.name}"] = {m.lower(): _operation(api, m, interpreter) for m in api.methods}
    generic_args = {
        "name": "arguments",
        "in": "query",
        "style": "form",
        "explode": True,
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
        "description": "The API's arguments, as documented on its own path",
    }
    paths[API_PATH] = {
        "get": {
            "operationId": "api_get",
            "summary": "The original plugin's URL: the API is chosen by the 'api' argument",
            "parameters": [
                {
                    "name": "api",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "enum": list(catalogue)},
                },
                generic_args,
            ],
            "responses": _responses(),
        },
    }
    page = {
        "200": {"description": "The admin page", "content": {"text/html": {"schema": {"type": "string"}}}}
    }
    paths["/admin/rest_api/"] = {
        "get": {"operationId": "page", "summary": "Admin page", "responses": page, "security": []}
    }
    paths["/admin/rest_api/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    paths["/admin/rest_api/dags"] = {
        "get": {
            "operationId": "dags",
            "summary": "The DAG list shown on the page (list_dags, cached for a few seconds)",
            "responses": _responses(),
        }
    }
    paths.update(job_paths())  # issue 15
    paths["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness (does not call Airflow)",
            "security": [],
            "responses": {
                "200": {
                    "description": "alive",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    schemes = {"pluginToken": {"type": "apiKey", "in": "header", "name": token_header}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "airflow-gateway",
            "version": __version__,
            "description": (
                "The airflow-rest-api-plugin API on Airflow "
                f"{interpreter.dialect.versions}: every API runs the matching Airflow CLI command "
                "and answers in the plugin's JSON envelope.  Add mode=job (or send Prefer: respond-async) "
                "to run any CLI-backed API as a job: 202 with its id and Location, then /admin/rest_api/jobs."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {"Envelope": ENVELOPE, "Job": JOB_SCHEMA},
            "responses": _shared_responses(),
            "securitySchemes": schemes,
        },
        # Without a configured token the plugin's API is open (a warning is logged at start-up).
        "security": [{"pluginToken": []}] if token_required else [{"pluginToken": []}, {}],
    }
