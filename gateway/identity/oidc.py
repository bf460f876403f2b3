"""The OpenID Connect relying party: discovery, the authorization code flow with PKCE, ID tokens.

Self-contained: every setting is a constructor parameter, nothing reads the config or a
WSGI environ.  Token validation is PyJWT's (already the gateway's JWT library, with the
same rules as :mod:`gateway.identity.jwt`): the algorithms come from the provider's
discovery document filtered to asymmetric ones (never ``none``, never ``HS*``, whose key
would be the client secret), the header's ``alg`` only picks among them and must fit the
key's type; the JWKS is :class:`~gateway.identity.jwt.JwksCache` (short timeout, bounded
refetch for an unknown ``kid``, last good key set kept).  The protocol around it (an
authorization URL, one form POST to the token endpoint) is a few lines of standard library.

Every failure is an :class:`OidcError` with an HTTP status and a message that names the
problem, never a secret: 503 provider unreachable, 502 provider answered badly (or is
misconfigured), 401 a code, refresh token or ID token refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from gateway.identity.jwt import JwksCache, KeysUnavailable
from gateway.identity.principal import Principal, claim_values

log = logging.getLogger("gateway.identity.oidc")

MAX_RESPONSE_BYTES = 1024 * 1024
#: Asymmetric algorithm prefixes and the JWK key type each needs.  ``HS*`` is absent on
#: purpose: a provider's HS256 ID token is signed with the client secret, which every
#: holder of that secret could forge.
_KTY_FOR = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


class OidcError(Exception):
    """A sign-on step failed; ``status`` is the HTTP status to answer with, ``message`` is safe to show."""

    status = 502

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class ProviderUnavailable(OidcError):
    """The provider could not be reached (connection refused, timeout, DNS): 503."""

    status = 503


class ProviderError(OidcError):
    """The provider answered badly (5xx, not JSON, too large, missing fields, refused our client): 502."""

    status = 502


class GrantRejected(OidcError):
    """The token endpoint refused a code or refresh token (``invalid_grant``: used, expired, revoked): 401."""

    status = 401

    def __init__(self, message: str, *, error: str = "invalid_grant") -> None:
        super().__init__(message)
        self.error = error


class InvalidIdToken(OidcError):
    """An ID token failed validation (signature, algorithm, issuer, audience, time, nonce): 401."""

    status = 401


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the discovery document the gateway uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    algorithms: tuple[str, ...]
    code_challenge_methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """A started login: the URL to send the browser to, and what the callback must check.

    ``state`` goes to the provider and comes back; ``nonce`` must come back inside the ID
    token; ``code_verifier`` proves at the token endpoint that the code is ours (PKCE).
    Keep all three server-side (or sealed), single use.
    """

    url: str
    state: str
    nonce: str
    code_verifier: str
    redirect_url: str


@dataclass(frozen=True, slots=True)
class Identity:
    """Who signed in: the principal's name and groups, from the validated ID token."""

    name: str
    groups: frozenset[str]
    subject: str

    def principal(self, claims: Mapping[str, Any] | None = None) -> Principal:
        return Principal(name=self.name, method="oidc", groups=self.groups, claims=dict(claims or {}))


@dataclass(frozen=True, slots=True)
class TokenSet:
    """A token endpoint's answer, its ID token validated (``claims``).

    After a refresh without a new ID token, ``id_token`` and ``identity`` are None: the
    session keeps the identity it has.
    """

    id_token: str | None
    claims: Mapping[str, Any]
    identity: Identity | None
    access_token: str | None = None
    refresh_token: str | None = None
    #: When the ID token expires (epoch seconds): the session renews before it.
    expires_at: float = 0.0
    raw: Mapping[str, Any] = field(default_factory=dict)


