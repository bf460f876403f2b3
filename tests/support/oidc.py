"""A real OpenID provider on loopback (panva's ``oidc-provider`` under Debian's ``node``).

``scripts/bootstrap.d/70-oidc-provider.sh`` installs it into the cache; :func:`start_provider`
runs ``tests/oidc/provider.mjs`` on a free port of 127.0.0.1 and :class:`LoginDriver` signs
in through its own login form over plain HTTP (a cookie jar, redirects by hand), for tests
that need no browser.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = ROOT / "tests" / "oidc"
SCRIPT = PACKAGE_DIR / "provider.mjs"

CLIENT_ID = "airflow-gateway"
CLIENT_SECRET = "test-client-secret-" + "x" * 24  # noqa: S105 - a loopback test provider's client
REDIRECT_URI = "http://127.0.0.1:1/admin/rest_api/oidc/callback"  # the HTTP-only tests never follow it
POST_LOGOUT_URI = "http://127.0.0.1:1/admin/rest_api/"

#: username -> password and claims.  ``groups`` is the claim the gateway maps to policy groups.
USERS: dict[str, dict[str, Any]] = {
    "ada": {
        "password": "ada-password",
        "preferred_username": "ada",
        "email": "ada@example.test",
        "email_verified": True,
        "name": "Ada Lovelace",
        "groups": ["team-a-operators", "viewers"],
    },
    "bob": {
        "password": "bob-password",
        "preferred_username": "bob",
        "email": "bob@example.test",
        "email_verified": True,
        "name": "Bob",
        "groups": ["viewers"],
    },
}


def modules_dir() -> Path:
    """Where bootstrap installed oidc-provider: the cache directory stamped like the shell script does."""
    explicit = os.environ.get("AIRFLOW_GATEWAY_TEST_OIDC_PROVIDER")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("AIRFLOW_GATEWAY_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "airflow-gateway"
    )
    content = (PACKAGE_DIR / "package.json").read_bytes() + (PACKAGE_DIR / "package-lock.json").read_bytes()
    return Path(cache) / f"oidc-provider-{hashlib.sha256(content).hexdigest()[:16]}"


def client_metadata(
    client_id: str = CLIENT_ID,
    secret: str = CLIENT_SECRET,
    redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
    post_logout_redirect_uris: tuple[str, ...] = (POST_LOGOUT_URI,),
    **extra: Any,
) -> dict[str, Any]:
    """A confidential code-flow client (client_secret_basic, refresh tokens)."""
    return {
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uris": list(redirect_uris),
        "post_logout_redirect_uris": list(post_logout_redirect_uris),
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        **extra,
    }


@dataclass
class OidcProvider:
    """A running provider; :meth:`stop` ends it (and so does closing our end of its stdin)."""

    process: subprocess.Popen[str]
    port: int
    admin_token: str
    workdir: Path
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call a test-only admin route (``/_test/...``)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback
            self.issuer + path,
            data=data,
            method="GET" if body is None else "POST",
            headers={"X-Test-Admin": self.admin_token, "Content-Type": "application/json"},
        )
        with _opener().open(request, timeout=10) as response:
            return json.loads(response.read())

    def rotate_keys(self, keep_old: bool = False) -> list[str]:
        """A new signing key; the old one stays published (``keep_old``) or is gone. Returns the kids."""
        kids: list[str] = self.admin("/_test/rotate-keys", {"keep_old": keep_old})["kids"]
        return kids

    def set_ttl(self, **seconds: int) -> None:
        """Token lifetimes from now on: ``IdToken``, ``AccessToken``, ``RefreshToken``, ``Session``."""
        self.admin("/_test/ttl", seconds)

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """A JWT signed RS256 with the provider's current key (its kid in the header)."""
        token: str = self.admin("/_test/sign", {"claims": claims, "header": header or {}})["token"]
        return token

    def add_client(self, metadata: dict[str, Any]) -> None:
        self.admin("/_test/clients", metadata)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.reader is not None:
            self.reader.join(timeout=5)  # ends at the closed pipe's end of file
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


DEFAULT_TTL = {"AccessToken": 600, "IdToken": 600, "RefreshToken": 86400, "Session": 86400}


