"""The audit trail: one canonical ``gateway.request`` event per request, emitted on close.

An :class:`AuditRecord` is what the event says; :class:`AuditLog` renders it as a redacted
JSON line and :class:`AuditSink` writes it.  The request lifecycle layer
(:mod:`gateway.request.lifecycle`) creates one record per request, on its request scope,
and emits it when the response closes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import structlog

from gateway.core.redact import SECRETS_KEY, Redactor
from gateway.observability.logging import WRITE_LOCK

EVENT = "gateway.request"
_DEFAULT_RULES = Redactor()
log = logging.getLogger("gateway.audit")


@dataclass(slots=True)
class AuditRecord:
    """Filled in by the layers as a request passes; emitted when the response closes.

    Other features set the fields they own: identity sets ``principal``, ``auth_method``
    and ``auth_failure_reason``; policy sets ``decision`` (``allow``/``deny``) and
    ``rule_id``; the proxy sets ``upstream_status``, ``upstream_error`` (a kind from
    :data:`gateway.observability.metrics.UPSTREAM_ERROR_KINDS`) and ``upstream_duration_s``.
    """

    request_id: str
    method: str
    path: str
    remote_addr: str | None
    query_string: str = field(default="", repr=False)  # as sent; never emitted (see ``recorded_query``)
    query: str | None = None  # as recorded: set by the API endpoint, which knows every argument
    started_at: float = field(default_factory=time.time)
    route: str = "unmatched"
    api: str | None = None
    arguments: dict[str, Any] | None = None  # redacted
    argv: list[str] | None = None  # redacted
    principal: str | None = None
    auth_method: str | None = None
    auth_failure_reason: str | None = None
    decision: str | None = None
    rule_id: str | None = None
    shadow: bool = False  # a denial that policy shadow mode only logged
    policy_version: str | None = None  # which policy files decided (they can be reloaded)
    status: int | None = None  # the HTTP status sent to the client
    envelope_status: str | None = None
    exit_code: int | None = None
    cli_outcome: str | None = None  # ok | failed | timeout | cancelled | busy
    cli_duration_s: float | None = None
    cli_runner: str | None = None  # warm | cold
    upstream_status: int | None = None
    upstream_error: str | None = None
    upstream_duration_s: float | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    duration_s: float | None = None
    error: str | None = None  # exception class name when the app or the body failed
    rate_limit: str | None = None  # the rate-limit rule (id) that refused the request
    secrets: set[str] = field(default_factory=set, repr=False)  # raw values masked everywhere; never emitted
    redactor: Redactor | None = field(default=None, repr=False)  # this deployment's rules
    _t0: float = field(default_factory=time.monotonic)

    @property
    def rules(self) -> Redactor:
        return self.redactor or _DEFAULT_RULES

    def recorded_query(self) -> str:
        """The query string decoded, masked and re-encoded (:meth:`Redactor.query`)."""
        if self.query is None:
            self.query = self.rules.query(self.query_string, self.secrets)
        return self.query

    def answered(self, obj: Any) -> Any:
        """An answer to this request with the secrets it carried masked (echoed by a CLI)."""
        return self.rules.known(obj, self.secrets) if self.secrets or self.rules.secrets else obj

    def masked(self, obj: Any) -> Any:
        """Anything kept about this request (a job's stored envelope), masked by the same
        rules and known secrets as its audit event; values of sensitive keys masked too."""
        return self.rules.value(obj, self.secrets)

    def event(self) -> dict[str, Any]:
        """The event's fields, in a stable order (``time``/``level`` are added when logged)."""
        return {
            "request_id": self.request_id,
            "start_time": datetime.fromtimestamp(self.started_at, UTC).isoformat(),
            "principal": self.principal,
            "auth_method": self.auth_method,
            "auth_failure_reason": self.auth_failure_reason,
            "remote_addr": self.remote_addr,
            "method": self.method,
            "path": self.path,
            "query": self.recorded_query(),
            "route": self.route,
            "api": self.api,
            "arguments": self.arguments,
            "argv": self.argv,
            "decision": self.decision,
            "rule_id": self.rule_id,
            "shadow": self.shadow,
            "policy_version": self.policy_version,
            "http_status": self.status,
            "envelope_status": self.envelope_status,
            "exit_code": self.exit_code,
            "cli_outcome": self.cli_outcome,
            "cli_duration_s": None if self.cli_duration_s is None else round(self.cli_duration_s, 6),
            "cli_runner": self.cli_runner,
            "upstream_status": self.upstream_status,
            "upstream_error": self.upstream_error,
            "upstream_duration_s": None
            if self.upstream_duration_s is None
            else round(self.upstream_duration_s, 6),
            "duration_s": None if self.duration_s is None else round(self.duration_s, 6),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "error": self.error,
            "rate_limit": self.rate_limit,
        }


# Event fields only the gateway produces (numbers, timestamps, enum-like words, rule ids
# from the policy files): they cannot carry a client's secret, so the audit scrub skips
# them.  Every other field (path, principal, request id, arguments, argv...) is scrubbed,
# including any field added later and not listed here.
GENERATED_FIELDS = frozenset(
    {
        "start_time", "auth_method", "auth_failure_reason", "route", "api", "decision", "rule_id",
        "shadow", "policy_version", "http_status", "envelope_status", "exit_code", "cli_outcome",
        "cli_duration_s", "cli_runner", "upstream_status", "upstream_error", "upstream_duration_s",
        "duration_s", "bytes_in", "bytes_out", "error", "rate_limit", "logger", "event", "level", "time",
    }
)  # fmt: skip


class AuditSink:
    """A structlog logger writing each audit line to stdout and, optionally, an audit file.

    stdout comes first and always: a failing file (a full disk) never costs the event.
    The file is opened ``O_APPEND`` and each line is one ``write(2)`` under an exclusive
    ``flock``: nothing is buffered in the process, so a killed worker loses no event it
    already emitted, and workers appending to the same file do not interleave.  A line
    the file could not take whole is cut back off (no torn line), counted through
    ``on_file_error`` (the ``audit_write_failures`` metric) and logged, at most once a
    minute.
    """

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        stdout: bool = True,
        file: Path | None = None,
        on_file_error: Callable[[], None] | None = None,
    ) -> None:
        self._stream = stream
        self._stdout = stdout
        self._fd: int | None = None
        self._on_file_error = on_file_error
        self._last_error_log = float("-inf")
        if file is not None:
            file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def msg(self, message: str) -> None:
        data = message + "\n"
        failure: OSError | None = None
        with WRITE_LOCK:
            if self._stdout:
                stream = self._stream or sys.stdout
                stream.write(data)
                stream.flush()
            if self._fd is not None:
                try:
                    _append_line(self._fd, data.encode("utf-8"))
                except OSError as exc:
                    failure = exc
        if failure is not None:
            self._file_failed(failure)

    info = msg

    def _file_failed(self, exc: OSError) -> None:
        if self._on_file_error is not None:
            self._on_file_error()
        now = time.monotonic()
        if now - self._last_error_log >= 60:
            self._last_error_log = now
            log.error("audit file write failed (the event went to stdout only): %s", exc)


