"""A minimal HTTP-level "browser": a cookie jar, browser-like Accept headers, manual redirects.

Enough to walk a web app's real login flow through the gateway (no JavaScript).
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urljoin, urlsplit

from tests.support.http import Reply, request

HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class Browser:
    """Keeps cookies per session and sends them back, like a browser on one origin."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies: dict[str, str] = {}
        self.set_cookie_headers: list[str] = []

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Reply:
        url = urljoin(self.base_url, path)
        sent = {"Accept": HTML_ACCEPT, **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        reply = request(method, url, headers=sent, **kwargs)
        for header in reply.headers.get_all("Set-Cookie") or []:
            self.set_cookie_headers.append(header)
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or (not morsel.value and morsel["expires"]):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return reply

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def follow(self, reply: Reply, limit: int = 5) -> Reply:
        """Follow redirects (GET), staying on the gateway's origin."""
        while reply.status in {301, 302, 303, 307, 308} and limit:
            location = reply.headers["Location"]
            target = urljoin(self.base_url, location)
            assert urlsplit(target).netloc == urlsplit(self.base_url).netloc, (
                f"redirect left the gateway: {location}"
            )
            reply = self.get(target)
            limit -= 1
        return reply


def asset_links(html: str) -> list[str]:
    """The script and stylesheet/modulepreload URLs of a page."""
    return re.findall(r'<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]+\.(?:js|css))"', html)


def hidden_field(html: str, name: str) -> str:
    """The value of ``<input ... name=NAME ... value=...>``."""
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*value="([^"]*)"', html) or re.search(
        rf'<input[^>]*value="([^"]*)"[^>]*name="{re.escape(name)}"', html
    )
    assert match, f"no {name} field in the page"
    return match.group(1)
