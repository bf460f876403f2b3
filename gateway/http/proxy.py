"""The reverse proxy: every path the gateway does not own goes to Airflow.

Built on :mod:`gateway.http.upstream` (the lean HTTP/1.1 client, also behind ``/readyz``)
with a small per-process pool of keep-alive connections, so the request line, the query
string and the bodies pass byte for byte (no re-encoding, no redirect following, no
content decoding).  Bodies stream both ways in pieces, framed by
:mod:`gateway.http.framing`; the upstream connection is closed (never pooled) when the
client goes away mid-response.  Behaviour and the Host policy are
documented in ``docs/proxy.md``.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

from werkzeug.http import HTTP_STATUS_CODES, is_hop_by_hop_header
from werkzeug.wrappers import Request, Response

from gateway.config.loader import ProxyConfig
from gateway.core.errors import (
    BadRequest,
    GatewayError,
    UpgradeNotSupported,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.http.framing import CHUNK, RequestBody
from gateway.http.upstream import Connection, Upstream, UpstreamClosed, probe
from gateway.http.upstream import Response as UpstreamResponse
from gateway.identity.assertion import AssertionHeader
from gateway.request.lifecycle import error_response
from gateway.request.scope import RequestScope

# Upstream failures as the audit/metrics kinds of gateway.observability.metrics.UPSTREAM_ERROR_KINDS.
_ERROR_KINDS: dict[type[GatewayError], str] = {UpstreamUnavailable: "connect", UpstreamTimeout: "timeout"}

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("gateway.proxy")

# Request headers the proxy sets itself: a client must not choose what Airflow believes
# about the caller's address, scheme or host.  Expect is answered by gunicorn already.
_REPLACED_REQUEST = frozenset(
    {
        "HOST",
        "X_FORWARDED_FOR",
        "X_FORWARDED_PROTO",
        "X_FORWARDED_HOST",
        "X_FORWARDED_PORT",
        "X_FORWARDED_PREFIX",
        "X_FORWARDED_SERVER",
        "FORWARDED",
        "X_REAL_IP",
        "EXPECT",
        "X_REQUEST_ID",
    }
)
# gunicorn always writes its own Server and Date; passing Airflow's would duplicate them
# (nginx hides both from upstreams by default too).
_OWN_RESPONSE = frozenset({"server", "date"})
# Idle pooled connections older than this are not reused (uvicorn's keep-alive is 5 s).
_MAX_IDLE_S = 4.0
# Used this recently, a pooled connection is taken without checking for a peer close when
# the request could be replayed (no keep-alive timeout we know of is shorter).
_FRESH_S = 1.0
# Errors that mean "the pooled connection had been closed by Airflow before we used it".
_STALE = (UpstreamClosed, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
_HTML_ERROR = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{code} {title}</title></head>
<body><h1>{code} {title}</h1><p>{text}</p><p><small>request id {request_id}</small></p></body></html>
"""


class UpstreamBodyError(IOError):
    """The response body from Airflow broke off after its headers were sent to the client."""


