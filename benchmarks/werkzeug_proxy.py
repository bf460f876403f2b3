"""Baseline (c) for benchmarks/proxy.py: werkzeug's own ProxyMiddleware, served by gunicorn.

gunicorn -k gthread 'benchmarks.werkzeug_proxy:create("http://127.0.0.1:PORT")'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.exceptions import NotFound
from werkzeug.middleware.http_proxy import ProxyMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def create(target: str) -> WSGIApplication:
    """``/p/...`` goes to ``target`` unchanged (werkzeug normalises a prefix to ``/name/``, so
    ``"/"`` would match nothing); werkzeug's defaults otherwise: Host rewritten, no X-Forwarded-*."""
    return ProxyMiddleware(NotFound(), {"/p": {"target": target}})
