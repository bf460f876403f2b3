"""The request lifecycle: the outermost gateway layer, from request id to audit event.

:class:`RequestLifecycle` creates each request's :class:`~gateway.request.scope.RequestScope`
and its :class:`~gateway.observability.audit.AuditRecord` for the inner layers to fill in
(principal, route, api, argv, decision, CLI exit code, upstream status...), counts the
bytes read and sent, renders a :class:`~gateway.core.errors.GatewayError` that leaves the
inner layers (:func:`error_response`, the one place that also records it on the audit
record), and emits the audit event when the server closes the response iterable: after a
streamed (proxied) body is fully sent, or the client went away.  By then contextvars may
be unwound, so the record travels in the scope.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from werkzeug.wrappers import Response

from gateway.core.errors import GatewayError
from gateway.core.redact import SECRETS_KEY, Redactor
from gateway.observability.audit import AuditLog, AuditRecord
from gateway.request.scope import RequestScope

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{8,128}")
log = logging.getLogger("gateway.audit")


class _RequestIds:
    """Fresh request ids, 32 hex digits: 64 random bits drawn once per process (again in a
    forked child, so gunicorn workers never share them) and a 64-bit counter.

    Unique without a ``getrandom`` call per request, which would release the GIL on every
    request.  Request ids are correlation ids, not secrets.
    """

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"


_new_request_id = _RequestIds()


def request_id_of(environ: WSGIEnvironment) -> str:
    """A well-formed incoming ``X-Request-ID``, or a fresh one."""
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    return incoming if _REQUEST_ID.fullmatch(incoming) else _new_request_id()


def begin(environ: WSGIEnvironment, redactor: Redactor | None = None) -> RequestScope:
    """Start the request's scope and audit record (idempotent), and its logging context.

    The accepted id replaces the incoming header, so the proxy forwards exactly the id the
    client gets back and the audit shows.
    """
    existing = RequestScope.find(environ)
    if existing is not None:
        return existing
    call_time = time.time()
    request_id = request_id_of(environ)
    environ["HTTP_X_REQUEST_ID"] = request_id
    record = AuditRecord(
        request_id=request_id,
        method=environ.get("REQUEST_METHOD", "GET"),
        path=environ.get("PATH_INFO", "/"),
        remote_addr=environ.get("REMOTE_ADDR"),
        query_string=environ.get("QUERY_STRING", ""),
        redactor=redactor,
    )
    scope = RequestScope(request_id, call_time, record)
    scope.attach(environ)
    structlog.contextvars.clear_contextvars()
    # The secrets set is shared with the record: values added later are masked in any
    # log line of this request (tracebacks included) by the redacting processor.
    structlog.contextvars.bind_contextvars(request_id=request_id, **{SECRETS_KEY: record.secrets})
    return scope


def error_response(exc: GatewayError, environ: WSGIEnvironment) -> Response:
    """``exc`` as the request's envelope, recorded on its audit record (why authentication
    failed, the envelope status).  Outside a request scope: a fresh request id."""
    scope = RequestScope.find(environ)
    if scope is None:
        return exc.to_response(exc.envelope(time.time(), uuid.uuid4().hex))
    record = scope.audit
    if exc.auth_failure and not record.auth_failure_reason:
        record.auth_failure_reason = exc.auth_failure
    envelope = exc.envelope(scope.call_time, scope.request_id)
    record.envelope_status = envelope.status
    return exc.to_response(envelope)


class RequestObserver(Protocol):
    """Something told when a request starts and when its response is finished (metrics)."""

    def request_started(self, record: AuditRecord) -> None: ...

    def request_finished(self, record: AuditRecord) -> None: ...


class _CountingInput:
    """``wsgi.input`` that counts the bytes the application actually reads."""

    def __init__(self, stream: Any, record: AuditRecord) -> None:
        self._stream = stream
        self._record = record

    def _count(self, data: bytes) -> bytes:
        self._record.bytes_in += len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._count(self._stream.read() if size is None or size < 0 else self._stream.read(size))

    def readline(self, size: int | None = -1) -> bytes:
        return self._count(
            self._stream.readline() if size is None or size < 0 else self._stream.readline(size)
        )

    def readlines(self, hint: int = -1) -> list[bytes]:
        return [self._count(line) for line in self._stream.readlines(hint)]

    def __iter__(self) -> Iterator[bytes]:
        return (self._count(line) for line in self._stream)


class _Observed:
    """The response iterable: counts bytes out, and finishes the record on ``close()``."""

    def __init__(
        self, body: Iterable[bytes], record: AuditRecord, finish: Callable[[AuditRecord], None]
    ) -> None:
        self._body = body
        self._record = record
        self._finish = finish

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._body:
                self._record.bytes_out += len(chunk)
                yield chunk
        except Exception as exc:
            self._record.error = type(exc).__name__
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish(self._record)


class RequestLifecycle:
    """Outermost gateway layer: request scope and id, byte counts, errors rendered, the
    audit event on close.

    :param app: the inner layers (routing, authentication, dispatch).
    :param audit: renders and writes the events.
    :param redactor: the rules each request's record is masked by.
    :param observers: told at start and finish (e.g. :class:`gateway.observability.metrics.Metrics`).
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        audit: AuditLog,
        redactor: Redactor,
        observers: Sequence[RequestObserver] = (),
    ) -> None:
        self.app = app
        self.audit = audit
        self.redactor = redactor
        self.observers = tuple(observers)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        record = begin(environ, self.redactor).audit
        if "wsgi.input" in environ:
            environ["wsgi.input"] = _CountingInput(environ["wsgi.input"], record)
        for observer in self.observers:
            observer.request_started(record)

        def observed_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            record.status = int(status.split(" ", 1)[0])
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((REQUEST_ID_HEADER, record.request_id))
            write = start_response(status, headers, exc_info)

            def counting_write(data: bytes) -> None:
                record.bytes_out += len(data)
                write(data)

            return counting_write

        try:
            try:
                body = self.app(environ, observed_start_response)
            except GatewayError as exc:
                body = error_response(exc, environ)(environ, observed_start_response)
        except BaseException as exc:
            record.status = record.status or 500
            record.error = type(exc).__name__
            self.finish(record)
            raise
        return _Observed(body, record, self.finish)

    def finish(self, record: AuditRecord) -> None:
        """Emit once; an observer or sink failure is logged, never raised into the server."""
        if record.duration_s is not None:
            return
        record.duration_s = time.monotonic() - record._t0
        for observer in self.observers:
            try:
                observer.request_finished(record)
            except Exception:
                log.exception("request observer failed")
        try:
            self.audit.emit(record)
        except Exception:
            log.exception("audit event could not be written", extra={"request_id": record.request_id})
