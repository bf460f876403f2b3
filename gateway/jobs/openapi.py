"""The job endpoints in the gateway's OpenAPI document."""

from __future__ import annotations

from typing import Any

from gateway.jobs.store import MAX_OFFSET, STATES

JOBS_PATH = "/admin/rest_api/jobs"

_JOB: dict[str, Any] = {
    "type": "object",
    "description": "A job; 'envelope' is the synchronous call's answer once the job has ended",
    "required": ["job_id", "state", "api", "principal", "created_at", "location"],
    "properties": {
        "job_id": {"type": "string"},
        "state": {"type": "string", "enum": list(STATES)},
        "api": {"type": "string"},
        "dag_id": {"type": ["string", "null"]},
        "principal": {"type": "string"},
        "auth_method": {"type": "string"},
        "airflow_cmd": {"type": ["string", "null"]},
        "request_id": {"type": "string", "description": "The submitting request's id"},
        "exit_code": {"type": ["integer", "null"]},
        "reason": {"type": ["string", "null"], "description": "Why it failed, timed out or was lost"},
        "created_at": {"type": "number", "description": "Unix time"},
        "started_at": {"type": ["number", "null"]},
        "finished_at": {"type": ["number", "null"]},
        "duration_seconds": {"type": ["number", "null"]},
        "cancel_requested": {"type": "boolean"},
        "output_chars": {"type": "integer"},
        "output_truncated": {
            "type": "boolean",
            "description": "Output past jobs.max_output_bytes was dropped",
        },
        "instance": {"type": "string", "description": "The gateway instance running it"},
        "location": {"type": "string"},
        "envelope": {"oneOf": [{"$ref": "#/components/schemas/Envelope"}, {"type": "null"}]},
        "message": {"type": "string"},
    },
}
_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "The job's id, as in the 202 answer's job.job_id (any other id: 404)",
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
_OFFSET = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/Error{code}"} for code in codes}


def job_paths(auth_errors: tuple[str, ...] = ("401", "403")) -> dict[str, Any]:
    """Paths of the job endpoints (the Job schema is inlined).

    :param auth_errors: what authentication can answer (401, 403; 503 with a JWKS).
    """
    job = {"$ref": "#/components/schemas/Job"}
    listing = {
        "type": "object",
        "properties": {
            "jobs": {"type": "array", "items": job},
            "all_principals": {"type": "boolean", "description": "True when the caller sees every job"},
        },
    }
    return {
        JOBS_PATH: {
            "get": {
                "operationId": "jobs_list",
                "summary": "The caller's jobs, newest first (every principal's with job_read_any)",
                "parameters": [
                    {"name": "state", "in": "query", "schema": {"type": "string", "enum": list(STATES)}},
                    {"name": "api", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]{1,4}$"}},
                ],
                "responses": {"200": _json("The jobs", listing), **_errors("400", *auth_errors, "503")},
            }
        },
        f"{JOBS_PATH}/{{job_id}}": {
            "parameters": [_JOB_ID],
            "get": {
                "operationId": "job_get",
                "summary": "A job's state, timings and, once ended, the synchronous call's envelope",
                "responses": {"200": _json("The job", job), **_errors(*auth_errors, "404", "503")},
            },
            "delete": {
                "operationId": "job_cancel",
                "summary": "Cancel a job: its whole process tree is killed (by the instance running it)",
                "responses": {
                    "202": _json("Cancel requested", job),
                    "409": _json("The job had already ended, or nothing runs it any more (then failed)", job),
                    **_errors(*auth_errors, "404", "503"),
                },
            },
        },
        f"{JOBS_PATH}/{{job_id}}/output": {
            "parameters": [_JOB_ID],
            "get": {
                "operationId": "job_output",
                "summary": "The job's output: Server-Sent Events (resume with Last-Event-ID), or JSON",
                "description": (
                    "Each `output` event's data is `{stream, text, offset}` and its id the offset after it; "
                    "an `end` event closes the stream when the job has ended.  A response lasts at most "
                    "jobs.stream_max_seconds, then the client reconnects (`retry:`) with Last-Event-ID.  "
                    "Streams open at once are capped per principal (429) and per worker (503).  "
                    "With `format=json` (or Accept: application/json): the chunks from `offset`, at most "
                    "1 MiB of text (ask again from `next_offset`)."
                ),
                "parameters": [
                    {
                        "name": "offset",
                        "in": "query",
                        "description": (
                            "Start at this output offset (characters over both streams; default 0): "
                            "a decimal integer from 0 to 2^53-1, anything else is a 400"
                        ),
                        "schema": _OFFSET,
                    },
                    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "sse"]}},
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "description": (
                            "The id of the last event received, i.e. the offset to resume from (sent by "
                            "EventSource when it reconnects); when present it is used instead of `offset`. "
                            "A decimal integer from 0 to 2^53-1, anything else is a 400"
                        ),
                        "schema": _OFFSET,
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The output",
                        "content": {
                            "text/event-stream": {"schema": {"type": "string"}},
                            "application/json": {"schema": {"type": "object"}},
                        },
                    },
                    **_errors("400", *auth_errors, "404", "429", "503"),
                },
            },
        },
    }


JOB_SCHEMA = _JOB
