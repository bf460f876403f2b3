"""Redaction through real gunicorn: adversarial arguments and query strings freeze nothing
(issue 13, finding 1).  Before, two POSTs with a 96 KiB field froze ``/healthz`` for 21-28 s
(matching holds the GIL, so every thread of the worker stopped)."""

from __future__ import annotations

import threading
import time
from urllib.parse import quote

from tests.reliability.conftest import TOKEN
from tests.support.http import get, post_form
from tests.support.servers import GatewayServer

AUTH = {"rest_api_plugin_http_token": TOKEN}
SHAPES = ["a://b:" * (96 * 1024 // 6), "password" * (96 * 1024 // 8), "x" * (96 * 1024) + "="]


def test_adversarial_fields_leave_healthz_answering(gateway: GatewayServer) -> None:
    answers: list[tuple[int, float]] = []

    def send(field: str) -> None:
        t0 = time.monotonic()
        reply = post_form(
            f"{gateway.url}/admin/rest_api/api",
            {"api": "version", "conn_uri": field},
            headers=AUTH,
            timeout=60,
        )
        answers.append((reply.status, time.monotonic() - t0))

    senders = [threading.Thread(target=send, args=(shape,)) for shape in SHAPES * 2]
    for thread in senders:
        thread.start()
    probes = []
    for _ in range(10):
        t0 = time.monotonic()
        assert get(f"{gateway.url}/healthz", timeout=10).status == 200
        probes.append(time.monotonic() - t0)
    for thread in senders:
        thread.join(timeout=90)
    assert len(answers) == len(senders) and all(status == 400 for status, _ in answers), answers
    assert max(seconds for _, seconds in answers) < 10, answers
    assert max(probes) < 2, probes


def test_an_adversarial_query_string_costs_little_on_any_path(gateway: GatewayServer) -> None:
    """Query strings are redacted for the audit event before authentication, on every path."""
    query = quote("a://b:" * 1300, safe=":/")  # ~8 KB, within gunicorn's request-line limit
    t0 = time.monotonic()
    for _ in range(5):
        reply = get(f"{gateway.url}/some/proxied/path?q={query}", timeout=30)
        assert reply.status in {200, 401, 403}
    assert time.monotonic() - t0 < 5
