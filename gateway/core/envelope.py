"""The original plugin's JSON envelope, with per-request times and the gateway's additions."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from werkzeug.wrappers import Response

JSON_MIMETYPE = "application/json"


def http_date(timestamp: float) -> str:
    """The plugin's timestamp format: ``Tue, 29 Nov 2016 14:22:26 GMT``."""
    return formatdate(timestamp, usegmt=True)


@dataclass(slots=True)
class Envelope:
    """One answer of the API endpoint, field for field as the original plugin's.

    ``exit_code``, ``duration_seconds``, ``request_id`` and (when asked for) ``data``
    are the gateway's additions.
    """

    call_time: float
    request_id: str
    airflow_cmd: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    post_arguments: Mapping[str, Any] = field(default_factory=dict)
    output: Any = None
    status: str = "OK"
    warning: str | None = None
    http_response_code: int = 200
    exit_code: int | None = None
    duration_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def fail(self, code: int, output: Any) -> Envelope:
        """Mark this envelope as an error answer."""
        self.status = "ERROR"
        self.http_response_code = code
        self.output = output
        return self

    def add_warning(self, text: str) -> None:
        self.warning = text if not self.warning else f"{self.warning}; {text}"

    def to_dict(self, response_time: float) -> dict[str, Any]:
        body: dict[str, Any] = {
            "airflow_cmd": self.airflow_cmd,
            "arguments": dict(self.arguments),
            "post_arguments": dict(self.post_arguments),
            "call_time": http_date(self.call_time),
            "output": self.output,
            "response_time": http_date(response_time),
            "status": self.status,
            "warning": self.warning,
            "http_response_code": self.http_response_code,
            "exit_code": self.exit_code,
            "duration_seconds": self.duration_seconds,
            "request_id": self.request_id,
        }
        body.update(self.extra)
        return body

    def response(
        self,
        response_time: float,
        headers: Mapping[str, str] | None = None,
        mask: Callable[[dict[str, Any]], Any] | None = None,
    ) -> Response:
        """The answer; ``mask`` (redaction) sees the whole body before it is rendered."""
        fields = self.to_dict(response_time)
        body = json.dumps(fields if mask is None else mask(fields), default=str)
        return Response(
            body, status=self.http_response_code, mimetype=JSON_MIMETYPE, headers=dict(headers or {})
        )
