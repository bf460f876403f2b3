"""The sign-on web helpers: ``next`` validation (open redirects), the CSRF check, cookies."""

from __future__ import annotations

import pytest

from gateway.sessions.browser import (
    DEFAULT_NEXT,
    csrf_refusal,
    expired_cookie,
    origin_of,
    safe_next,
    same_origin,
    session_cookie,
)

GOOD = [
    "/",
    "/home",
    "/admin/rest_api/?api=version",
    "/dags/x/grid?tab=logs#top",
    "/a%20b",
    "/caf%C3%A9",
    "/x?next=//evil",
]
OPEN_REDIRECTS = [
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    " /evil",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/%09/evil.example",
    "/%0a/evil.example",
    "/%252F/evil.example",  # double-encoded
    "/%25252F/evil.example",  # triple-encoded
    "/\uff0f\uff0fevil.example",  # fullwidth solidus
    "evil.example",
    "",
    "/" + "a" * 3000,
]


@pytest.mark.parametrize("value", GOOD)
def test_same_origin_paths_are_kept(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize("value", OPEN_REDIRECTS)
def test_open_redirects_fall_back_to_the_default(value: str) -> None:
    assert safe_next(value) == DEFAULT_NEXT
    assert safe_next(value, default="/other") == "/other"


def test_none_is_the_default() -> None:
    assert safe_next(None) == DEFAULT_NEXT


@pytest.mark.parametrize(
    ("scheme", "host", "origin"),
    [
        ("https", "GW.example:443", "https://gw.example"),
        ("http", "gw.example:80", "http://gw.example"),
        ("http", "127.0.0.1:8000", "http://127.0.0.1:8000"),
    ],
)
def test_origin_of_normalises_like_browsers(scheme: str, host: str, origin: str) -> None:
    assert origin_of(scheme, host) == origin


@pytest.mark.parametrize(
    ("origin", "fetch_site", "allowed"),
    [
        ("https://gw.example", None, True),
        ("https://gw.example:443", "cross-site", True),  # Origin decides when present
        ("https://evil.example", "same-origin", False),
        ("http://gw.example", None, False),  # another scheme is another origin
        ("https://gw.example.evil.example", None, False),
        ("null", "same-origin", False),
        ("https://gw.example/path", None, False),
        (None, "same-origin", True),
        (None, "same-site", False),
        (None, "cross-site", False),
        (None, None, False),
    ],
)
def test_same_origin(origin: str | None, fetch_site: str | None, allowed: bool) -> None:
    assert (
        same_origin(origin=origin, sec_fetch_site=fetch_site, expected_origin="https://gw.example") is allowed
    )


def test_csrf_needs_the_origin_and_the_token() -> None:
    check = {"expected_origin": "https://gw.example", "session_token": "t" * 43}
    ok = {"origin": "https://gw.example", "sec_fetch_site": None}
    assert csrf_refusal(**ok, sent_token="t" * 43, **check) is None
    assert csrf_refusal(**ok, sent_token=None, **check) == "missing CSRF token"
    assert csrf_refusal(**ok, sent_token="u" * 43, **check) == "wrong CSRF token"
    assert csrf_refusal(**ok, sent_token="t" * 42, **check) == "wrong CSRF token"
    assert csrf_refusal(**ok, sent_token="é", **check) == "wrong CSRF token"
    cross = {"origin": "https://evil.example", "sec_fetch_site": "cross-site"}
    assert "cross-origin" in (csrf_refusal(**cross, sent_token="t" * 43, **check) or "")
    assert csrf_refusal(origin=None, sec_fetch_site=None, sent_token="t" * 43, **check) is not None
    assert (
        csrf_refusal(**ok, sent_token="", expected_origin="https://gw.example", session_token="") is not None
    )


def test_the_session_cookie_is_httponly_lax_and_secure_on_https() -> None:
    cookie = session_cookie("gw_session", "abc-_.~", secure=True)
    assert cookie == "gw_session=abc-_.~; Path=/; HttpOnly; SameSite=Lax; Secure"
    assert "Secure" not in session_cookie("gw_session", "abc", secure=False)
    assert "Max-Age=600" in session_cookie("gw_login", "abc", secure=False, max_age=600)
    gone = expired_cookie("gw_session", secure=True)
    assert gone.startswith("gw_session=; ") and "Max-Age=0" in gone and "Expires=Thu, 01 Jan 1970" in gone


@pytest.mark.parametrize(
    ("name", "value"), [("gw session", "a"), ("gw", "a;b"), ("gw", "a\r\nSet-Cookie: x=y")]
)
def test_cookie_injection_is_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        session_cookie(name, value, secure=True)


def test_a_host_prefixed_cookie_must_be_secure() -> None:
    with pytest.raises(ValueError):
        session_cookie("__Host-gw", "a", secure=False)
    assert session_cookie("__Host-gw", "a", secure=True).startswith("__Host-gw=a")
