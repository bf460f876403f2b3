"""TEST-ONLY stand-in for ``gateway/proxy.py`` (built on another branch).

A minimal, buffering forwarder plugged in as ``GatewayApp.proxy`` so that the identity
e2e tests can show Airflow's own login working through the gateway's auth and path
policy.  It strips exactly ``Authenticator.credential_keys()`` like the real proxy must.
After the merge, the lead switches these tests to the real proxy and deletes this file.
"""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from werkzeug.http import is_hop_by_hop_header

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from gateway.app import GatewayApp


class TestOnlyForwarder:
    """Forward one request to ``upstream`` and buffer the answer (tests only)."""

    def __init__(self, upstream: str, strip: Iterable[str]) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname in {"127.0.0.1", "localhost"}, "tests only talk to loopback"  # noqa: S101
        self.host, self.port = parts.hostname, parts.port or 80
        self.strip = frozenset(strip)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        headers = {}
        for key, value in environ.items():
            if key.startswith("HTTP_") and key not in self.strip and key != "HTTP_HOST":
                name = key[5:].replace("_", "-").title()
                if not is_hop_by_hop_header(name):
                    headers[name] = value
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").title()] = environ[key]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else None
        path = environ.get("PATH_INFO", "/") + (
            f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else ""
        )
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(environ["REQUEST_METHOD"], path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        out = [
            (k, v)
            for k, v in resp.getheaders()
            if not is_hop_by_hop_header(k) and k.lower() != "content-length"
        ]
        out.append(("Content-Length", str(len(data))))
        start_response(f"{resp.status} {resp.reason}", out)
        return [data]


def create_app() -> GatewayApp:
    """The real gateway with the test-only forwarder as its proxy (``GATEWAY_TEST_UPSTREAM``)."""
    from gateway.app import create_app as real_create_app

    app = real_create_app()
    app.proxy = TestOnlyForwarder(os.environ["GATEWAY_TEST_UPSTREAM"], app.auth.credential_keys())
    return app