class _Pool:
    """Idle keep-alive connections to one upstream, newest first, at most ``size`` kept."""

    def __init__(
        self, upstream: Upstream, size: int, connect_timeout_s: float, read_timeout_s: float
    ) -> None:
        self._upstream = upstream
        self._size = size
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._idle: list[tuple[Connection, float]] = []
        self._lock = threading.Lock()

    def new(self) -> Connection:
        """A fresh connection.

        :raises UpstreamTimeout: when Airflow does not accept it within the connect timeout.
        :raises UpstreamUnavailable: when it is refused (Airflow down) or TLS fails.
        """
        try:
            return self._upstream.connect(
                connect_timeout_s=self._connect_timeout_s, read_timeout_s=self._read_timeout_s
            )
        except TimeoutError:
            raise UpstreamTimeout("Airflow did not accept the connection in time") from None
        except OSError as exc:
            log.warning("upstream connect failed: %s", type(exc).__name__)
            raise UpstreamUnavailable() from None

    def get(self, *, replayable: bool = False) -> tuple[Connection, bool]:
        """An idle connection that Airflow has not closed (and ``True``), or a new one.

        :param replayable: the request can be sent again on a fresh connection if this one
            turns out closed, so a connection used within :data:`_FRESH_S` skips the
            closed-by-peer check (a ``poll`` per request, and a GIL hand-off under load).
        """
        while True:
            with self._lock:
                conn, since = self._idle.pop() if self._idle else (None, 0.0)
            if conn is None:
                return self.new(), False
            idle = time.monotonic() - since
            # Servers close idle keep-alive connections (uvicorn after 5 s, gunicorn sync
            # workers at once); retiring ours first avoids racing their close.
            if idle < _MAX_IDLE_S and ((replayable and idle < _FRESH_S) or not _dropped(conn.sock)):
                return conn, True
            conn.close()

    def put(self, conn: Connection) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def clear(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()


def _dropped(sock: object) -> bool:
    """An idle connection that is readable has been closed by the peer (or is out of sync)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)  # type: ignore[arg-type]
    return bool(poller.poll(0))


def _header_name(key: str) -> str:
    """``HTTP_X_REQUESTED_WITH`` -> ``X-Requested-With``."""
    return "-".join(part.capitalize() for part in key[5:].split("_"))


def _tokens(value: str | None) -> set[str]:
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


def _request_target(environ: WSGIEnvironment, prefix: str) -> str:
    """The path and query exactly as the client sent them, behind the upstream prefix.

    gunicorn's ``RAW_URI`` keeps the client's percent-encoding (``%2F`` stays ``%2F``);
    other servers get werkzeug's quoting of the decoded path.  Bytes outside ASCII are
    percent-encoded because they cannot appear in an HTTP/1.1 request line.
    """
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    if raw.startswith("/") and not raw.startswith("//"):
        path = raw.split("?", 1)[0]
    else:
        path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="!$&'()*+,/:;=@%")
    query = environ.get("QUERY_STRING", "")
    target = prefix + path + (f"?{query}" if query else "")
    if not target.isascii():
        target = quote(target.encode("latin-1", "replace"), safe="".join(chr(c) for c in range(33, 127)))
    return target


class ReverseProxy:
    """A WSGI app that forwards each request to one upstream and streams the answer back.

    :param upstream: the upstream URL; its path (if any) is prefixed to every request path.
    :param connect_timeout_s: time to establish the TCP (and TLS) connection; beyond it, 504.
    :param read_timeout_s: longest wait for any read from Airflow (headers or a body chunk).
    :param host_header: ``"client"`` keeps the Host the client used (after trusted proxies),
        ``"upstream"`` sends the upstream's host[:port], anything else is sent as given.
    :param pool_size: idle keep-alive connections kept per process.
    :param strip_environ_keys: WSGI environ keys of gateway credentials never forwarded
        (e.g. ``HTTP_REST_API_PLUGIN_HTTP_TOKEN``); the auth layers add theirs here.
    :param assertion: the identity assertion header: a client's is never forwarded, and the
        request's principal (from the scope) gets one signed by the gateway.

    Usage: ``GatewayApp(config, ..., proxy=ReverseProxy("http://127.0.0.1:8080"))``.
    """

    def __init__(
        self,
        upstream: str,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        host_header: str = "client",
        pool_size: int = 16,
        strip_environ_keys: Iterable[str] = (),
        assertion: AssertionHeader | None = None,
    ) -> None:
        self.upstream = Upstream.parse(upstream)
        if connect_timeout_s <= 0 or read_timeout_s <= 0:
            raise ValueError("proxy timeouts must be positive")
        if pool_size < 1:
            raise ValueError("proxy pool_size must be at least 1")
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.host_header = host_header
        self.assertion = assertion
        stripped = (*strip_environ_keys, *((assertion.environ_key,) if assertion else ()))
        self.strip_environ_keys = frozenset(stripped)
        self._pool = _Pool(self.upstream, pool_size, connect_timeout_s, read_timeout_s)

    @classmethod
    def from_config(
        cls,
        config: ProxyConfig,
        *,
        strip_environ_keys: Iterable[str] = (),
        assertion: AssertionHeader | None = None,
    ) -> ReverseProxy:
        """Build the proxy from ``[proxy]``; ``config.upstream`` must be set."""
        if config.upstream is None:
            raise ValueError("proxy.upstream is not configured")
        return cls(
            config.upstream,
            connect_timeout_s=config.connect_timeout,
            read_timeout_s=config.read_timeout,
            host_header=config.host_header,
            pool_size=config.pool_size,
            strip_environ_keys=strip_environ_keys,
            assertion=assertion,
        )

    # --- request side ---

    def _host(self, environ: WSGIEnvironment) -> str:
        client = (
            environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
        )
        if self.host_header == "client":
            return str(client)
        if self.host_header == "upstream":
            return self.upstream.netloc
        return self.host_header

    def request_headers(self, environ: WSGIEnvironment) -> list[tuple[str, str]]:
        """What Airflow receives: the client's headers less hop-by-hop and credentials, plus X-Forwarded-*."""
        listed = {t.upper().replace("-", "_") for t in _tokens(environ.get("HTTP_CONNECTION"))}
        headers = [("Host", self._host(environ))]
        for key, value in environ.items():
            if not key.startswith("HTTP_"):
                continue
            suffix = key[5:]
            if suffix in _REPLACED_REQUEST or suffix in listed or key in self.strip_environ_keys:
                continue
            name = _header_name(key)
            if is_hop_by_hop_header(name):
                continue
            headers.append((name, value))
        for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
            if environ.get(key):
                headers.append((name, environ[key]))
        # The gateway is the one hop Airflow should trust: after ProxyFix (the only layer
        # allowed to change REMOTE_ADDR) these are the values the gateway itself believes.
        headers.append(("X-Forwarded-For", environ.get("REMOTE_ADDR") or "unknown"))
        headers.append(("X-Forwarded-Proto", environ.get("wsgi.url_scheme", "http")))
        # The gateway's request id (the client's when well-formed) ties Airflow's logs to the audit log.
        scope = RequestScope.find(environ)
        request_id = scope.request_id if scope is not None else environ.get("HTTP_X_REQUEST_ID")
        if request_id:
            headers.append(("X-Request-ID", request_id))
        if environ.get("HTTP_HOST"):
            headers.append(("X-Forwarded-Host", environ["HTTP_HOST"]))
        if self.assertion is not None and scope is not None:
            value = self.assertion.value_for(scope.principal)
            if value is not None:
                headers.append((self.assertion.name, value))
        return headers

    # --- the exchange ---

    def _exchange(self, environ: WSGIEnvironment) -> tuple[Connection, UpstreamResponse]:
        method = environ.get("REQUEST_METHOD", "GET")
        target = _request_target(environ, self.upstream.prefix)
        headers = self.request_headers(environ)
        body = RequestBody.from_environ(environ)
        replayable = body.replayable
        for attempt in (1, 2):
            conn, reused = self._pool.get(replayable=replayable)
            try:
                conn.send_request(method, target, headers, body)
                return conn, conn.read_response(method)
            except TimeoutError:
                conn.close()
                raise UpstreamTimeout() from None
            except _STALE:
                conn.close()
                # A keep-alive connection Airflow closed just as we reused it: safe to
                # retry once when nothing of the client's body has been consumed.
                if reused and replayable and attempt == 1:
                    continue
                raise UpstreamUnavailable() from None
            except ValueError:
                conn.close()
                raise BadRequest("Request header not forwardable") from None
            except OSError as exc:
                conn.close()
                log.warning("upstream exchange failed: %s", type(exc).__name__)
                raise UpstreamUnavailable() from None
        raise AssertionError("unreachable")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if "websocket" in _tokens(environ.get("HTTP_UPGRADE")):
            return self._error(environ, start_response, UpgradeNotSupported())
        scope = RequestScope.find(environ)
        record = scope.audit if scope is not None else None
        started = time.monotonic()
        try:
            conn, resp = self._exchange(environ)
        except GatewayError as exc:
            if scope is not None:
                scope.upstream_error = type(exc).__name__
            if record is not None and type(exc) in _ERROR_KINDS:
                record.upstream_error = _ERROR_KINDS[type(exc)]
                record.upstream_duration_s = time.monotonic() - started
            return self._error(environ, start_response, exc)
        if record is not None:
            record.upstream_status = resp.status
            # time to the response head; the streamed body is in the request's own duration
            record.upstream_duration_s = time.monotonic() - started
        listed = _tokens(resp.getheader("Connection"))
        headers = [
            (name, value)
            for name, value in resp.headers
            if not is_hop_by_hop_header(name)
            and name.lower() not in listed
            and name.lower() not in _OWN_RESPONSE
        ]
        reason = resp.reason or HTTP_STATUS_CODES.get(resp.status, "Unknown")
        start_response(f"{resp.status} {reason}", headers)
        return _Body(self._pool, conn, resp)

    def _error(
        self, environ: WSGIEnvironment, start_response: StartResponse, exc: GatewayError
    ) -> Iterable[bytes]:
        """The envelope for API clients, a short HTML page for browsers."""
        request = Request(environ)
        if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
            code = exc.code or 500
            page = _HTML_ERROR.format(
                code=code,
                title=HTTP_STATUS_CODES.get(code, "Error"),
                text=exc.description,
                request_id=scope.request_id if (scope := RequestScope.find(environ)) else "-",
            )
            response = Response(page, status=code, mimetype="text/html")
            return response(environ, start_response)
        return error_response(exc, environ)(environ, start_response)

    # --- readiness ---

    def probe(self, path: str, timeout_s: float = 2.0) -> tuple[bool, str]:
        """One GET to ``path`` through the upstream client: reachable if Airflow answers below 500.

        A fresh connection, not a pooled one: it proves Airflow still accepts connections
        (what the proxy needs once its idle ones are retired), it runs under its own short
        timeouts, and it can neither take a connection from a proxied request nor leave one
        half-read in the pool.  One per second per worker at most (``Health`` caches it).
        """
        return probe(
            self.upstream,
            path,
            connect_timeout_s=min(timeout_s, self.connect_timeout_s),
            read_timeout_s=timeout_s,
        )


class _Body:
    """The streamed response body; ``close()`` pools the connection only after a clean end.

    gunicorn calls ``close()`` also when the client disconnects mid-body: the connection
    is then closed, so Airflow stops sending and nothing half-read is ever reused.
    """

    def __init__(self, pool: _Pool, conn: Connection, resp: UpstreamResponse) -> None:
        self._pool = pool
        self._conn: Connection | None = conn
        self._resp = resp

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._resp.stream(CHUNK)
        except OSError as exc:
            # Headers are gone already: the only honest signal left is to break the
            # client connection instead of ending the body as if it were complete.
            log.warning("upstream body broke off: %s", type(exc).__name__)
            raise UpstreamBodyError(f"upstream body broke off ({type(exc).__name__})") from None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._resp.complete and not self._resp.will_close:
            self._pool.put(conn)
        else:
            conn.close()