def start_provider(clients: list[dict[str, Any]] | None = None, timeout_s: float = 20.0) -> OidcProvider:
    """Start ``provider.mjs`` on a free loopback port; returns once it answers discovery."""
    modules = modules_dir()
    if not (modules / ".complete").exists():
        raise RuntimeError(f"oidc-provider is not installed at {modules}: run scripts/bootstrap")
    node = shutil.which("node") or "/usr/bin/node"
    workdir = Path(tempfile.mkdtemp(prefix="oidc-provider-"))
    admin_token = secrets.token_urlsafe(16)
    config = {
        "modules": str(modules),
        "admin_token": admin_token,
        "clients": clients if clients is not None else [client_metadata()],
        "users": USERS,
        "ttl": DEFAULT_TTL,
    }
    (workdir / "config.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [node, str(SCRIPT), str(workdir / "config.json")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=workdir,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_ENV": "test"},
    )
    provider = OidcProvider(process, 0, admin_token, workdir)
    assert process.stdout is not None  # noqa: S101
    port: list[int] = []

    def read() -> None:
        assert process.stdout is not None  # noqa: S101
        for line in process.stdout:
            provider.output.append(line)
            found = re.match(r"listening (\d+)$", line.strip())
            if found and not port:
                port.append(int(found.group(1)))

    provider.reader = threading.Thread(target=read, daemon=True, name="oidc-provider-output")
    provider.reader.start()
    deadline = time.monotonic() + timeout_s
    while not port:
        if process.poll() is not None or time.monotonic() > deadline:
            provider.stop()
            raise RuntimeError("oidc-provider did not start:\n" + "".join(provider.output))
        time.sleep(0.02)
    provider.port = port[0]
    return provider


@contextmanager
def running_provider(**kwargs: Any) -> Iterator[OidcProvider]:
    provider = start_provider(**kwargs)
    try:
        yield provider
    finally:
        provider.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener(jar: http.cookiejar.CookieJar | None = None) -> urllib.request.OpenerDirector:
    """urllib without proxies (loopback only) and without following redirects."""
    handlers: list[Any] = [urllib.request.ProxyHandler({}), _NoRedirect()]
    if jar is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(jar))
    return urllib.request.build_opener(*handlers)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


class LoginDriver:
    """Signs a user in at the provider over HTTP, as a browser without JavaScript would.

    :meth:`authorize` takes the gateway's authorization URL, fills in the provider's login
    form, follows the provider's redirects and returns the callback URL the provider sends
    the browser to (with ``code`` and ``state``), without requesting it.
    """

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self._open = _opener(self.jar)

    def request(self, url: str, form: dict[str, str] | None = None) -> Answer:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1", "tests only talk to loopback"  # noqa: S101
        data = None if form is None else urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(url, data=data, headers={"Accept": "text/html"})  # noqa: S310
        try:
            with self._open.open(request, timeout=10) as response:
                return Answer(response.status, dict(response.headers), response.read().decode())
        except urllib.error.HTTPError as exc:  # 3xx (redirects are not followed) and errors
            return Answer(exc.code, dict(exc.headers), exc.read().decode(errors="replace"))

    def authorize(
        self, authorization_url: str, username: str, password: str, *, stop_at: str | None = None
    ) -> str:
        """The URL the provider finally redirects to (the client's ``redirect_uri`` + code/state).

        :param stop_at: the redirect_uri prefix that ends the walk (default: any URL off the provider).
        """
        issuer = "{0.scheme}://{0.netloc}".format(urlsplit(authorization_url))
        url = authorization_url
        for _ in range(12):
            if stop_at is not None and url.startswith(stop_at):
                return url
            if not url.startswith(issuer + "/"):
                return url
            answer = self.request(url)
            if answer.status in {302, 303}:
                url = urljoin(url, answer.headers["Location"])
                continue
            form = re.search(r'<form id="login" method="post" action="([^"]+)"', answer.body)
            if answer.status != 200 or form is None:
                raise AssertionError(f"unexpected provider answer {answer.status}: {answer.body[:500]}")
            answer = self.request(urljoin(url, form.group(1)), {"username": username, "password": password})
            if answer.status not in {302, 303}:
                raise AssertionError(f"login refused ({answer.status}): {answer.body[:300]}")
            url = urljoin(url, answer.headers["Location"])
        raise AssertionError("too many redirects at the provider")

    def logout(self, end_session_url: str) -> str:
        """Confirm the provider's logout page; returns where it sends the browser afterwards."""
        answer = self.request(end_session_url)
        for _ in range(4):
            if answer.status in {302, 303}:
                location = urljoin(end_session_url, answer.headers["Location"])
                if not location.startswith(end_session_url.split("/session/end")[0]):
                    return location
                answer = self.request(location)
                continue
            form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', answer.body, re.S)
            if form is None:
                return ""
            fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(2)))
            fields["logout"] = "yes"
            answer = self.request(urljoin(end_session_url, form.group(1)), fields)
        return ""


def callback_params(url: str) -> dict[str, str]:
    """The query of the callback URL, one value per name."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """One provider for the whole session (about half a second to start); stopped at the end."""
    with running_provider() as provider:
        yield provider
