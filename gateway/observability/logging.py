"""structlog set-up: one JSON line per event, secrets masked before rendering.

The same processor chain renders the gateway's own events, stdlib records (the
``gateway`` loggers) and gunicorn's logs (through :func:`gunicorn_logconfig`), so every
line on stdout is one JSON object with ``time`` (UTC ISO 8601), ``level`` and ``event``.
Tracebacks are rendered as plain text with :func:`structlog.processors.format_exc_info`:
structlog's dict tracebacks include local variables by default, and a token in a local
would end up in the log.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, TextIO

import structlog
from gunicorn import glogging

from gateway.core.redact import Redactor

if TYPE_CHECKING:
    from structlog.typing import Processor

    from gateway.config.loader import GatewayConfig


def redactor_for(config: GatewayConfig) -> Redactor:
    """The redactor for this deployment: extra sensitive names and the configured tokens."""
    plugin_token = config.rest_api_plugin.rest_api_plugin_expected_http_token
    tokens = [s.value for s in (plugin_token, config.metrics.token) if s is not None]
    return Redactor(config.audit.sensitive_names, secrets=tokens)


def _logger_name(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    record = event_dict.get("_record")
    if record is not None:
        event_dict.setdefault("logger", record.name)
    return event_dict


def shared_processors(redactor: Redactor) -> list[Processor]:
    """Everything before rendering; the redactor runs last, after tracebacks became text."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        structlog.processors.format_exc_info,
        redactor,
    ]


# One lock for every line this process writes itself (log lines and audit events), so
# threads never interleave within a line.  gunicorn's stdlib handlers flush per record too.
WRITE_LOCK = threading.Lock()


class LineWriter:
    """A structlog logger that writes each rendered line whole, then flushes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        stream = self._stream or sys.stdout
        with WRITE_LOCK:
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def configure_logging(config: GatewayConfig, *, stream: TextIO | None = None, cache: bool = True) -> Redactor:
    """Configure structlog (and stdlib logging, when nothing else has) once per process.

    :param stream: where lines go (default: structlog events to stdout; stdlib records to
        stderr when nothing configured stdlib logging, i.e. outside gunicorn).
    :param cache: cache loggers on first use; tests turn it off to reconfigure.
    :returns: the redactor, for the audit log and the API's echoed arguments.
    """
    redactor = redactor_for(config)
    structlog.configure(
        processors=[*shared_processors(redactor), structlog.processors.JSONRenderer(default=str)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=lambda *args: LineWriter(stream),
        cache_logger_on_first_use=cache,
    )
    root = logging.getLogger()
    if not root.handlers:  # gunicorn's logconfig_dict (or a test harness) got there first otherwise
        # Outside gunicorn (check-config...), stdout is the command's own output.
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(json_formatter(redactor))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    return redactor


def json_formatter(redactor: Redactor) -> structlog.stdlib.ProcessorFormatter:
    """A stdlib formatter rendering records exactly like structlog events."""
    return structlog.stdlib.ProcessorFormatter(**_formatter_options(redactor))


def _formatter_options(redactor: Redactor) -> dict[str, Any]:
    return {
        "foreign_pre_chain": [_logger_name, structlog.stdlib.ExtraAdder(), *shared_processors(redactor)],
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(default=str),
        ],
    }


class GunicornLogger(glogging.Logger):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's logger, writing the access log only when one is configured.

    gunicorn builds an access record for every request as soon as ``logconfig_dict`` is
    set, which the JSON set-up needs; the gateway's audit event already is the access
    log, so without ``server.access_log`` the record is skipped: it would be a second line,
    and CPU spent, on every request (docs/proxy.md, "Where the gateway's time goes").
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


def gunicorn_logconfig(config: GatewayConfig) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its error and access logs as the same JSON on stdout."""
    redactor = redactor_for(config)
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": structlog.stdlib.ProcessorFormatter, **_formatter_options(redactor)}},
        "handlers": {"stdout": handler},
        "root": {"level": "INFO", "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {
                "level": "INFO",
                "handlers": ["stdout"],
                "propagate": False,
                "qualname": "gunicorn.error",
            },
            "gunicorn.access": {
                "level": "INFO",
                "handlers": ["stdout"],
                "propagate": False,
                "qualname": "gunicorn.access",
            },
        },
    }
