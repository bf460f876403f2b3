"""TEST-ONLY: the real gateway with a streaming stand-in for the reverse proxy.

The reverse proxy (issue 3) lives on another branch.  To test the audit layer's
behaviour on proxied, streamed bodies through real gunicorn, this module mounts a small
WSGI app as ``GatewayApp.proxy`` that behaves, towards the audit record, as the proxy
must: it streams its body in chunks, fills ``upstream_status`` /
``upstream_duration_s`` (or ``upstream_error``), and echoes the ``X-Request-ID`` it was
given (what Airflow would receive).  Never used outside tests.

gunicorn: ``python -m gunicorn -c gunicorn.conf.py 'tests.support.stream_gateway:create_app()'``
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from gateway.app import GatewayApp
from gateway.app import create_app as create_gateway

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def streaming_upstream(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """``/stream?chunks=N&delay=S``: N chunks, S seconds apart; ``/broken``: an upstream error."""
    record = environ["gateway.audit"]
    started = time.monotonic()
    if environ["PATH_INFO"].startswith("/broken"):
        record.upstream_error = "connect"
        start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
        return [b"upstream unavailable\n"]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    chunks = int(query.get("chunks", ["5"])[0])
    delay = float(query.get("delay", ["0.1"])[0])
    body_in = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0) or 0)
    record.upstream_status = 200
    record.upstream_duration_s = time.monotonic() - started
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("X-Seen-Request-ID", environ.get("HTTP_X_REQUEST_ID", "")),
            ("X-Seen-Body-Bytes", str(len(body_in))),
        ],
    )

    def body() -> Iterator[bytes]:
        for i in range(chunks):
            time.sleep(delay)
            yield f"chunk {i}\n".encode()

    return body()


def create_app() -> GatewayApp:
    """The production app, with the streaming stand-in mounted where the proxy goes."""
    app = create_gateway()
    app.proxy = streaming_upstream
    return app
