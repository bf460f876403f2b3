"""``/admin/rest_api/jobs...``: list, read, watch and cancel jobs.

Authenticated like the API (the route needs credentials).  A job is visible only to the
principal that submitted it and to principals a policy allows ``job_read_any``
(cancelling: ``job_cancel_any``); to anyone else it does not exist (404), so ids reveal
nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import ClosingIterator

from gateway.core.errors import BadRequest, JobStoreUnavailable, NotFound
from gateway.identity.client import client_address
from gateway.identity.principal import Principal
from gateway.jobs import sse
from gateway.jobs.service import JobService, job_view
from gateway.jobs.store import MAX_OFFSET, STATES, JobRow, StoreError
from gateway.jobs.streams import StreamLimits
from gateway.policy.engine import PolicyEngine
from gateway.policy.jobs import may
from gateway.request.scope import RequestScope

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

log = logging.getLogger("gateway.jobs")

MAX_LIST = 500
#: Stored chunks in one format=json answer (at most ``sse.READ_CHARS`` characters in all).
JSON_CHUNKS = 1000


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    headers = {"Cache-Control": "no-store", **(headers or {})}
    return Response(
        json.dumps(body, default=str), status=status, mimetype="application/json", headers=headers
    )


class JobEndpoints:
    """The job routes, for the principal the authentication layer put on the request scope."""

    def __init__(self, service: JobService, *, policy: PolicyEngine | None) -> None:
        self.service = service
        self.store = service.store
        self.policy = policy
        config = service.config
        self.streams = StreamLimits(config.max_streams, config.max_streams_per_principal)

    def __call__(self, environ: WSGIEnvironment, scope: RequestScope) -> Response:
        try:
            return self._serve(environ, scope.caller(), scope.route_values)
        except StoreError:
            log.warning("job store unavailable", exc_info=True)
            raise JobStoreUnavailable() from None

    def _serve(self, environ: WSGIEnvironment, principal: Principal, values: Mapping[str, Any]) -> Response:
        job_id = values.get("job_id")
        request = Request(environ)
        if job_id is None:
            return self.list(request, principal)
        action = "job_cancel_any" if request.method == "DELETE" else "job_read_any"
        row = self._visible(request, principal, str(job_id), action)
        if request.method == "DELETE":
            return self.cancel(row)
        if values.get("part") == "output":
            return self.output(request, row, principal)
        return _json(job_view(row))

    def _allowed(self, request: Request, principal: Principal, action: str, row: JobRow | None) -> bool:
        owner = (row.principal, row.auth_method) if row is not None else None
        address = client_address(request.environ)
        dag_id = row.dag_id if row is not None else None
        return may(self.policy, principal, action, owner=owner, dag_id=dag_id, address=address)

    def _visible(self, request: Request, principal: Principal, job_id: str, action: str) -> JobRow:
        row = self.store.get(job_id)
        if row is None or not self._allowed(request, principal, "job_read_any", row):
            raise NotFound(f"No job {job_id!r} (or it is not yours)")
        if action != "job_read_any" and not self._allowed(request, principal, action, row):
            raise NotFound(f"No job {job_id!r} you may cancel")
        return row

    def list(self, request: Request, principal: Principal) -> Response:
        state, api = request.args.get("state") or None, request.args.get("api") or None
        if state is not None and state not in STATES:
            raise BadRequest(f"state must be one of {', '.join(STATES)}")
        try:
            limit = min(int(request.args.get("limit", "100")), MAX_LIST)
        except ValueError:
            raise BadRequest("limit must be an integer") from None
        everyone = self._allowed(request, principal, "job_read_any", None)
        owner = None if everyone else (principal.name, principal.method)
        rows = self.store.list_jobs(owner=owner, state=state, api=api, limit=max(limit, 1))
        jobs = [job_view(r, envelope=False) for r in rows]
        return _json({"jobs": jobs, "all_principals": everyone})

    def cancel(self, row: JobRow) -> Response:
        accepted, message = self.service.cancel(row)
        body = job_view(self.store.get(row.id) or row)
        body["message"] = message
        return _json(body, 202 if accepted else 409)

    def output(self, request: Request, row: JobRow, principal: Principal) -> Response:
        offset = _offset(request)
        wants_json = request.args.get("format") == "json" or (
            "text/event-stream" not in request.headers.get("Accept", "")
            and "application/json" in request.headers.get("Accept", "")
        )
        if wants_json:
            chunks = self.store.read_output(row.id, offset, limit=JSON_CHUNKS, max_chars=sse.READ_CHARS)
            end = chunks[-1].end if chunks else offset
            fresh = self.store.get(row.id) or row
            body = {
                "job_id": row.id,
                "state": fresh.state,
                "chunks": [{"offset": c.offset, "stream": c.stream, "text": c.text} for c in chunks],
                "next_offset": end,
                "done": not fresh.active and end >= fresh.output_bytes,
            }
            return _json(body)
        release = self.streams.acquire((principal.name, principal.method))
        if self.service.limits is not None:  # the principal's streams on every instance
            try:
                shared = self.service.limits.slot(
                    "streams", principal, RequestScope.of(request.environ).audit
                )
            except BaseException:
                release()
                raise
            release = _both(release, shared)
        guard = sse.SocketWriteGuard(request.environ.get("gunicorn.socket"))
        events = sse.stream(
            self.store, row.id, offset, max_s=self.service.config.stream_max_seconds,
            stopping=lambda: self.service.stopping, guard=guard,
        )  # fmt: skip
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        # The slot is given back when the server closes the response, however it ends.  Not
        # in the generator (a response closed before its first item never runs its clean-up)
        # and not with call_on_close (a direct_passthrough body reaches the server unwrapped,
        # so the response's own close never runs).
        closing = ClosingIterator(events, [guard.release, release])
        return Response(closing, mimetype="text/event-stream", headers=headers, direct_passthrough=True)


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def release() -> None:
        try:
            first()
        finally:
            second()

    return release


def _offset(request: Request) -> int:
    """``Last-Event-ID`` or ``offset``: decimal digits only, at most :data:`MAX_OFFSET`."""
    raw = (request.headers.get("Last-Event-ID") or request.args.get("offset") or "0").strip()
    # Digits only (int() also takes "+1", "1_000" and non-ASCII digits), and few enough of
    # them that the conversion costs nothing whatever the client sends.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_OFFSET)) or int(raw) > MAX_OFFSET:
        raise BadRequest(f"offset (or Last-Event-ID) must be an integer from 0 to {MAX_OFFSET}")
    return int(raw)
