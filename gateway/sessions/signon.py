"""Sign-on in the request's way: the session principal source, the browser's redirect to the
login, the CSRF rules, and the three steps behind the login, callback and logout routes.

:class:`SignOn` is a :class:`~gateway.request.authentication.PrincipalSource` (the session
cookie to a principal with method ``oidc``) placed after the gateway's credentials, so a
request with a plugin token, named token or JWT is unaffected; its :meth:`SignOn.missing_with`
wraps the authenticator's ``missing``: a browser request (HTML accepted, GET/HEAD, no
``Authorization``) to a protected proxied path is redirected to the login; everything else
is answered as before.

CSRF: a session cookie is ambient authority.

* On the gateway's own credential routes (the API, jobs), every request authenticated by the
  cookie must send the session's CSRF token in ``X-CSRF-Token`` (the page does): the
  plugin's API runs calls on GET too, so the safe-method exemption does not hold there;
  unsafe methods must in addition come from the gateway's origin (``Origin``, or
  ``Sec-Fetch-Site: same-origin``).
* On proxied paths, an unsafe request carrying the session must be same-origin; Airflow keeps
  its own CSRF protection on top.

The gateway's cookies are removed from ``Cookie`` before a request is proxied (:meth:`SignOn.strip`):
Airflow never sees a session id.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from werkzeug.wrappers import Response

from gateway.config.loader import GatewayConfig
from gateway.config.settings import ConfigError
from gateway.core.errors import GatewayError, Refused, Unauthorized
from gateway.identity.oidc import OidcClient, OidcError, ProviderUnavailable
from gateway.identity.principal import ANONYMOUS, Principal
from gateway.sessions.browser import (
    csrf_refusal,
    expired_cookie,
    origin_of,
    safe_next,
    same_origin,
    session_cookie,
)
from gateway.sessions.store import SessionRecord, Sessions, SessionStore, StoreError, new_id

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("gateway.sessions")

PAGE_PATH = "/admin/rest_api/"
LOGIN_PATH = "/admin/rest_api/login"
CALLBACK_PATH = "/admin/rest_api/oidc/callback"
LOGOUT_PATH = "/admin/rest_api/logout"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SQLITE_NAME = "sessions.sqlite3"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Renew with the refresh token once the ID token has less than this left.
REFRESH_MARGIN_S = 60.0
#: After a refresh that could not reach the provider, wait this long before trying again.
REFRESH_RETRY_S = 10.0
#: Sweep ended sessions and stale logins at most this often (per process).
SWEEP_INTERVAL_S = 300.0


class MissingCredential(Protocol):
    """:class:`gateway.request.authentication.MissingCredential`, restated (a lower layer)."""

    def __call__(self, environ: WSGIEnvironment, *, own: bool) -> Principal: ...


class LoginRedirect(GatewayError):
    """A browser without a session, sent to the login (303); rendered as a plain redirect."""

    code = 303
    description = "Sign-in required"

    def __init__(self, location: str) -> None:
        super().__init__(headers={"Location": location})
        self.location = location

    def to_response(self, envelope: object) -> Response:
        return Response("", status=303, headers={"Location": self.location, "Cache-Control": "no-store"})


def cookie_value(header: str | None, name: str) -> str | None:
    """The first value of cookie ``name`` in a ``Cookie`` header (no full parse on the hot path)."""
    if not header or name not in header:
        return None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip().strip('"')
    return None


def without_cookies(header: str, names: Iterable[str]) -> str:
    """``header`` with the cookies ``names`` removed."""
    drop = set(names)
    kept = [part.strip() for part in header.split(";") if part.strip().partition("=")[0] not in drop]
    return "; ".join(p for p in kept if p)


def request_origin(environ: WSGIEnvironment) -> str:
    """The gateway's origin as this request reached it (after the trusted-proxy layer)."""
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
    return origin_of(str(environ.get("wsgi.url_scheme", "http")), str(host))


def is_https(environ: WSGIEnvironment) -> bool:
    return str(environ.get("wsgi.url_scheme", "http")).lower() == "https"


