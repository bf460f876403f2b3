"""gateway/healthcheck.py: the image's HEALTHCHECK probes where GATEWAY_BIND says."""

from __future__ import annotations

import pytest

from gateway.healthcheck import probe_url


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("0.0.0.0:8080", "http://127.0.0.1:8080/healthz"),
        ("127.0.0.1:9001", "http://127.0.0.1:9001/healthz"),
        ("[::]:8080", "http://127.0.0.1:8080/healthz"),
        (":8080", "http://127.0.0.1:8080/healthz"),
        ("10.1.2.3:80,127.0.0.1:81", "http://10.1.2.3:80/healthz"),
    ],
)
def test_probe_url_follows_the_bind(bind: str, url: str) -> None:
    assert probe_url(bind) == url
