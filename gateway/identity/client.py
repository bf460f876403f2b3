"""The client address that source-CIDR rules see, after an explicit count of trusted proxies."""

from __future__ import annotations

import functools
import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(environ: WSGIEnvironment, trusted_proxies: int) -> IPAddress | None:
    """The caller's address, as ProxyFix(x_for=trusted_proxies) would set it.

    With ``trusted_proxies`` = N, the N-th ``X-Forwarded-For`` entry from the right is the
    client (each trusted proxy appended one); entries further left are client-controlled
    and ignored.  With fewer entries than N the socket peer is used, as ProxyFix does.
    If ProxyFix already ran, ``REMOTE_ADDR`` is taken as it is.
    """
    raw = environ.get("REMOTE_ADDR") or ""
    if trusted_proxies and "werkzeug.proxy_fix.orig" not in environ:
        hops = [h.strip() for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= trusted_proxies:
            raw = hops[-trusted_proxies]
    return _parse(raw.strip("[]"))


@functools.lru_cache(maxsize=4096)  # per request otherwise; clients' addresses repeat
def _parse(raw: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        return None