def wants_html(environ: WSGIEnvironment) -> bool:
    return "text/html" in str(environ.get("HTTP_ACCEPT", ""))


def session_store(config: GatewayConfig) -> SessionStore:
    """The shared session store: ``sessions.database_url`` (PostgreSQL), else SQLite in the state dir."""
    conf = config.sessions
    if conf.database_url is not None:
        return SessionStore(url=conf.database_url.value)
    return SessionStore(sqlite_path=config.gateway.state_dir / SQLITE_NAME)


class SignOn:
    """Browser sign-on for one gateway: the OpenID client, the session store and the cookie rules.

    :param client: the relying party at the provider.
    :param sessions: the shared sessions (with their short-TTL cache).
    :param cookie_name: the session cookie; the login's browser binding is ``<name>_login``.
    :param protect: proxied path prefixes where a browser without a session is sent to log in.
    :param redirect_url: the callback URL; None: the request's origin + :data:`CALLBACK_PATH`.
    :param post_logout_redirect_url: where the provider sends the browser after logout;
        None: the request's origin + :data:`PAGE_PATH`.
    :param extra_auth_params: added to the authorization request.
    """

    def __init__(
        self,
        client: OidcClient,
        sessions: Sessions,
        *,
        cookie_name: str = "airflow_gateway_session",
        protect: Sequence[str] = ("/",),
        redirect_url: str | None = None,
        post_logout_redirect_url: str | None = None,
        extra_auth_params: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.cookie_name = cookie_name
        self.login_cookie = f"{cookie_name}_login"
        self.protect = tuple(protect)
        self.redirect_url = redirect_url
        self.post_logout_redirect_url = post_logout_redirect_url
        self.extra_auth_params = dict(extra_auth_params or {})
        self._refresh_locks: dict[str, threading.Lock] = {}
        self._refresh_failed: dict[str, float] = {}
        self._lock = threading.Lock()
        self._swept = 0.0

    @classmethod
    def from_config(cls, config: GatewayConfig, environ: Mapping[str, str]) -> SignOn | None:
        """Sign-on as configured; None while ``oidc.issuer`` is unset.  The provider is not
        contacted here (it may be down at start-up: the login answers 503 until it is back).

        :raises ConfigError: the client secret cannot be read.
        """
        oidc, conf = config.oidc, config.sessions
        if oidc.issuer is None or oidc.client_id is None:
            return None
        store = session_store(config)
        client = OidcClient(
            issuer=oidc.issuer, client_id=oidc.client_id, client_secret=_client_secret(config, environ),
            scopes=oidc.scopes, username_claim=oidc.username_claim, groups_claim=oidc.groups_claim,
            leeway_s=oidc.leeway, algorithms=oidc.algorithms or None, timeout_s=oidc.timeout,
            discovery_ttl_s=oidc.discovery_ttl, jwks_lifespan_s=oidc.jwks_lifespan,
            jwks_min_refresh_interval_s=oidc.jwks_min_refresh_interval,
        )  # fmt: skip
        sessions = Sessions(
            store, lifetime_s=conf.lifetime, idle_timeout_s=conf.idle_timeout, cache_ttl_s=conf.cache_ttl,
            login_ttl_s=conf.login_ttl,
        )  # fmt: skip
        return cls(
            client, sessions, cookie_name=conf.cookie_name, protect=oidc.protect,
            redirect_url=oidc.redirect_url, post_logout_redirect_url=oidc.post_logout_redirect_url,
            extra_auth_params=oidc.extra_auth_params,
        )  # fmt: skip

    # --- the principal source ---------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, *, own: bool) -> Principal | None:
        """The session's principal, or None without a live session (unknown, tampered,
        expired, revoked ids are all "no session").

        :raises Refused: 403 for a request that fails the CSRF rules; 503 when the session
            store is unreachable.
        """
        record = self.session(environ)
        if record is None:
            return None
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if own:
            refusal = self._own_refusal(environ, method, record)
        elif method not in SAFE_METHODS and not self._same_origin(environ):
            refusal = "cross-origin request with the session cookie"
        else:
            refusal = None
        if refusal is not None:
            raise Refused(f"Refused: {refusal} (CSRF protection)", 403, extra={"error": "csrf"})
        return record.as_principal()

    def _same_origin(self, environ: WSGIEnvironment) -> bool:
        """``Sec-Fetch-Site`` when the browser sends it (no page can set it; a page with
        ``Referrer-Policy: no-referrer`` makes its own form posts say ``Origin: null``), else
        ``Origin`` against the request's own origin."""
        site = environ.get("HTTP_SEC_FETCH_SITE")
        if site:
            return str(site).strip().lower() == "same-origin"
        return same_origin(
            origin=environ.get("HTTP_ORIGIN"), sec_fetch_site=None, expected_origin=request_origin(environ)
        )

    def _csrf_refusal(self, environ: WSGIEnvironment, record: SessionRecord, sent: str | None) -> str | None:
        """:func:`~gateway.sessions.browser.csrf_refusal` with :meth:`_same_origin`'s answer."""
        return csrf_refusal(
            origin=None, sec_fetch_site="same-origin" if self._same_origin(environ) else None,
            expected_origin="", sent_token=sent, session_token=record.csrf_token,
        )  # fmt: skip

    def _own_refusal(self, environ: WSGIEnvironment, method: str, record: SessionRecord) -> str | None:
        sent = environ.get("HTTP_X_CSRF_TOKEN")
        if method in SAFE_METHODS:
            # Origin is not sent on a same-origin GET; the token alone (a header no other site
            # can make a browser send) is the proof here.
            return csrf_refusal(
                origin=None, sec_fetch_site="same-origin", expected_origin="",
                sent_token=sent, session_token=record.csrf_token,
            )  # fmt: skip
        return self._csrf_refusal(environ, record, sent)

    def session(self, environ: WSGIEnvironment, *, renew: bool = True) -> SessionRecord | None:
        """The request's live session (renewed with its refresh token when due), or None.

        :raises Refused: 503 when the session store is unreachable (and the session not cached).
        """
        session_id = cookie_value(environ.get("HTTP_COOKIE"), self.cookie_name)
        if session_id is None:
            return None
        try:
            record = self.sessions.lookup(session_id)
        except StoreError:
            log.exception("session store unavailable")
            raise Refused("The session store is unavailable", 503) from None
        if record is None or not renew or record.refresh_token is None or record.token_expires_at is None:
            return record
        if time.time() < record.token_expires_at - REFRESH_MARGIN_S:
            return record
        return self._renew(session_id, record)

    def _renew(self, session_id: str, record: SessionRecord) -> SessionRecord | None:
        """Refresh the tokens (one thread per session and process); the session ends when the
        provider refuses, and when it cannot be reached once the ID token has expired."""
        with self._lock:
            lock = self._refresh_locks.setdefault(record.id_hash, threading.Lock())
        with lock:
            current = self.sessions.lookup(session_id)
            if current is None or current.token_expires_at is None or current.refresh_token is None:
                return current
            now = time.time()
            if now < current.token_expires_at - REFRESH_MARGIN_S:
                return current  # another thread renewed it meanwhile
            if now - self._refresh_failed.get(current.id_hash, 0.0) < REFRESH_RETRY_S:
                return current if now < current.token_expires_at else self._end(current)
            try:
                tokens = self.client.refresh(current.refresh_token, subject=current.subject)
            except ProviderUnavailable as exc:
                log.warning("session refresh: %s", exc.message)
                self._refresh_failed[current.id_hash] = now
                return current if now < current.token_expires_at else self._end(current)
            except OidcError as exc:
                log.info("session of %s ended: refresh failed (%s)", current.principal, exc.message)
                return self._end(current)
            finally:
                with self._lock:
                    self._refresh_locks.pop(record.id_hash, None)
            self._refresh_failed.pop(current.id_hash, None)
            groups = (
                tokens.identity.groups if tokens.identity is not None and self.client.groups_claim else None
            )
            renewed = self.sessions.renewed(
                current, id_token=tokens.id_token, refresh_token=tokens.refresh_token,
                token_expires_at=tokens.expires_at, groups=groups,
            )  # fmt: skip
            log.info("session of %s renewed with its refresh token (ID token valid for %.0f s)",
                     current.principal, tokens.expires_at - now)  # fmt: skip
            return renewed

    def _end(self, record: SessionRecord) -> SessionRecord | None:
        """End a session whose tokens cannot be renewed; None (no session) for the caller."""
        self._refresh_failed.pop(record.id_hash, None)
        self.sessions.revoke_hash(record.id_hash)
        return None

    def missing_with(self, fallback: MissingCredential, *, closed: bool) -> MissingCredential:
        """``fallback`` (the authenticator's), but a browser on a protected proxied path is sent
        to log in, and with ``closed`` the gateway's own routes never let an anonymous caller in
        (sign-on is a credential, even when no token is configured)."""

        def missing(environ: WSGIEnvironment, *, own: bool) -> Principal:
            if not own and self.sends_to_login(environ):
                path = str(environ.get("PATH_INFO", "/"))
                query = environ.get("QUERY_STRING")
                target = path + (f"?{query}" if query else "")
                raise LoginRedirect(f"{LOGIN_PATH}?{urllib.parse.urlencode({'next': target})}")
            principal = fallback(environ, own=own)
            if own and closed and principal is ANONYMOUS:
                raise Unauthorized()
            return principal

        return missing

    def sends_to_login(self, environ: WSGIEnvironment) -> bool:
        """A browser navigation (GET/HEAD, HTML accepted, no ``Authorization`` of Airflow's)
        to a protected path."""
        return (
            environ.get("REQUEST_METHOD") in ("GET", "HEAD")
            and "HTTP_AUTHORIZATION" not in environ
            and wants_html(environ)
            and str(environ.get("PATH_INFO", "/")).startswith(self.protect)
        )

    def strip(self, app: WSGIApplication) -> WSGIApplication:
        """``app`` (the proxy) behind a step that removes the gateway's cookies from ``Cookie``."""
        names = (self.cookie_name, self.login_cookie)

        def stripped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            header = environ.get("HTTP_COOKIE")
            if header and self.cookie_name in header:
                rest = without_cookies(header, names)
                if rest:
                    environ["HTTP_COOKIE"] = rest
                else:
                    del environ["HTTP_COOKIE"]
            return app(environ, start_response)

        return stripped

    # --- the login, callback and logout steps -------------------------------------------------

    def begin(self, environ: WSGIEnvironment, next_value: str | None) -> tuple[str, str]:
        """Start a login: the provider's authorization URL and the browser-binding cookie.

        :raises OidcError: the provider cannot be used (503/502).
        """
        redirect_url = self.redirect_url or request_origin(environ) + CALLBACK_PATH
        login = self.client.begin(redirect_url, extra=self.extra_auth_params)
        browser = new_id()
        try:
            self.sessions.start_login(
                state=login.state, browser=browser, nonce=login.nonce, code_verifier=login.code_verifier,
                redirect_url=redirect_url, next_path=safe_next(next_value),
            )  # fmt: skip
        except StoreError:
            log.exception("session store unavailable")
            raise OidcError("the session store is unavailable", status=503) from None
        self._sweep()
        cookie = session_cookie(
            self.login_cookie, browser, secure=is_https(environ), max_age=int(self.sessions.login_ttl_s),
            path=CALLBACK_PATH,
        )  # fmt: skip
        return login.url, cookie

    def finish(self, environ: WSGIEnvironment, query: Mapping[str, str]) -> tuple[str, SessionRecord, str]:
        """End a login at the callback: a **new** session (whatever cookie the browser brought).

        Returns the session id for the cookie, the record and the safe ``next`` path.

        :raises OidcError: 400 unknown/used/foreign state, 401 provider refusal or invalid
            ID token, 502/503 provider trouble.
        """
        browser = cookie_value(environ.get("HTTP_COOKIE"), self.login_cookie)
        try:
            pending = self.sessions.take_login(query.get("state"), browser)
        except StoreError:
            raise OidcError("the session store is unavailable", status=503) from None
        if "error" in query:
            raise OidcError(f"the OpenID provider refused the sign-in: {query['error'][:100]}", status=401)
        if pending is None:
            raise OidcError(
                "this sign-in is unknown, already used, too old or from another browser: sign in again",
                status=400,
            )
        code = query.get("code")
        if not code or len(code) > 4096:
            raise OidcError("the provider's answer carries no code", status=400)
        tokens = self.client.exchange(
            code, code_verifier=pending.code_verifier, nonce=pending.nonce, redirect_url=pending.redirect_url
        )
        assert tokens.identity is not None  # noqa: S101 - exchange always validates an ID token
        old = cookie_value(environ.get("HTTP_COOKIE"), self.cookie_name)
        try:
            if old:
                self.sessions.revoke(old)  # the browser's previous session (or a planted id) ends
            who = tokens.identity
            session_id, record = self.sessions.create(
                principal=who.name, subject=who.subject, groups=who.groups, id_token=tokens.id_token,
                refresh_token=tokens.refresh_token, token_expires_at=tokens.expires_at,
            )  # fmt: skip
        except StoreError:
            raise OidcError("the session store is unavailable", status=503) from None
        return session_id, record, pending.next_path

    def session_cookies(self, environ: WSGIEnvironment, session_id: str) -> list[str]:
        """The ``Set-Cookie`` values after a login: the session, and the spent binding removed."""
        secure = is_https(environ)
        return [
            session_cookie(
                self.cookie_name, session_id, secure=secure, max_age=int(self.sessions.lifetime_s)
            ),
            expired_cookie(self.login_cookie, secure=secure, path=CALLBACK_PATH),
        ]

    def logout(self, environ: WSGIEnvironment, sent_token: str | None) -> tuple[SessionRecord | None, str]:
        """End the request's session everywhere; the session ended and where to send the browser
        (the provider's end_session_endpoint when it has one, else the page).

        :raises OidcError: 403 when the request fails the CSRF check.
        """
        session_id = cookie_value(environ.get("HTTP_COOKIE"), self.cookie_name)
        record = self.session(environ, renew=False) if session_id else None
        if record is None or session_id is None:
            return None, PAGE_PATH
        refusal = self._csrf_refusal(environ, record, sent_token)
        if refusal is not None:
            raise OidcError(f"sign-out refused: {refusal}", status=403)
        try:
            self.sessions.revoke(session_id)
        except StoreError:
            raise OidcError("the session store is unavailable", status=503) from None
        location = self.client.end_session_url(
            id_token_hint=record.id_token,
            post_logout_redirect_url=self.post_logout_redirect_url or request_origin(environ) + PAGE_PATH,
        )
        return record, location or PAGE_PATH

    def expired_cookie(self, environ: WSGIEnvironment) -> str:
        return expired_cookie(self.cookie_name, secure=is_https(environ))

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._swept < SWEEP_INTERVAL_S:
            return
        self._swept = now
        try:
            self.sessions.expire()
        except StoreError:
            log.warning("could not sweep ended sessions", exc_info=True)


def _client_secret(config: GatewayConfig, environ: Mapping[str, str]) -> str:
    oidc = config.oidc
    if oidc.client_secret_env is not None:
        value = environ.get(oidc.client_secret_env, "")
        if not value:
            raise ConfigError(
                f"oidc.client_secret_env: the variable {oidc.client_secret_env} is empty or unset"
            )
        return value
    path: Path | None = oidc.client_secret_file
    if path is None:
        raise ConfigError("oidc: set oidc.client_secret_env or oidc.client_secret_file")
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"oidc.client_secret_file: cannot read {path} ({exc.strerror})") from None
    if not value:
        raise ConfigError(f"oidc.client_secret_file: {path} is empty")
    return value
