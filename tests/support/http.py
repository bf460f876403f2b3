"""A tiny HTTP client with exact control over header names (underscores included)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 300.0,
) -> Reply:
    """Send one request to a loopback URL and read the whole answer."""
    parts = urlsplit(url)
    assert parts.hostname in {"127.0.0.1", "localhost", "::1"}, "tests only talk to loopback"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path or "/", body=body, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def get(url: str, **kwargs: Any) -> Reply:
    return request("GET", url, **kwargs)


def post_form(url: str, fields: dict[str, str], **kwargs: Any) -> Reply:
    from urllib.parse import urlencode

    headers = {"Content-Type": "application/x-www-form-urlencoded", **kwargs.pop("headers", {})}
    return request("POST", url, headers=headers, body=urlencode(fields).encode(), **kwargs)


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body with exact (even hostile) file names; returns (body, content type)."""
    import uuid

    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode("utf-8", "surrogateescape") + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_multipart(
    url: str, fields: dict[str, str], files: list[tuple[str, str, bytes]], **kwargs: Any
) -> Reply:
    body, content_type = multipart(fields, files)
    headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
    return request("POST", url, headers=headers, body=body, **kwargs)
