"""The client address that source-CIDR rules, whoami and jobs see."""

from __future__ import annotations

import functools
import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(environ: WSGIEnvironment) -> IPAddress | None:
    """The caller's address: ``REMOTE_ADDR``, which only the trusted-proxy layer
    (:mod:`gateway.http.forwarded`, outermost) may have changed from the socket peer."""
    return _parse((environ.get("REMOTE_ADDR") or "").strip("[]"))


@functools.lru_cache(maxsize=4096)  # per request otherwise; clients' addresses repeat
def _parse(raw: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        return None
