"""The upstream connection rebuilt on h11, for the A/B against the hand-written one.

Not shipped: ``benchmarks/proxy.py --compare-h11`` starts a second gateway whose
``gateway.http.upstream.Connection`` is :class:`H11Connection` (through a ``sitecustomize``
on its ``PYTHONPATH`` that calls :func:`install`), and interleaves both.  It keeps the
interface the proxy and the readiness probe use (``send_head``, ``send_request``,
``read_response``, a response with ``status``, ``reason``, ``headers``, ``will_close``,
``complete``, ``getheader`` and ``stream``), so the rest of the gateway is the same code.
h11 frames both directions itself; the socket set-up and timeouts are the shipped ones.
h11 comes with the development dependencies (through wsproto), not with the gateway;
the figures are docs/proxy.md's run M.
To run the proxy's tests against it, put a ``sitecustomize.py`` that calls :func:`install`
first on ``PYTHONPATH``::

    PYTHONPATH=/tmp/h11-site:. .venv/bin/python -m pytest tests/unit/test_proxy.py \
        tests/unit/test_upstream.py tests/unit/test_readiness.py
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import h11

from gateway.http import upstream
from gateway.http.framing import SMALL_BODY, RequestBody, UpstreamProtocolError
from gateway.http.upstream import UpstreamClosed

_RECV = 256 * 1024


class H11Response:
    def __init__(self, conn: H11Connection, event: h11.Response) -> None:
        self._conn = conn
        self.status = event.status_code
        self.reason = event.reason.decode("latin-1")
        self.headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers.raw_items()]
        self.complete = False

    @property
    def will_close(self) -> bool:
        h = self._conn.h11
        return not (h.our_state is h11.DONE and h.their_state is h11.DONE)

    def getheader(self, name: str) -> str | None:
        lname = name.lower()
        values = [v for n, v in self.headers if n.lower() == lname]
        return ", ".join(values) if values else None

    def stream(self, size: int) -> Iterator[bytes]:
        while True:
            event = self._conn.next_event(size)
            if type(event) is h11.Data:
                yield bytes(event.data)
            elif type(event) is h11.EndOfMessage:
                self.complete = True
                return
            else:
                raise UpstreamProtocolError(f"unexpected {type(event).__name__} in a body")


class H11Connection:
    """One keep-alive connection driven by an :class:`h11.Connection`."""

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
        self.h11 = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        self.sock.close()

    def _start(self) -> None:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()

    def _request(self, method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
        try:
            return self.h11.send(h11.Request(method=method, target=target, headers=headers)) or b""
        except h11.LocalProtocolError as exc:
            raise ValueError(str(exc)) from None

    def send_head(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        """The request, complete: a head and a body of Content-Length (or none)."""
        self._start()
        out = self._request(method, target, headers)
        if body:
            out += self.h11.send(h11.Data(data=body)) or b""
        self.sock.sendall(out + (self.h11.send(h11.EndOfMessage()) or b""))

    def send_request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: RequestBody
    ) -> None:
        self._start()
        read = body.stream.read
        if body.length is None:
            self.sock.sendall(self._request(method, target, [*headers, ("Transfer-Encoding", "chunked")]))
            while chunk := read(_RECV):
                self.sock.sendall(self.h11.send(h11.Data(data=chunk)) or b"")
        elif body.length <= SMALL_BODY:
            out = self._request(method, target, headers)
            left = body.length
            while left:
                chunk = read(left)
                if not chunk:
                    raise ConnectionAbortedError("client body ended before Content-Length")
                out += self.h11.send(h11.Data(data=chunk)) or b""
                left -= len(chunk)
            self.sock.sendall(out + (self.h11.send(h11.EndOfMessage()) or b""))
            return
        else:
            self.sock.sendall(self._request(method, target, headers))
            left = body.length
            while left:
                chunk = read(min(_RECV, left))
                if not chunk:
                    raise ConnectionAbortedError("client body ended before Content-Length")
                self.sock.sendall(self.h11.send(h11.Data(data=chunk)) or b"")
                left -= len(chunk)
        self.sock.sendall(self.h11.send(h11.EndOfMessage()) or b"")

    def next_event(self, size: int = _RECV) -> object:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise UpstreamProtocolError(str(exc)) from None
            if event is not h11.NEED_DATA:
                return event
            data = self.sock.recv(size)
            if not data and self.h11.their_state is h11.SEND_RESPONSE and not self.h11.trailing_data[0]:
                raise UpstreamClosed("connection closed before a response")
            self.h11.receive_data(data)

    def read_response(self, method: str) -> H11Response:
        while True:
            event = self.next_event()
            if type(event) is h11.InformationalResponse:
                continue
            if type(event) is h11.Response:
                return H11Response(self, event)
            raise UpstreamProtocolError(f"unexpected {type(event).__name__} before a response")


def install() -> None:
    """Make every new upstream connection of this process an :class:`H11Connection`."""
    upstream.Connection = H11Connection  # type: ignore[misc, assignment]
