"""A lean HTTP/1.1 client connection to Airflow, for the reverse proxy's hot path.

Why not :mod:`http.client` or urllib3: both re-parse every response head with the
:mod:`email` package and rebuild per-response socket readers (a large share of the
proxy's CPU per small request, docs/proxy.md), and urllib3 normalises percent-escapes in the target.
This module sends the request head in one write, keeps one buffered reader per
connection, and parses only what a proxy needs: the status line, the header lines
(kept as sent, duplicates and order included) and the body framing (RFC 9112 section 6).
"""

from __future__ import annotations

import io
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

_MAX_LINE = 65536
_MAX_HEADERS = 200


class UpstreamProtocolError(OSError):
    """Airflow's answer is not valid HTTP/1.x (or ended early)."""


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


@dataclass(slots=True)
class _Framing:
    kind: str  # "none", "length", "chunked" or "close"
    length: int = 0


def _framing(method: str, status: int, headers: list[tuple[str, str]]) -> _Framing:
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return _Framing("none")
    codings = [v for n, v in headers if n.lower() == "transfer-encoding"]
    if codings:
        last = ",".join(codings).split(",")[-1].strip().lower()
        return _Framing("chunked") if last == "chunked" else _Framing("close")
    lengths = {v.strip() for n, v in headers if n.lower() == "content-length"}
    if lengths:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise UpstreamProtocolError("invalid Content-Length")
        return _Framing("length", int(next(iter(lengths))))
    return _Framing("close")


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
        self._framing = _framing(method, status, headers)
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
        kind, read1 = self._framing.kind, self._rfile.read1
        if kind == "length":
            left = self._framing.length
            while left:
                piece = read1(min(size, left))
                if not piece:
                    raise UpstreamProtocolError("body shorter than Content-Length")
                left -= len(piece)
                yield piece
        elif kind == "chunked":
            yield from self._chunks(size)
        elif kind == "close":
            while piece := read1(size):
                yield piece
        self.complete = True

    def _chunks(self, size: int) -> Iterator[bytes]:
        readline, read1 = self._rfile.readline, self._rfile.read1
        while True:
            line = readline(_MAX_LINE)
            digits = line.split(b";", 1)[0].strip()
            if (
                not line.endswith(b"\n")
                or not digits
                or any(c not in b"0123456789abcdefABCDEF" for c in digits)
            ):
                raise UpstreamProtocolError("malformed chunk size")
            left = int(digits, 16)
            if left == 0:
                while True:  # trailers are dropped (they are hop-by-hop for this proxy)
                    trailer = readline(_MAX_LINE)
                    if trailer in (b"\r\n", b"\n"):
                        return
                    if not trailer.endswith(b"\n"):
                        raise UpstreamProtocolError("body ended in trailers")
            while left:
                piece = read1(min(size, left))
                if not piece:
                    raise UpstreamProtocolError("body ended inside a chunk")
                left -= len(piece)
                yield piece
            if readline(_MAX_LINE) not in (b"\r\n", b"\n"):
                raise UpstreamProtocolError("malformed chunk end")
