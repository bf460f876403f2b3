"""Trusted proxies: the one layer allowed to change ``REMOTE_ADDR``, scheme and host.

Policies ("from where") and the audit log depend on ``REMOTE_ADDR``, so values from
``X-Forwarded-*`` are believed only for the configured number of proxies in front of
the gateway (werkzeug's ``ProxyFix``); with zero, client-sent values are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def trust_proxies(app: WSGIApplication, count: int) -> WSGIApplication:
    """Wrap ``app`` so that ``count`` trusted proxies' X-Forwarded-For/Proto/Host/Port apply.

    :raises ValueError: on a negative count.
    """
    if count < 0:
        raise ValueError("trusted_proxy_count must be >= 0")
    if count == 0:
        return app
    return ProxyFix(app, x_for=count, x_proto=count, x_host=count, x_port=count, x_prefix=0)