def pkce_challenge(verifier: str) -> str:
    """The S256 ``code_challenge`` for ``verifier`` (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A provider endpoint that redirects is misconfigured; a redirect is never followed with our secret."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def default_opener() -> urllib.request.OpenerDirector:
    """urllib that honours the standard proxy variables but never follows redirects."""
    return urllib.request.build_opener(_NoRedirect())


class OidcClient:
    """One relying party (client) at one OpenID provider.

    :param issuer: the provider's issuer URL, exactly as its ID tokens carry it.
    :param client_id: this gateway's client id at the provider (the ID token's audience).
    :param client_secret: sent with ``client_secret_basic`` to the token endpoint.
    :param scopes: requested scopes; ``openid`` is added when missing.
    :param username_claim: the principal's name; ``sub`` when the token lacks it.
    :param groups_claim: dotted path to the groups (``realm_access.roles``), or None.
    :param leeway_s: clock skew accepted on ``exp``, ``iat``, ``nbf``.
    :param algorithms: allowed ID token algorithms; None: the provider's advertised ones.
        Either way only asymmetric ones are kept.
    :param timeout_s: connect and read timeout of every request to the provider.
    :param max_response_bytes: larger answers are refused (502).
    :param discovery_ttl_s: how long the discovery document is used before it is refetched
        (the last good one is kept while the provider is down).
    :param jwks_lifespan_s, jwks_min_refresh_interval_s: as ``jwt.jwks_lifespan`` and
        ``jwt.jwks_min_refresh_interval``.
    :param opener: the urllib opener (tests; default :func:`default_opener`).
    :param clock: wall-clock time for token times (tests).
    """

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        scopes: Sequence[str] = ("openid", "profile", "email"),
        username_claim: str = "preferred_username",
        groups_claim: str | None = None,
        leeway_s: float = 10.0,
        algorithms: Sequence[str] | None = None,
        timeout_s: float = 5.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        discovery_ttl_s: float = 3600.0,
        jwks_lifespan_s: float = 300.0,
        jwks_min_refresh_interval_s: float = 30.0,
        opener: urllib.request.OpenerDirector | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuer.startswith(("https://", "http://")):
            raise ValueError("issuer must be an http(s) URL")
        if algorithms is not None and not [a for a in algorithms if a[:2] in _KTY_FOR]:
            raise ValueError("algorithms: none of them is asymmetric (RS*, PS*, ES*, EdDSA)")
        self.issuer = issuer
        self.client_id = client_id
        self._secret = client_secret
        self.scopes = tuple(scopes) if "openid" in scopes else ("openid", *scopes)
        self.username_claim = username_claim
        self.groups_claim = groups_claim
        self.leeway_s = leeway_s
        self._algorithms = tuple(algorithms) if algorithms is not None else None
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self.discovery_ttl_s = discovery_ttl_s
        self.jwks_lifespan_s = jwks_lifespan_s
        self.jwks_min_refresh_interval_s = jwks_min_refresh_interval_s
        self._opener = opener or default_opener()
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = 0.0
        self._jwks: JwksCache | None = None
        self._pyjwk: dict[tuple[int, str], tuple[dict[str, Any], jwt.PyJWK]] = {}

    # --- HTTP -------------------------------------------------------------------------

    def _request(self, url: str, *, form: Mapping[str, str] | None = None, what: str) -> dict[str, Any]:
        """GET (or POST ``form``) ``url`` and parse its JSON object; errors typed.

        A 400/401 from the token endpoint is returned as its JSON (an OAuth error) so the
        caller can tell a refused grant from a misconfigured client.
        """
        headers = {"Accept": "application/json"}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            basic = f"{_form_quote(self.client_id)}:{_form_quote(self._secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(basic).decode("ascii")
        request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - http(s), checked
        status = 200
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                body = response.read(self.max_response_bytes + 1)
        except urllib.error.HTTPError as exc:
            status = exc.code
            try:
                body = exc.read(self.max_response_bytes + 1)
            except OSError:
                body = b""
            finally:
                exc.close()
            if not (form is not None and status in (400, 401)):
                raise ProviderError(f"the OpenID provider answered {status} to the {what} request") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ProviderUnavailable(
                f"the OpenID provider is unreachable ({what}: {type(reason).__name__}: {reason})"
            ) from None
        if len(body) > self.max_response_bytes:
            raise ProviderError(
                f"the OpenID provider's {what} answer is larger than {self.max_response_bytes} bytes"
            )
        try:
            doc = json.loads(body)
        except ValueError:
            raise ProviderError(
                f"the OpenID provider's {what} answer is not JSON (status {status})"
            ) from None
        if not isinstance(doc, dict):
            raise ProviderError(f"the OpenID provider's {what} answer is not a JSON object")
        if status != 200:
            doc["_status"] = status
        return doc

    # --- discovery ----------------------------------------------------------------------

    def metadata(self) -> ProviderMetadata:
        """The discovery document, fetched once and refetched after ``discovery_ttl_s``.

        :raises ProviderUnavailable, ProviderError: when it cannot be fetched and none is cached.
        """
        with self._lock:
            now = time.monotonic()
            if self._metadata is not None and now - self._metadata_at < self.discovery_ttl_s:
                return self._metadata
            try:
                fresh = self._discover()
            except OidcError as exc:
                if self._metadata is None:
                    raise
                log.warning("OpenID discovery failed (%s); keeping the last good document", exc.message)
                self._metadata_at = now  # retried after another TTL, not on every request
                return self._metadata
            if self._jwks is None or self._jwks.url != fresh.jwks_uri:
                self._jwks = JwksCache(
                    fresh.jwks_uri,
                    timeout_s=self.timeout_s,
                    lifespan_s=self.jwks_lifespan_s,
                    min_refresh_interval_s=self.jwks_min_refresh_interval_s,
                )
            self._metadata, self._metadata_at = fresh, now
            return fresh

    def _discover(self) -> ProviderMetadata:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._request(url, what="discovery")
        if doc.get("issuer") != self.issuer:
            # OpenID Connect Discovery 4.3: the document must name exactly the configured issuer.
            raise ProviderError(
                f"the discovery document names issuer {str(doc.get('issuer'))[:200]!r}, not {self.issuer!r}"
            )
        endpoints = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(name)
            if not isinstance(value, str) or not value.startswith(("https://", "http://")):
                raise ProviderError(f"the discovery document has no usable {name}")
            endpoints[name] = value
        end_session = doc.get("end_session_endpoint")
        advertised = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
        if not isinstance(advertised, list):
            raise ProviderError(
                "the discovery document's id_token_signing_alg_values_supported is not a list"
            )
        wanted = self._algorithms if self._algorithms is not None else tuple(str(a) for a in advertised)
        algorithms = tuple(a for a in wanted if a[:2] in _KTY_FOR and a in advertised)
        if not algorithms:
            raise ProviderError(
                "the provider signs ID tokens with no asymmetric algorithm the gateway accepts"
                f" (it advertises {', '.join(map(str, advertised))[:200]})"
            )
        methods = doc.get("code_challenge_methods_supported")
        return ProviderMetadata(
            issuer=self.issuer,
            end_session_endpoint=end_session if isinstance(end_session, str) and end_session else None,
            algorithms=algorithms,
            code_challenge_methods=tuple(methods) if isinstance(methods, list) else (),
            **endpoints,
        )

    # --- the flow -----------------------------------------------------------------------

    def begin(self, redirect_url: str, *, extra: Mapping[str, str] | None = None) -> LoginRequest:
        """A new login: fresh ``state``, ``nonce`` and PKCE verifier, and the authorization URL."""
        meta = self.metadata()
        state, nonce, verifier = (
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(48),
        )
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_url,
            "scope": " ".join(self.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
            **(extra or {}),
        }
        sep = "&" if "?" in meta.authorization_endpoint else "?"
        url = meta.authorization_endpoint + sep + urllib.parse.urlencode(params)
        return LoginRequest(
            url=url, state=state, nonce=nonce, code_verifier=verifier, redirect_url=redirect_url
        )

    def exchange(self, code: str, *, code_verifier: str, nonce: str, redirect_url: str) -> TokenSet:
        """Redeem an authorization code; the ID token is validated, ``nonce`` included.

        :raises GrantRejected: the code is unknown, used, expired, or the verifier is wrong.
        :raises InvalidIdToken, ProviderError, ProviderUnavailable: as named.
        """
        doc = self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_url,
                "code_verifier": code_verifier,
            },
            what="code exchange",
        )
        id_token = doc.get("id_token")
        if not isinstance(id_token, str):
            raise ProviderError("the token endpoint answered without an ID token (is 'openid' in scopes?)")
        claims = self.validate_id_token(id_token, nonce=nonce)
        return self._token_set(doc, id_token, claims)

    def refresh(self, refresh_token: str, *, subject: str) -> TokenSet:
        """Use a refresh token; a new ID token, when given, must be valid and for the same ``subject``.

        A provider that answers without an ID token keeps the session's identity (OpenID
        Connect Core 12.2); its access token expiry is then the new deadline.
        """
        doc = self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, what="refresh"
        )
        id_token = doc.get("id_token")
        if isinstance(id_token, str):
            claims = self.validate_id_token(id_token, nonce=None)
            if claims.get("sub") != subject:
                raise InvalidIdToken("the refreshed ID token is for another subject")
            return self._token_set(doc, id_token, claims)
        expires_in = doc.get("expires_in")
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            raise ProviderError("the refresh answer has neither an ID token nor expires_in")
        return TokenSet(
            id_token=None,
            claims={"sub": subject},
            identity=None,
            access_token=_opt_str(doc.get("access_token")),
            refresh_token=_opt_str(doc.get("refresh_token")) or refresh_token,
            expires_at=self._clock() + float(expires_in),
            raw={k: v for k, v in doc.items() if k not in _SECRET_KEYS},
        )

    def _token_request(self, form: dict[str, str], *, what: str) -> dict[str, Any]:
        meta = self.metadata()
        doc = self._request(meta.token_endpoint, form=form, what=what)
        status = doc.pop("_status", 200)
        if status != 200:
            error = str(doc.get("error", "unknown"))[:100]
            if error == "invalid_grant":
                raise GrantRejected(f"the OpenID provider refused the {what}: invalid_grant")
            # invalid_client, unauthorized_client...: the gateway's client settings are wrong.
            raise ProviderError(
                f"the OpenID provider refused the {what}: {error} (check client_id and secret)"
            )
        token_type = str(doc.get("token_type", "Bearer"))
        if token_type.lower() not in ("bearer", "dpop"):
            raise ProviderError(f"the token endpoint answered token_type {token_type[:40]!r}")
        return doc

    def _token_set(self, doc: Mapping[str, Any], id_token: str, claims: Mapping[str, Any]) -> TokenSet:
        return TokenSet(
            id_token=id_token,
            claims=claims,
            identity=self.identity(claims),
            access_token=_opt_str(doc.get("access_token")),
            refresh_token=_opt_str(doc.get("refresh_token")),
            expires_at=float(claims["exp"]),
            raw={k: v for k, v in doc.items() if k not in _SECRET_KEYS},
        )

    # --- ID tokens ------------------------------------------------------------------------

    def validate_id_token(self, token: str, *, nonce: str | None) -> dict[str, Any]:
        """The claims of a valid ID token (OpenID Connect Core 3.1.3.7).

        :param nonce: the login's nonce, compared in constant time; None after a refresh.
        :raises InvalidIdToken: a fixed reason per failure; the token is never echoed.
        """
        meta = self.metadata()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidIdToken("the ID token is malformed") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in meta.algorithms:
            raise InvalidIdToken(f"the ID token's algorithm {str(alg)[:20]!r} is not one the provider uses")
        if kid is not None and not isinstance(kid, str):
            raise InvalidIdToken("the ID token's kid is not a string")
        key = self._key(alg, kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.client_id,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidIdToken("the ID token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidIdToken("the ID token is not for this client (aud)") from None
        except jwt.InvalidIssuerError:
            raise InvalidIdToken("the ID token is from another issuer (iss)") from None
        except jwt.ImmatureSignatureError:
            raise InvalidIdToken("the ID token is not valid yet (nbf/iat)") from None
        except jwt.InvalidSignatureError:
            raise InvalidIdToken("the ID token's signature is invalid") from None
        except (jwt.InvalidTokenError, jwt.PyJWKError) as exc:
            raise InvalidIdToken(f"the ID token is invalid ({type(exc).__name__})") from None
        aud = claims["aud"]
        azp = claims.get("azp")
        # Core 3.1.3.7 (4, 5): several audiences need an azp, and an azp must be us.
        if (isinstance(aud, list) and len(aud) > 1 and azp is None) or (
            azp is not None and azp != self.client_id
        ):
            raise InvalidIdToken("the ID token was issued to another party (azp)")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise InvalidIdToken("the ID token has no subject")
        if nonce is not None:
            got = claims.get("nonce")
            if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
                raise InvalidIdToken("the ID token's nonce does not match this login")
        return claims

    def _key(self, alg: str, kid: str | None) -> jwt.PyJWK:
        assert self._jwks is not None  # noqa: S101 - metadata() creates it
        try:
            jwk = self._jwks.get(kid)
        except KeysUnavailable:
            raise ProviderUnavailable("the OpenID provider's key set (jwks_uri) cannot be fetched") from None
        if jwk is None:
            raise InvalidIdToken("the ID token is signed with a key the provider does not publish (kid)")
        if jwk.get("kty") != _KTY_FOR.get(alg[:2]) or jwk.get("alg", alg) != alg:
            raise InvalidIdToken("the ID token's algorithm does not fit the provider's key")
        # Parsed once per key set, as in gateway.identity.jwt; the dict is kept so id() stays unique.
        cached = self._pyjwk.get((id(jwk), alg))
        if cached is None or cached[0] is not jwk:
            if len(self._pyjwk) > 64:
                self._pyjwk.clear()
            try:
                cached = (jwk, jwt.PyJWK(jwk, algorithm=alg))
            except jwt.PyJWKError:
                raise ProviderError("the provider publishes a key PyJWT cannot read") from None
            self._pyjwk[(id(jwk), alg)] = cached
        return cached[1]

    # --- identity and logout ------------------------------------------------------------------

    def identity(self, claims: Mapping[str, Any]) -> Identity:
        """The principal's name (``username_claim``, else ``sub``) and groups (``groups_claim``)."""
        subject = str(claims["sub"])
        names = claim_values(claims, self.username_claim)
        name = names[0] if len(names) == 1 and names[0] else subject
        groups = claim_values(claims, self.groups_claim) if self.groups_claim else ()
        return Identity(name=name, groups=frozenset(groups), subject=subject)

    def end_session_url(
        self, *, id_token_hint: str | None, post_logout_redirect_url: str | None, state: str | None = None
    ) -> str | None:
        """Where to send the browser to end the provider's session too; None when it has no such endpoint.

        Uses the cached discovery document only, so a logout works while the provider is down.
        """
        meta = self._metadata
        if meta is None:
            try:
                meta = self.metadata()
            except OidcError:
                return None
        if meta.end_session_endpoint is None:
            return None
        params = {"client_id": self.client_id}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        if post_logout_redirect_url:
            params["post_logout_redirect_uri"] = post_logout_redirect_url
        if state:
            params["state"] = state
        sep = "&" if "?" in meta.end_session_endpoint else "?"
        return meta.end_session_endpoint + sep + urllib.parse.urlencode(params)


_SECRET_KEYS = frozenset({"access_token", "refresh_token", "id_token"})


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _form_quote(value: str) -> str:
    """RFC 6749 2.3.1: client id and secret are form-urlencoded before Basic encoding."""
    return urllib.parse.quote_plus(value)