def _append_line(fd: int, raw: bytes) -> None:
    """Append ``raw`` whole, or not at all: a partial write is truncated away."""
    fcntl.flock(fd, fcntl.LOCK_EX)  # other workers append to the same file
    try:
        written = 0
        try:
            while written < len(raw):
                written += os.write(fd, raw[written:])
        except OSError:
            if written:
                # O_APPEND: the offset is just past this process's bytes, and the lock
                # kept anyone else from appending after them.
                os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_CUR) - written)
            raise
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class AuditLog:
    """Renders :class:`AuditRecord` s as redacted JSON lines.

    :param redactor: masks secrets before rendering.
    :param sink: where lines go (default: stdout only).
    """

    def __init__(self, redactor: Redactor, sink: AuditSink | None = None) -> None:
        self.sink = sink or AuditSink()

        def scrub(logger: Any, method_name: str, event_dict: Any) -> Any:
            return redactor.scrub(event_dict, skip=GENERATED_FIELDS)

        # The shared chain less what an audit event never has (context variables, exc_info),
        # and with the fields the gateway produced itself left out of the scrub: this runs
        # once per request, on the proxy's hot path (docs/proxy.md).
        self._logger = structlog.wrap_logger(
            self.sink,
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
                scrub,
                structlog.processors.JSONRenderer(default=str),
            ],
        ).bind(logger="gateway.audit")

    def emit(self, record: AuditRecord) -> None:
        self._logger.info(EVENT, **record.event(), **{SECRETS_KEY: record.secrets})

    def event(self, name: str, fields: dict[str, Any]) -> None:
        """Another audit event (e.g. ``gateway.job``), rendered and scrubbed the same way."""
        self._logger.info(name, **fields)
