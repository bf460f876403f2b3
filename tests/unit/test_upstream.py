"""The proxy's HTTP/1.1 client connection against canned upstream answers on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from gateway.http.upstream import Connection, UpstreamClosed, UpstreamProtocolError


class _Canned:
    """Accepts connections and answers each request head with the next canned bytes."""

    def __init__(self, answers: list[bytes], close_after: bool = False) -> None:
        self.answers = list(answers)
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:  # closed by the fixture before the test connected
            return
        with conn:
            data = b""
            while self.answers:
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    data += piece
                head, _, data = data.partition(b"\r\n\r\n")
                self.requests.append(head)
                conn.sendall(self.answers.pop(0))
            if not self.close_after:
                conn.recv(1)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def canned() -> Iterator[type[_Canned]]:
    made: list[_Canned] = []

    def make(answers: list[bytes], close_after: bool = False) -> _Canned:
        server = _Canned(answers, close_after)
        made.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in made:
        server.close()


def _connect(server: _Canned) -> Connection:
    return Connection("127.0.0.1", server.port, tls=False, connect_timeout_s=2, read_timeout_s=2)


def _body(conn: Connection, method: str = "GET") -> tuple[int, list[tuple[str, str]], bytes, bool]:
    resp = conn.read_response(method)
    body = b"".join(resp.stream(7))
    return resp.status, resp.headers, body, resp.will_close


def test_request_head_is_sent_as_given(canned: type[_Canned]) -> None:
    """The request line and headers go out exactly as built, in one piece."""
    server = canned([b"HTTP/1.1 204 No Content\r\n\r\n"])
    conn = _connect(server)
    conn.send_head("GET", "/a%2fb?x=%zz&y", [("Host", "h"), ("X-Two", "1"), ("X-Two", "2")])
    assert _body(conn)[0] == 204
    assert server.requests == [b"GET /a%2fb?x=%zz&y HTTP/1.1\r\nHost: h\r\nX-Two: 1\r\nX-Two: 2"]
    conn.close()


@pytest.mark.parametrize(
    "name, value",
    [
        pytest.param("X-Evil", "a\r\nInjected: 1", id="crlf-value"),
        pytest.param("Bad Name", "v", id="space-name"),
    ],
)
def test_header_injection_is_refused(canned: type[_Canned], name: str, value: str) -> None:
    """A header that would split the request is never written."""
    server = canned([])
    conn = _connect(server)
    with pytest.raises(ValueError):
        conn.send_head("GET", "/", [(name, value)])
    conn.close()


def test_chunked_body_with_extensions_and_trailers_then_reuse(canned: type[_Canned]) -> None:
    """Chunked bodies are decoded (extensions and trailers dropped) and the connection stays usable."""
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"
        b"5;ext=1\r\nhello\r\n0B\r\n, chunked!!\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    server = canned([chunked, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    conn = _connect(server)
    conn.send_head("GET", "/", [("Host", "h")])
    status, headers, body, will_close = _body(conn)
    assert (status, body, will_close) == (200, b"hello, chunked!!", False)
    assert [v for n, v in headers if n == "Set-Cookie"] == ["a=1", "b=2"]
    conn.send_head("GET", "/", [("Host", "h")])
    assert _body(conn)[2] == b"ok"
    conn.close()


def test_interim_responses_are_skipped_and_folding_joined(canned: type[_Canned]) -> None:
    """100/103 interim answers are not returned; an obs-folded header line is joined."""
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nX-Long: one\r\n two\r\nContent-Length: 0\r\n\r\n"
    )
    server = canned([answer])
    conn = _connect(server)
    conn.send_head("POST", "/", [("Host", "h")])
    status, headers, body, _ = _body(conn, "POST")
    assert status == 201 and ("X-Long", "one two") in headers and body == b""
    conn.close()


def test_head_and_304_have_no_body_despite_content_length(canned: type[_Canned]) -> None:
    """HEAD answers and 304s carry no body whatever Content-Length says."""
    server = canned(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
        ]
    )
    conn = _connect(server)
    conn.send_head("HEAD", "/", [("Host", "h")])
    assert _body(conn, "HEAD")[:3:2] == (200, b"")
    conn.send_head("GET", "/", [("Host", "h")])
    assert _body(conn)[:3:2] == (304, b"")
    conn.close()


def test_close_delimited_and_http10_bodies_end_the_connection(canned: type[_Canned]) -> None:
    """Without length or chunking the body runs to EOF and the connection is not reused."""
    server = canned([b"HTTP/1.0 200 OK\r\n\r\nuntil the end"], close_after=True)
    conn = _connect(server)
    conn.send_head("GET", "/", [("Host", "h")])
    assert _body(conn)[2:] == (b"until the end", True)
    conn.close()


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", id="two-lengths"
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", id="negative-length"),
        pytest.param(b"HTTP/1.1 2000 OK\r\n\r\n", id="bad-status"),
        pytest.param(b"ICY 200 OK\r\n\r\n", id="bad-version"),
        pytest.param(b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", id="no-colon"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", id="bad-chunk"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", id="short-body"),
    ],
)
def test_malformed_answers_raise_protocol_errors(canned: type[_Canned], answer: bytes) -> None:
    """A malformed or truncated answer is an UpstreamProtocolError, never a silent success."""
    server = canned([answer], close_after=True)
    conn = _connect(server)
    conn.send_head("GET", "/", [("Host", "h")])
    with pytest.raises(UpstreamProtocolError):
        _body(conn)
    conn.close()


def test_close_before_any_byte_is_upstream_closed(canned: type[_Canned]) -> None:
    """A connection closed before a response (a stale keep-alive) is told apart for the retry."""
    server = canned([b""], close_after=True)
    conn = _connect(server)
    conn.send_head("GET", "/", [("Host", "h")])
    with pytest.raises(UpstreamClosed):
        conn.read_response("GET")
    conn.close()
