"""Pure helpers for browser sign-on: the ``next`` target, the CSRF check, the session cookie.

No I/O and no WSGI: the routes pass in header values and get answers back, so every
attack can be tested as a plain function call.
"""

from __future__ import annotations

import hmac
import re
import urllib.parse

DEFAULT_NEXT = "/admin/rest_api/"
MAX_NEXT_CHARS = 2048
# Anything but printable ASCII, and backslash: browsers strip tabs/newlines from URLs and
# read "\" as "/", so "/\evil.example" or "/\t/evil.example" become "//evil.example";
# non-ASCII (fullwidth solidus...) has no business in a path the gateway redirects to.
_FORBIDDEN = re.compile(r"[^\x21-\x7e]|\\")
# In a decoded form, "%20" or "%C3%A9" are legitimate; controls and backslash are not.
_FORBIDDEN_DECODED = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_next(value: str | None, default: str = DEFAULT_NEXT) -> str:
    """``value`` when it is a same-origin path (``/...``), else ``default``.

    Refused: absolute URLs (``https://x``, ``javascript:``), scheme-relative ``//host``,
    ``/\\host``, control characters, spaces, non-ASCII and backslashes anywhere, and all of these
    percent-encoded (decoded up to three times, as stacked proxies and frameworks might).
    """
    if not value or len(value) > MAX_NEXT_CHARS:
        return default
    candidate, forbidden = value, _FORBIDDEN
    for _ in range(4):
        if forbidden.search(candidate) or not candidate.startswith("/") or candidate.startswith("//"):
            return default
        parts = urllib.parse.urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return default
        decoded = urllib.parse.unquote(candidate)
        if decoded == candidate:
            return value
        candidate, forbidden = decoded, _FORBIDDEN_DECODED
    return default  # still changing after three decodings: nothing legitimate looks like that


def origin_of(scheme: str, host: str) -> str:
    """The serialised origin (``https://gw.example``) for a request's scheme and Host header,
    default ports dropped, lower-cased, as browsers send it in ``Origin``."""
    scheme = scheme.lower()
    host = host.strip().lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and host.endswith(default):
        host = host[: -len(default)]
    return f"{scheme}://{host}"


def same_origin(*, origin: str | None, sec_fetch_site: str | None, expected_origin: str) -> bool:
    """Whether a request comes from a page of the gateway's own origin.

    ``Origin`` decides when present (``null`` and any other origin are refused, whatever
    ``Sec-Fetch-Site`` says); without it, ``Sec-Fetch-Site: same-origin`` is accepted.  A
    request with neither is refused: every browser that runs the page sends one of them on
    a POST.
    """
    if origin is not None:
        origin = origin.strip()
        try:
            parts = urllib.parse.urlsplit(origin)
        except ValueError:
            return False
        if not parts.scheme or not parts.netloc or parts.path or parts.query or parts.fragment:
            return False
        return hmac.compare_digest(origin_of(parts.scheme, parts.netloc), expected_origin.lower())
    return (sec_fetch_site or "").strip().lower() == "same-origin"


def csrf_refusal(
    *,
    origin: str | None,
    sec_fetch_site: str | None,
    expected_origin: str,
    sent_token: str | None,
    session_token: str,
) -> str | None:
    """Why an unsafe request authenticated by the session cookie is refused, or None to let it pass.

    Both must hold: a same-origin request (:func:`same_origin`) and the session's CSRF token
    (compared in constant time).  The reason is for the log and the 403 answer.
    """
    if not same_origin(origin=origin, sec_fetch_site=sec_fetch_site, expected_origin=expected_origin):
        return "cross-origin request (Origin / Sec-Fetch-Site)"
    if not sent_token or not session_token:
        return "missing CSRF token"
    if not hmac.compare_digest(
        sent_token.encode("utf-8", "replace"), session_token.encode("utf-8", "replace")
    ):
        return "wrong CSRF token"
    return None


_COOKIE_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # an RFC 6265 token
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_.~-]*$")  # what token_urlsafe produces, and nothing else


def session_cookie(
    name: str, value: str, *, secure: bool, max_age: int | None = None, path: str = "/"
) -> str:
    """A ``Set-Cookie`` value: ``HttpOnly`` (no script reads it), ``SameSite=Lax`` (not sent on
    cross-site POSTs or subresources, but sent on top-level navigation, so the provider's
    redirect back works), ``Secure`` when the request came over HTTPS, ``Path=/``.

    Without ``max_age`` it is a browser-session cookie; the server-side lifetime governs anyway.
    """
    if not _COOKIE_NAME.match(name):
        raise ValueError(f"invalid cookie name {name!r}")
    if not _COOKIE_VALUE.match(value):
        raise ValueError("cookie value must be URL-safe base64")
    if name.startswith("__Host-") and (not secure or path != "/"):
        raise ValueError("a __Host- cookie must be Secure with Path=/")
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def expired_cookie(name: str, *, secure: bool, path: str = "/") -> str:
    """A ``Set-Cookie`` value that makes the browser drop the cookie (logout)."""
    return (
        session_cookie(name, "", secure=secure, max_age=0, path=path)
        + "; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    )
