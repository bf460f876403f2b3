"""Gateway errors as HTTP exceptions that render the plugin's JSON envelope.

One exception tree: every error a client can see is a :class:`GatewayError`, carrying its
status, safe message, envelope fields and headers; :meth:`GatewayError.apply` is the one
place that turns it into an envelope (werkzeug's ``HTTPException.get_body``/``get_headers``
are the model).  Features raise them; nothing catches one just to fill an envelope by hand.
The request layer renders the ones that leave a request and records them on its audit
record (:mod:`gateway.request.lifecycle`); any other exception from an endpoint becomes a
500 envelope there and is logged without locals.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException

from gateway.core.envelope import Envelope

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.sansio.response import Response as SansIOResponse
    from werkzeug.wrappers import Response


class GatewayError(HTTPException):
    """Base class: ``code`` and a fixed, safe ``description``; renders as an envelope."""

    code = 500
    description = "Internal error"

    def __init__(
        self,
        description: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        auth_failure: str | None = None,
    ) -> None:
        """:param auth_failure: why authentication failed (a reason from
        :data:`gateway.observability.metrics.AUTH_FAILURE_REASONS`), for the audit event and metrics."""
        super().__init__(description)
        self.extra_headers: dict[str, str] = headers or {}
        self.auth_failure = auth_failure

    @property
    def output(self) -> Any:
        """The envelope's ``output``: the safe description, unless a subclass has more."""
        return self.description

    def apply(self, envelope: Envelope) -> Envelope:
        """Make ``envelope`` this error's answer (status, output and any extra fields)."""
        return envelope.fail(self.code or 500, self.output)

    def envelope(self, call_time: float, request_id: str) -> Envelope:
        """The error as a new envelope (endpoints with an envelope of their own use :meth:`apply`)."""
        return self.apply(Envelope(call_time=call_time, request_id=request_id))

    def to_response(self, envelope: Envelope) -> Response:
        """The answer carrying ``envelope`` (this error's) and this error's headers.

        No side effects: the request layer (:func:`gateway.request.lifecycle.error_response`)
        renders errors for a request and records them on its audit record.
        """
        return envelope.response(time.time(), self.extra_headers)

    def get_response(  # type: ignore[override]
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> SansIOResponse:
        """werkzeug's entry point: the envelope outside any request (a fresh request id)."""
        return self.to_response(self.envelope(time.time(), uuid.uuid4().hex))


class BadRequest(GatewayError):
    code = 400
    description = "Bad request"


class Refused(GatewayError):
    """A call refused with a status and a message safe to show (input the gateway checks,
    an upload it will not write, a daemon it cannot stop...).

    :param output: the envelope's ``output`` when it is more than the message (the streams
        of a failed helper command); :param extra: envelope fields to add (e.g. ``error``).
    """

    code = 400

    def __init__(
        self,
        message: str,
        status: int = 400,
        *,
        output: Any = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, headers=headers)
        self.code = status
        self.message = message
        self._output = output
        self.extra = extra or {}

    @property
    def status(self) -> int:
        return self.code

    @property
    def output(self) -> Any:
        return self.message if self._output is None else self._output

    def apply(self, envelope: Envelope) -> Envelope:
        super().apply(envelope)
        envelope.extra.update(self.extra)
        return envelope


class TokenAuthenticationFailed(GatewayError):
    """The original plugin's answer to a missing or wrong token."""

    code = 403
    description = "Token Authentication Failed"


class TokenRequired(GatewayError):
    """A bearer token is required (``/metrics`` with a metrics token configured)."""

    code = 401
    description = "A valid bearer token is required"

    def __init__(self, description: str | None = None, *, auth_failure: str | None = None) -> None:
        super().__init__(description, headers={"WWW-Authenticate": "Bearer"}, auth_failure=auth_failure)


class Unauthorized(GatewayError):
    """Missing or invalid gateway credentials (named token or JWT); never echoes the token."""

    code = 401
    description = "Authentication required"

    def __init__(
        self, description: str | None = None, *, error: str | None = None, auth_failure: str | None = None
    ) -> None:
        # RFC 6750: a bare challenge when no credentials came, error="invalid_token" otherwise.
        challenge = 'Bearer realm="airflow-gateway"' + (f', error="{error}"' if error else "")
        reason = auth_failure or ("invalid_token" if error else "missing_token")
        super().__init__(description, headers={"WWW-Authenticate": challenge}, auth_failure=reason)


class KeyServiceUnavailable(GatewayError):
    """The JWKS endpoint cannot be reached and no key set was ever fetched."""

    code = 503
    description = "The token signing keys are unavailable; retry later"

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description, auth_failure="key_service_unavailable")


class PolicyDenied(GatewayError):
    """A policy refuses the call; the envelope names the deciding rule."""

    code = 403
    description = "Forbidden by policy"

    def __init__(self, rule_id: str, principal: str) -> None:
        super().__init__(f"Forbidden by policy rule '{rule_id}' for principal '{principal}'")
        self.rule_id = rule_id

    def apply(self, envelope: Envelope) -> Envelope:
        super().apply(envelope)
        envelope.extra["policy"] = {"decision": "deny", "rule": self.rule_id, "shadow": False}
        return envelope


class Forbidden(GatewayError):
    code = 403
    description = "Forbidden"


class NotFound(GatewayError):
    code = 404
    description = "Not found"


class MethodNotAllowed(GatewayError):
    code = 405
    description = "Method not allowed"


class Redirect(GatewayError):
    """308 to one of the gateway's paths spelled canonically (doubled slashes merged).

    Answered as an envelope, like every other answer of the gateway's own paths, not as
    werkzeug's HTML page; the target is only in ``Location`` (it repeats the query).
    """

    code = 308
    description = "This path is spelled with single slashes: repeat the request at the Location"

    def __init__(self, location: str) -> None:
        super().__init__(headers={"Location": location})


class PayloadTooLarge(GatewayError):
    code = 413
    description = "Request body too large"


class Busy(GatewayError):
    """CLI capacity is full; the client may retry after a second."""

    code = 503
    description = "Too many CLI calls in progress; retry later"

    def __init__(self, description: str | None = None, *, retry_after_s: int = 1) -> None:
        super().__init__(description, headers={"Retry-After": str(retry_after_s)})


class TooManyRequests(GatewayError):
    """429: this principal is over one of its own limits; ``Retry-After`` says when to retry."""

    code = 429
    description = "Too many requests"

    def __init__(self, description: str | None = None, *, retry_after_s: int = 1) -> None:
        super().__init__(description, headers={"Retry-After": str(retry_after_s)})


class JobStoreUnavailable(GatewayError):
    """503: the job store cannot be reached (a restart, a lock held too long, a full disk)."""

    code = 503
    description = "The job store is unavailable; retry later"

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description, headers={"Retry-After": "5"})


class InternalError(GatewayError):
    code = 500
    description = "Internal error (see the gateway log for this request id)"


class UpgradeNotSupported(GatewayError):
    """WebSocket upgrades are refused explicitly instead of being silently downgraded."""

    code = 501
    description = "WebSocket upgrades are not proxied by the gateway"


class UpstreamUnavailable(GatewayError):
    """Airflow refused the connection, reset it or answered with garbage."""

    code = 502
    description = "Airflow is unavailable (the gateway could not get an answer from it)"


class UpstreamTimeout(GatewayError):
    """Airflow did not accept the connection or answer within the configured timeout."""

    code = 504
    description = "Airflow did not answer in time"
