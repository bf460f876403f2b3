"""Body framing for both directions of a proxied request (RFC 9112 section 6).

Towards Airflow, :class:`RequestBody` says how the client's body is delimited (the
Content-Length gunicorn was given, or chunked) and writes it after the request head:
small fixed-length bodies in the head's own write, larger ones in pieces, chunked
uploads re-chunked piece by piece.  Back from Airflow, :func:`response_framing` reads the
framing from the response head and :func:`read_body` yields the body it delimits
(Content-Length, chunked with extensions and trailers, or up to the close), refusing a
body that ends early.  Heads themselves are :mod:`gateway.http.upstream`'s business.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: The size of the pieces bodies are read and sent in, both ways.
CHUNK = 256 * 1024
# A fixed-length body up to this size is read whole and sent with the headers in one
# write: separate small writes would meet Nagle and delayed ACKs on some stacks.
SMALL_BODY = 64 * 1024
# Longest chunk-size or trailer line accepted from Airflow.
_MAX_LINE = 65536
_HEX = frozenset(b"0123456789abcdefABCDEF")


class UpstreamProtocolError(OSError):
    """Airflow's answer is not valid HTTP/1.x (or ended early)."""


class HeadWriter(Protocol):
    """What a request body is written to: an upstream connection."""

    def send_head(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> None: ...

    def send(self, data: bytes) -> None: ...


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _tokens(value: str | None) -> set[str]:
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


# --- towards Airflow: the client's body ---


@dataclass(frozen=True, slots=True)
class RequestBody:
    """The client's request body as the WSGI server hands it over.

    :param stream: ``wsgi.input``.
    :param length: the Content-Length, or ``None`` for a chunked body of unknown length.
    :param replayable: the client sent no body at all (no non-zero Content-Length, no
        Transfer-Encoding), so the request can be sent again on another connection.
    """

    stream: _Readable
    length: int | None
    replayable: bool

    @classmethod
    def from_environ(cls, environ: WSGIEnvironment) -> RequestBody:
        """A Content-Length wins over chunking; neither means no body."""
        declared = environ.get("CONTENT_LENGTH") or ""
        chunked = not declared and "chunked" in _tokens(environ.get("HTTP_TRANSFER_ENCODING"))
        return cls(
            environ["wsgi.input"],
            None if chunked else int(declared) if declared.isdigit() else 0,
            replayable=not declared.strip("0") and not environ.get("HTTP_TRANSFER_ENCODING"),
        )

    def send(self, conn: HeadWriter, method: str, target: str, headers: list[tuple[str, str]]) -> None:
        """Write the request head and this body to ``conn``, framed as it came.

        :raises ConnectionAbortedError: when the client's body ends before its Content-Length.
        """
        if self.length is None:
            conn.send_head(method, target, [*headers, ("Transfer-Encoding", "chunked")])
            while chunk := self.stream.read(CHUNK):
                conn.send(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
            return
        remaining = self.length
        if remaining <= SMALL_BODY:
            small = _read_exactly(self.stream, remaining) if remaining else b""
            conn.send_head(method, target, headers, small)
            return
        conn.send_head(method, target, headers)
        while remaining > 0:
            chunk = self.stream.read(min(CHUNK, remaining))
            if not chunk:
                raise ConnectionAbortedError("client body ended before Content-Length")
            conn.send(chunk)
            remaining -= len(chunk)


def _read_exactly(stream: _Readable, size: int) -> bytes:
    parts: list[bytes] = []
    while size > 0:
        chunk = stream.read(size)
        if not chunk:
            raise ConnectionAbortedError("client body ended before Content-Length")
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


# --- back from Airflow: the response body ---


@dataclass(frozen=True, slots=True)
class ResponseFraming:
    """How a response body is delimited: not at all, by a length, by chunks, or by the close."""

    kind: Literal["none", "length", "chunked", "close"]
    length: int = 0


def response_framing(method: str, status: int, headers: list[tuple[str, str]]) -> ResponseFraming:
    """The framing of the response to ``method`` with ``status`` and ``headers``.

    :raises UpstreamProtocolError: on conflicting or malformed Content-Length values.
    """
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return ResponseFraming("none")
    codings = [v for n, v in headers if n.lower() == "transfer-encoding"]
    if codings:
        last = ",".join(codings).split(",")[-1].strip().lower()
        return ResponseFraming("chunked") if last == "chunked" else ResponseFraming("close")
    lengths = {v.strip() for n, v in headers if n.lower() == "content-length"}
    if lengths:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise UpstreamProtocolError("invalid Content-Length")
        return ResponseFraming("length", int(next(iter(lengths))))
    return ResponseFraming("close")


def read_body(rfile: io.BufferedReader, framing: ResponseFraming, size: int) -> Iterator[bytes]:
    """The body in pieces of at most ``size`` bytes, as they arrive.

    :raises UpstreamProtocolError: if the body ends before its framing says it should.
    """
    read1 = rfile.read1
    if framing.kind == "length":
        left = framing.length
        while left:
            piece = read1(min(size, left))
            if not piece:
                raise UpstreamProtocolError("body shorter than Content-Length")
            left -= len(piece)
            yield piece
    elif framing.kind == "chunked":
        yield from _chunks(rfile, size)
    elif framing.kind == "close":
        while piece := read1(size):
            yield piece


def _chunks(rfile: io.BufferedReader, size: int) -> Iterator[bytes]:
    readline, read1 = rfile.readline, rfile.read1
    while True:
        line = readline(_MAX_LINE)
        digits = line.split(b";", 1)[0].strip()
        if not line.endswith(b"\n") or not digits or not _HEX.issuperset(digits):
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
