"""gateway/http/framing.py: the client's body towards Airflow, framed as it came."""

from __future__ import annotations

import io

import pytest

from gateway.http.framing import CHUNK, SMALL_BODY, RequestBody


class _Recorder:
    """Stands in for an upstream connection: records the head and every later write."""

    def __init__(self) -> None:
        self.heads: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
        self.writes: list[bytes] = []

    def send_head(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        self.heads.append((method, target, headers, body))

    def send(self, data: bytes) -> None:
        self.writes.append(data)


def _body(data: bytes, **environ: str) -> RequestBody:
    return RequestBody.from_environ({"wsgi.input": io.BytesIO(data), **environ})


def test_no_body_is_replayable_and_goes_with_the_head() -> None:
    body = _body(b"")
    assert (body.length, body.replayable) == (0, True)
    conn = _Recorder()
    body.send(conn, "GET", "/x", [("Host", "h")])
    assert conn.heads == [("GET", "/x", [("Host", "h")], b"")] and conn.writes == []


def test_a_small_body_is_sent_in_the_heads_write() -> None:
    body = _body(b"a=1", CONTENT_LENGTH="3")
    assert (body.length, body.replayable) == (3, False)
    conn = _Recorder()
    body.send(conn, "POST", "/x", [])
    assert conn.heads[0][3] == b"a=1" and conn.writes == []


def test_a_large_body_follows_the_head_in_pieces() -> None:
    data = b"x" * (SMALL_BODY + CHUNK + 1)
    conn = _Recorder()
    _body(data, CONTENT_LENGTH=str(len(data))).send(conn, "PUT", "/x", [])
    assert conn.heads[0][3] == b"" and b"".join(conn.writes) == data
    assert max(map(len, conn.writes)) <= CHUNK


def test_a_chunked_upload_is_rechunked() -> None:
    body = _body(b"hello", HTTP_TRANSFER_ENCODING="chunked")
    assert (body.length, body.replayable) == (None, False)
    conn = _Recorder()
    body.send(conn, "POST", "/x", [("Host", "h")])
    assert conn.heads[0][2] == [("Host", "h"), ("Transfer-Encoding", "chunked")]
    assert b"".join(conn.writes) == b"5\r\nhello\r\n0\r\n\r\n"


def test_a_content_length_wins_over_chunking() -> None:
    body = _body(b"abc", CONTENT_LENGTH="3", HTTP_TRANSFER_ENCODING="chunked")
    assert body.length == 3


@pytest.mark.parametrize("length", [10, SMALL_BODY + 10])
def test_a_client_body_shorter_than_its_length_aborts(length: int) -> None:
    with pytest.raises(ConnectionAbortedError):
        _body(b"short", CONTENT_LENGTH=str(length)).send(_Recorder(), "POST", "/x", [])
