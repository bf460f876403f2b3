"""The one HTTP/1.1 client for Airflow: the reverse proxy's connections and the readiness probe.

Why not :mod:`http.client` or urllib3: both re-parse every response head with the
:mod:`email` package and rebuild per-response socket readers (a large share of the
proxy's CPU per small request, docs/proxy.md), and urllib3 normalises percent-escapes in
the target.  h11, measured behind the same interface, costs more CPU per request
(docs/proxy.md, run M).  This module sends the request head in one write, keeps one
buffered reader per connection, and parses only what a proxy needs: the status line and
the header lines (kept as sent, duplicates and order included).  Bodies are delimited by
:mod:`gateway.http.framing`, both ways.  The keep-alive pool is the proxy's
(:mod:`gateway.http.proxy`); :func:`probe` takes a fresh connection of its own.
"""

from __future__ import annotations

import io
import re
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from gateway.http.framing import RequestBody, UpstreamProtocolError, read_body, response_framing

__all__ = ["Connection", "Response", "Upstream", "UpstreamClosed", "UpstreamProtocolError", "probe"]

_MAX_LINE = 65536
_MAX_HEADERS = 200


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where Airflow is: scheme, host, port and the path prefix prepended to every path."""

    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Upstream:
        """``http://airflow:8080/base`` -> ``Upstream("http", "airflow", 8080, "/base")``.

        :raises ValueError: on a URL that is not a plain http(s) origin plus path.
        """
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"upstream {url!r}: expected http:// or https:// and a host")
        if parts.query or parts.fragment or parts.username is not None:
            raise ValueError(f"upstream {url!r}: no query, fragment or credentials allowed")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def netloc(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def connect(self, *, connect_timeout_s: float, read_timeout_s: float) -> Connection:
        """A new connection to this upstream.

        :raises OSError: when it cannot be made (``TimeoutError`` after ``connect_timeout_s``).
        """
        return Connection(
            self.host,
            self.port,
            tls=self.scheme == "https",
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
        )


class UpstreamClosed(UpstreamProtocolError):
    """The connection closed before any byte of a response (typical of a stale keep-alive)."""


# RFC 9110 token characters; a header name with anything else is refused both ways.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _token_ok(name: str) -> bool:
    return _TOKEN.fullmatch(name) is not None


class Connection:
    """One keep-alive connection; not thread-safe (the pool hands it to one request at a time)."""

    def __init__(
        self, host: str, port: int, *, tls: bool, connect_timeout_s: float, read_timeout_s: float
    ) -> None:
        sock = socket.create_connection((host, port), timeout=connect_timeout_s)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            sock.settimeout(read_timeout_s)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.rfile = cast(io.BufferedReader, sock.makefile("rb", buffering=_MAX_LINE))

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()

    def send_head(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        """Write the request line and headers (and a small body) in one write.

        :raises ValueError: on a header that would split the request (CR/LF or a bad name).
        """
        lines = [f"{method} {target} HTTP/1.1"]
        for name, value in headers:
            if not _token_ok(name) or "\r" in value or "\n" in value:
                raise ValueError(f"refusing to send header {name!r}")
            lines.append(f"{name}: {value}")
        lines.append("\r\n")
        self.sock.sendall("\r\n".join(lines).encode("latin-1") + body)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: RequestBody
    ) -> None:
        """Write the request head and the client's body, framed as it came.

        :raises ValueError: on a header that would split the request.
        :raises ConnectionAbortedError: when the client's body ends before its Content-Length.
        """
        body.send(self, method, target, headers)

    def read_response(self, method: str) -> Response:
        """Read the status line and headers of the next final (non-1xx) response."""
        readline = self.rfile.readline
        first = True
        while True:
            line = readline(_MAX_LINE)
            if not line:
                raise (
                    UpstreamClosed("connection closed before a response")
                    if first
                    else UpstreamProtocolError("connection closed in a response head")
                )
            first = False
            version, _, rest = line.rstrip(b"\r\n").partition(b" ")
            code, _, reason = rest.partition(b" ")
            if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
                raise UpstreamProtocolError("malformed status line")
            status = int(code)
            headers: list[tuple[str, str]] = []
            while True:
                line = readline(_MAX_LINE)
                if line in (b"\r\n", b"\n"):
                    break
                if not line or not line.endswith(b"\n") or len(headers) >= _MAX_HEADERS:
                    raise UpstreamProtocolError("malformed or oversized response head")
                if line[:1] in (b" ", b"\t"):  # obsolete line folding: join to the previous value
                    if not headers:
                        raise UpstreamProtocolError("malformed response head")
                    name, value = headers[-1]
                    headers[-1] = (name, f"{value} {line.strip().decode('latin-1')}")
                    continue
                raw_name, sep, raw_value = line.partition(b":")
                name = raw_name.decode("latin-1")
                if not sep or not _token_ok(name):
                    raise UpstreamProtocolError("malformed header line")
                headers.append((name, raw_value.strip(b" \t\r\n").decode("latin-1")))
            if 100 <= status < 200 and status != 101:
                continue  # interim answers (100 Continue, 103 Early Hints) are not forwarded
            return Response(self, method, version, status, reason.decode("latin-1").strip(), headers)


class Response:
    """A response head plus a streaming body reader (:meth:`stream`)."""

    def __init__(
        self,
        conn: Connection,
        method: str,
        version: bytes,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
    ) -> None:
        self._rfile = conn.rfile
        self.status = status
        self.reason = reason
        self.headers = headers
        self._framing = response_framing(method, status, headers)
        tokens = {t.strip().lower() for n, v in headers if n.lower() == "connection" for t in v.split(",")}
        self.will_close = (
            self._framing.kind == "close"
            or status == 101
            or "close" in tokens
            or (version == b"HTTP/1.0" and "keep-alive" not in tokens)
        )
        self.complete = False

    def getheader(self, name: str) -> str | None:
        lname = name.lower()
        values = [v for n, v in self.headers if n.lower() == lname]
        return ", ".join(values) if values else None

    def stream(self, size: int) -> Iterator[bytes]:
        """The body in pieces of at most ``size`` bytes, as they arrive; ``complete`` is set at its end.

        :raises UpstreamProtocolError: if the body ends before its framing says it should.
        """
        yield from read_body(self._rfile, self._framing, size)
        self.complete = True


# Of a readiness answer, at most this much body is read before the connection is closed.
_PROBE_BODY = 64 * 1024


def probe(
    upstream: Upstream, path: str, *, connect_timeout_s: float, read_timeout_s: float
) -> tuple[bool, str]:
    """One GET of ``path`` (behind the upstream's prefix) on a fresh connection, closed after.

    :returns: whether Airflow answered below 500, and a detail: ``HTTP <status> in <n> ms``,
        or the name of the error (``ConnectionRefusedError``, ``TimeoutError``, ...).
    """
    started = time.monotonic()
    try:
        conn = upstream.connect(connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s)
    except OSError as exc:
        return False, type(exc).__name__
    try:
        conn.send_head(
            "GET",
            upstream.prefix + path,
            [("Host", upstream.netloc), ("Accept-Encoding", "identity"), ("Connection", "close")],
        )
        resp = conn.read_response("GET")
        read = 0
        for piece in resp.stream(_PROBE_BODY):
            read += len(piece)
            if read >= _PROBE_BODY:
                break
    except (OSError, ValueError) as exc:
        return False, type(exc).__name__
    finally:
        conn.close()
    elapsed = time.monotonic() - started
    return resp.status < 500, f"HTTP {resp.status} in {elapsed * 1000:.0f} ms"
