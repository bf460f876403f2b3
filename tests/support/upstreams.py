"""Loopback upstreams for proxy tests: an echo server and misbehaving variants.

``EchoUpstream`` answers every request with JSON describing exactly what arrived: the
method, the raw request target, the header lines as sent (names, order, duplicates),
the body's length and hash, and whether it came chunked.  A few paths behave
differently on purpose:

* ``/_stream/<bytes>`` streams that many bytes (``?chunked=1`` for chunked framing);
  whether the client went away mid-body is recorded in ``aborted_streams``.
* ``/_stall/<seconds>`` waits before answering (read-timeout tests).
* ``/_stall_body/<seconds>`` sends headers and half a body, then waits.
* ``/_headers`` answers with multiple Set-Cookie, a gzip body, hop-by-hop headers and
  a ``Connection``-listed header.
* ``/_redirect`` answers 302 with a Location.
* ``/_status/<code>`` answers that status.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_FILL = bytes(range(256)) * 256  # 64 KiB of a recognisable pattern


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> tuple[bytes, bool]:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts), True
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return (self.rfile.read(length) if length else b""), False

    def _handle(self) -> None:
        body, chunked = self._body()
        self.server.connections.add(self.client_address[1])
        path = self.path.split("?", 1)[0]
        if path.startswith("/_stream/"):
            return self._stream(int(path.rsplit("/", 1)[1]), "chunked=1" in self.path)
        if path.startswith("/_stall/"):
            time.sleep(float(path.rsplit("/", 1)[1]))
        if path.startswith("/_stall_body/"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 500)
            self.wfile.flush()
            time.sleep(float(path.rsplit("/", 1)[1]))
            self.close_connection = True
            return None
        if path == "/_headers":
            return self._headers()
        if path == "/_slow":
            return self._slow()
        if path == "/_redirect":
            self.send_response(302)
            self.send_header("Location", "http://elsewhere.invalid/next")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        status = int(path.rsplit("/", 1)[1]) if path.startswith("/_status/") else 200
        answer = {
            "method": self.command,
            "target": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.raw_items()],
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body": body.decode("latin-1") if len(body) <= 4096 else None,
            "chunked": chunked,
            "peer_port": self.client_address[1],
        }
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(self, size: int, chunked: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        sent = 0
        try:
            while sent < size:
                piece = _FILL[: min(len(_FILL), size - sent)]
                self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.server.aborted_streams.append(sent)
            self.close_connection = True
            return
        self.server.completed_streams.append(sent)

    def _slow(self) -> None:
        """``/_slow?chunks=N&delay=S``: N chunked pieces S seconds apart; echoes X-Request-ID."""
        query = dict(p.split("=", 1) for p in self.path.partition("?")[2].split("&") if "=" in p)
        chunks, delay = int(query.get("chunks", "5")), float(query.get("delay", "0.1"))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Seen-Request-ID", self.headers.get("X-Request-ID", ""))
        self.end_headers()
        for _ in range(chunks):
            self.wfile.write(b"%x\r\n%b\r\n" % (1024, b"s" * 1024))
            self.wfile.flush()
            time.sleep(delay)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _headers(self) -> None:
        data = gzip.compress(b"hello gzip " * 100)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Set-Cookie", "a=1; Path=/; HttpOnly")
        self.send_header("Set-Cookie", "b=2; Path=/")
        self.send_header("Set-Cookie", "c=3; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT")
        self.send_header("Connection", "X-Private-Hop")
        self.send_header("X-Private-Hop", "secret")
        self.send_header("Keep-Alive", "timeout=5")
        self.send_header("X-Kept", "yes")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections: set[int] = set()
        self.aborted_streams: list[int] = []
        self.completed_streams: list[int] = []


class EchoUpstream:
    """The echo server in a background thread; ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self) -> None:
        self.server = _Server()
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def aborted_streams(self) -> list[int]:
        return self.server.aborted_streams

    @property
    def completed_streams(self) -> list[int]:
        return self.server.completed_streams

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
