"""OpenAPI 3.1 description of the gateway, generated from the API catalogue.

Each API gets its own path, ``/admin/rest_api/api/{name}`` (the same endpoint as
``/admin/rest_api/api?api={name}``), so its arguments and their types can be described
exactly.  Served at ``/admin/rest_api/openapi.json``.

Security is described as the gateway applies it: the API, DAG list and job endpoints take the
plugin's header, named tokens or JWTs (:mod:`gateway.identity.authenticator`); ``/metrics``
takes its own bearer token (:class:`gateway.observability.metrics.MetricsEndpoint`); the page, this
document and the health checks are open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway import __version__
from gateway.cli.interpreter import Interpreter
from gateway.cli.spec import Api, ApiKind, Kind, Param, Unavailable
from gateway.config.settings import SessionsConfig
from gateway.jobs.openapi import JOB_SCHEMA, job_paths
from gateway.sessions.signon import CALLBACK_PATH, CSRF_FIELD, CSRF_HEADER, LOGIN_PATH, LOGOUT_PATH
from gateway.web.body import FORM, JSON, MULTIPART

if TYPE_CHECKING:
    from gateway.config.loader import GatewayConfig

API_PATH = "/admin/rest_api/api"
PLUGIN_HEADER = "rest_api_plugin_http_token"  # the original's default header name
ERROR_CODES = {
    "400": "Bad request: unknown api or argument, invalid value, refused upload",
    "401": "Missing or invalid bearer credentials (named token or JWT; /metrics: its token)",
    "403": "Token authentication failed, or forbidden by policy",
    "404": "Not found (DAG, task, run, variable, pool, connection...)",
    "405": "Method not allowed",
    "409": "Conflict (already exists; deploy_dag without force)",
    "413": "Request body or uploaded file too large",
    "415": "Request body of another type than form, multipart or JSON",
    "429": "Over one of the caller's own limits (job output streams open, stored job output)",
    "500": "The command failed, or an internal error (see the gateway log for the request id)",
    "501": "Not available on this Airflow (missing provider package)",
    "502": "The warm CLI process died during the call and the command's exit code is unknown",
    "503": (
        "Too many CLI calls, jobs or job output streams in progress, the job store or the JWT signing keys"
        " unreachable; retry later"
    ),
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

_STRINGS = {"type": "array", "items": {"type": "string"}}
ENVELOPE: dict[str, Any] = {
    "type": "object",
    "description": (
        "The original airflow-rest-api-plugin's answer, plus the gateway's additions; the keys after "
        "request_id appear only when they apply"
    ),
    "required": ["status", "http_response_code", "call_time", "response_time", "output"],
    "properties": {
        "airflow_cmd": {"type": ["string", "null"], "description": "The Airflow command line run"},
        "arguments": {"type": "object", "description": "Query arguments (secrets masked)"},
        "post_arguments": {"type": "object", "description": "Body arguments (secrets masked)"},
        "call_time": {"type": "string", "description": "When the request arrived (HTTP date)"},
        "output": {"description": "The command's output ({stdout, stderr, stdin}), a message or a value"},
        "response_time": {"type": "string", "description": "When the answer was sent (HTTP date)"},
        "status": {"type": "string", "enum": ["OK", "ERROR"]},
        "warning": {"type": ["string", "null"], "description": "Ignored arguments, no-ops ('; '-separated)"},
        "http_response_code": {"type": "integer"},
        "exit_code": {"type": ["integer", "null"]},
        "duration_seconds": {"type": ["number", "null"]},
        "request_id": {
            "type": "string",
            "description": "Also in the X-Request-ID header and the audit event",
        },
        "data": {"description": "Parsed JSON result, when asked for (output=json) or given by the API"},
        "error": {"type": "string", "description": "Why the call failed"},
        "output_truncated": {
            "type": "boolean",
            "description": "Output past cli.max_output_bytes was dropped",
        },
        "runner": {"type": "string", "description": "The CLI runner that ran the command: warm or cold"},
        "policy": {
            "type": "object",
            "description": "The policy decision (with policies configured)",
            "properties": {
                "decision": {"type": "string", "enum": ["allow", "deny"]},
                "rule": {"type": ["string", "null"], "description": "The deciding rule's id"},
                "shadow": {"type": "boolean", "description": "Shadow mode: a denial logged, not enforced"},
            },
        },
        "daemon": {
            "type": "object",
            "description": "The daemon started (daemon APIs)",
            "properties": {
                "id": {"type": "string"},
                "pid": {"type": "integer"},
                "log_path": {"type": "string"},
            },
        },
        "job": {"$ref": "#/components/schemas/Job", "description": "The job accepted (202)"},
        "file": {"type": "string", "description": "deploy_dag: the DAG file written"},
        "dag_ids": {**_STRINGS, "description": "deploy_dag, refresh_dag: the DAG ids Airflow found"},
        "import_errors": {
            "type": "array",
            "items": {"type": "object", "additionalProperties": {"type": "string"}},
            "description": "deploy_dag, refresh_dag: Airflow's import errors for the file(s)",
        },
        "airflow_version": {"type": "string", "description": "rest_api_plugin_version: the Airflow version"},
        "dialect": {"type": "string", "description": "rest_api_plugin_version: the CLI table in use"},
        "backfill_id": {"type": "integer", "description": "backfill on Airflow 3: the backfill created"},
        "cleared": {"type": "integer", "description": "clear: how many task instances it cleared"},
        "backfill": {"type": "object", "description": "backfill on Airflow 3: the backfill, read back"},
        "gateway_http_response_code": {
            "type": "integer",
            "description": "Compatibility mode 1.0.9: the status the gateway would have answered",
        },
    },
}


@dataclass(frozen=True, slots=True)
class Security:
    """The credentials a gateway accepts, for the document's security requirements.

    The defaults list every kind (the configuration is not known); build it with
    :meth:`from_config` to describe one gateway exactly.

    :param anonymous: callers without credentials get through (nothing configured, or
        ``auth.allow_anonymous``).
    :param metrics_token: ``/metrics`` needs ``metrics.token``; None: not known.
    :param session_cookie: the sign-on session cookie (``sessions.cookie_name``); None: sign-on off.
    """

    plugin_header: str = PLUGIN_HEADER
    plugin_token: bool = True
    named_tokens: bool = True
    jwt: bool = True
    bearer_header: str = "X-Gateway-Authorization"
    anonymous: bool = False
    metrics_token: bool | None = None
    session_cookie: str | None = SessionsConfig.cookie_name.default

    @classmethod
    def from_config(cls, config: GatewayConfig) -> Security:
        plugin, tokens, jwt = (
            config.rest_api_plugin.rest_api_plugin_expected_http_token is not None,
            bool(config.auth.tokens),
            config.jwt.enabled,
        )
        return cls(
            plugin_header=config.rest_api_plugin.rest_api_plugin_http_token_header_name,
            plugin_token=plugin,
            named_tokens=tokens,
            jwt=jwt,
            bearer_header=config.auth.header_name,
            # Sign-on is a credential too: with it, the gateway's own routes are closed.
            anonymous=config.auth.allow_anonymous or not (plugin or tokens or jwt or config.oidc.enabled),
            metrics_token=config.metrics.token is not None,
            session_cookie=config.sessions.cookie_name if config.oidc.enabled else None,
        )

    def schemes(self) -> dict[str, Any]:
        """Every scheme the gateway knows, configured or not (their descriptions say by what)."""
        return {
            "pluginToken": {
                "type": "apiKey",
                "in": "header",
                "name": self.plugin_header,
                "description": "The original plugin's token (rest_api_plugin_expected_http_token)",
            },
            "namedToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "A named token ([[auth.tokens]], airflow-gateway hash-token)",
            },
            "jwt": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A JWT verified with the [jwt] keys (file, environment or JWKS URL)",
            },
            "gatewayHeader": {
                "type": "apiKey",
                "in": "header",
                "name": self.bearer_header,
                "description": (
                    "A named token or JWT ('Bearer ' optional) in the gateway's header (auth.header_name): "
                    "the one read on proxied paths, where Authorization belongs to Airflow"
                ),
            },
            "metricsToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "/metrics only: the scraper's token (metrics.token)",
            },
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": self.session_cookie or SessionsConfig.cookie_name.default,
                "description": (
                    f"A browser's session after OpenID Connect sign-on (GET {LOGIN_PATH}; "
                    "sessions.cookie_name). Used with csrfToken, from the same origin only"
                ),
            },
            "csrfToken": {
                "type": "apiKey",
                "in": "header",
                "name": CSRF_HEADER,
                "description": "The session's CSRF token (the page carries it): required with the session",
            },
        }

    def requirements(self) -> list[dict[str, list[str]]]:
        """Alternatives for the API, DAG list and job endpoints ({} when anonymous callers pass)."""
        names = ["pluginToken"] if self.plugin_token else []
        names += [n for n, on in (("namedToken", self.named_tokens), ("jwt", self.jwt)) if on]
        if self.named_tokens or self.jwt:
            names.append("gatewayHeader")
        found: list[dict[str, list[str]]] = [{name: []} for name in names]
        if self.session_cookie is not None:
            found.append({"session": [], "csrfToken": []})  # both together
        return found + ([{}] if self.anonymous or not found else [])

    def metrics_requirements(self) -> list[dict[str, list[str]]]:
        if self.metrics_token is None:
            return [{"metricsToken": []}, {}]
        return [{"metricsToken": []}] if self.metrics_token else []


def _schema(param: Param) -> dict[str, Any]:
    schema = dict(_SCHEMAS[param.kind])
    schema["description"] = param.help + (
        f" (also accepted as: {', '.join(param.aliases)})" if param.aliases else ""
    )
    return schema


_ENVELOPE_BODY = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}}
_HEADERS = {
    "401": {"WWW-Authenticate": 'Bearer, with error="invalid_token" when a token was given'},
    "503": {"Retry-After": "Seconds to wait, when the gateway is busy"},
    "429": {"Retry-After": "Seconds to wait before the limit lets the caller through"},
}
# API operations: "202" not for daemons (already detached), "415" only with a body (POST).
_API_CODES = (
    "200",
    "202",
    "400",
    "401",
    "403",
    "404",
    "405",
    "409",
    "413",
    "415",
    "429",
    "500",
    "501",
    "503",
    "504",
)


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


def _shared_responses() -> dict[str, Any]:
    """One response object per status, all the envelope (referenced from every operation)."""
    request_id = {"X-Request-ID": _header("The request's id, as in the envelope and the audit event")}
    answers: dict[str, Any] = {
        "Ok": {"description": "OK", "headers": request_id, **_ENVELOPE_BODY},
        "Accepted": {
            "description": "Accepted as a job (mode=job or Prefer: respond-async); the envelope's job key",
            "headers": {
                **request_id,
                "Location": _header("The job: /admin/rest_api/jobs/{job_id}"),
                "Preference-Applied": _header("respond-async"),
            },
            **_ENVELOPE_BODY,
        },
    }
    for code, text in ERROR_CODES.items():
        headers = {name: _header(help_) for name, help_ in _HEADERS.get(code, {}).items()}
        answers[f"Error{code}"] = {
            "description": text,
            **({"headers": headers} if headers else {}),
            **_ENVELOPE_BODY,
        }
    return answers


def _responses(codes: Sequence[str]) -> dict[str, Any]:
    names = {"200": "Ok", "202": "Accepted"}
    return {code: {"$ref": f"#/components/responses/{names.get(code, f'Error{code}')}"} for code in codes}


def _api_responses(api: Api | None, method: str) -> dict[str, Any]:
    """The statuses an API call can answer (``api`` None: the generic ``?api=`` URL)."""
    skip = {"202"} if api is not None and api.kind is ApiKind.DAEMON else set()
    if method != "POST":
        skip.add("415")
    return _responses([c for c in _API_CODES if c not in skip])


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
        "responses": _api_responses(api, method),
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
    content = (
        {MULTIPART: {"schema": body}}
        if upload
        else {FORM: {"schema": body}, JSON: {"schema": _json_body(body)}}
    )
    op["requestBody"] = {"required": bool(body["required"]), "content": content}
    return op


def _json_body(form: dict[str, Any]) -> dict[str, Any]:
    """A JSON body's values are taken like form fields (:func:`gateway.web.body.read_form`): a string,
    a number or boolean as its JSON text, or a list of them (several values)."""
    properties = {}
    for name, schema in form["properties"].items():
        scalar = [{k: v for k, v in schema.items() if k != "description"}, {"type": ["number", "boolean"]}]
        properties[name] = {
            "description": schema.get("description", ""),
            "anyOf": [*scalar, {"type": "array", "items": {"anyOf": scalar}}],
        }
    return {**form, "properties": properties}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_READY = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
        "checks": {
            "type": "object",
            "description": "cli (the Airflow CLI is there), upstream (Airflow answers), metrics (degraded)",
            "additionalProperties": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
        },
    },
}


def _signon_paths() -> dict[str, Any]:
    """The OpenID Connect sign-on routes (gateway/web/login.py)."""
    failed = {
        code: {
            "description": why,
            "content": {"text/html": {"schema": {"type": "string"}}, **_ENVELOPE_BODY["content"]},
        }
        for code, why in (
            ("400", "A used, expired or foreign login state"),
            ("401", "The provider or the ID token refused the sign-in"),
            ("502", "The provider misbehaved (e.g. invalid_client)"),
            ("503", "The provider cannot be reached"),
        )
    }
    redirect = {"headers": {"Location": {"schema": {"type": "string"}}}}
    return {
        LOGIN_PATH: {
            "get": {
                "operationId": "login",
                "summary": "Sign in: to the OpenID provider (PKCE; state and nonce bound to this browser)",
                "security": [],
                "parameters": [
                    {
                        "name": "next",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "Where to land: a path on this gateway (anything else: the page)",
                    },
                ],
                "responses": {
                    "303": {"description": "To the provider's authorization endpoint", **redirect},
                    **failed,
                },
            }
        },
        CALLBACK_PATH: {
            "get": {
                "operationId": "oidcCallback",
                "summary": "The provider's redirect back: the code is exchanged and a session cookie set",
                "security": [],
                "responses": {"303": {"description": "Signed in: to the 'next' path", **redirect}, **failed},
            }
        },
        LOGOUT_PATH: {
            "post": {
                "operationId": "logout",
                "summary": "Sign out here and at the provider (its end-session endpoint, when it has one)",
                "security": [{"session": [], "csrfToken": []}, {"session": []}],
                "requestBody": {
                    "required": False,
                    "description": f"The CSRF token as the form field {CSRF_FIELD} when not in {CSRF_HEADER}",
                    "content": {
                        FORM: {"schema": {"type": "object", "properties": {CSRF_FIELD: {"type": "string"}}}}
                    },
                },
                "responses": {
                    "303": {"description": "Signed out: to the provider or the page", **redirect},
                    **failed,
                },
            }
        },
    }


def _own_paths(security: Security) -> dict[str, Any]:
    """The page, this document, the DAG list, the health checks and /metrics."""
    page = {
        "200": {"description": "The admin page", "content": {"text/html": {"schema": {"type": "string"}}}}
    }
    metrics = {
        "200": {
            "description": "The Prometheus exposition (OpenMetrics when the Accept header asks for it)",
            "content": {
                m: {"schema": {"type": "string"}} for m in ("text/plain", "application/openmetrics-text")
            },
        },
        **(
            {"401": {"$ref": "#/components/responses/Error401"}}
            if security.metrics_token is not False
            else {}
        ),
        "403": {"description": "The client address is outside metrics.allow_from", **_ENVELOPE_BODY},
        "404": {"description": "Metrics are disabled (metrics.enabled = false)", **_ENVELOPE_BODY},
    }
    return {
        "/admin/rest_api/": {
            "get": {"operationId": "page", "summary": "Admin page", "responses": page, "security": []}
        },
        "/admin/rest_api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": _json("OpenAPI 3.1", {"type": "object"})},
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness (does not call Airflow)",
                "security": [],
                "responses": {
                    "200": _json("alive", {"type": "object", "properties": {"status": {"const": "ok"}}})
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: the Airflow CLI is there and Airflow answers (cached for a second)",
                "security": [],
                "responses": {"200": _json("ready (or degraded)", _READY), "503": _json("not ready", _READY)},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics of every gunicorn worker; never proxied to Airflow",
                "security": security.metrics_requirements(),
                "responses": metrics,
            }
        },
    }


def build_document(
    interpreter: Interpreter,
    catalogue: Mapping[str, Api],
    *,
    token_header: str | None = None,
    token_required: bool | None = None,
    security: Security | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for this gateway and the detected Airflow.

    :param security: the accepted credentials (:meth:`Security.from_config`).  Without it,
        ``token_header`` names the plugin's header and ``token_required`` False means no
        credential is configured (everyone is anonymous); True lists every kind.
    """
    if security is None:
        header = token_header or PLUGIN_HEADER
        if token_required is False:
            security = Security(
                header, plugin_token=False, named_tokens=False, jwt=False, anonymous=True, session_cookie=None
            )
        else:
            security = Security(header)
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
            "responses": _api_responses(None, "GET"),
        },
    }
    paths.update(_own_paths(security))
    if security.session_cookie is not None:
        paths.update(_signon_paths())
    paths.update(job_paths(auth_errors=("401", "403", "503") if security.jwt else ("401", "403")))
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
            "securitySchemes": security.schemes(),
        },
        # The API, DAG list and job endpoints; the others say their own.  Without a configured
        # credential the plugin's API is open (a warning is logged at start-up).
        "security": security.requirements(),
    }
