"""Composes the principal sources: plugin token, named tokens, JWT.

How credentials are presented (so Airflow's own auth keeps working behind the gateway):

* the plugin's header (``rest_api_plugin_http_token``) and the gateway header
  (``X-Gateway-Authorization: Bearer <token or JWT>``) are read on every path and are
  stripped before proxying (:meth:`Authenticator.credential_keys`);
* ``Authorization: Bearer`` is read only on the gateway's own endpoints; on proxied paths
  it belongs to Airflow (its JWT, or basic auth on Airflow 2) and is never touched, nor
  are cookies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gateway.config.loader import GatewayConfig
from gateway.core.errors import TokenAuthenticationFailed, Unauthorized
from gateway.identity.jwt import JwtVerifier
from gateway.identity.plugin_token import PluginTokenAuth, environ_key
from gateway.identity.principal import ANONYMOUS, Principal
from gateway.identity.tokens import NamedTokenAuth

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

MAX_CREDENTIAL_CHARS = 8192


class Authenticator:
    """Turns a request into a :class:`Principal` or a 401/403/503 envelope error.

    :param config: the whole configuration (``rest_api_plugin``, ``auth``, ``jwt``).
    :param environ: the process environment (``jwt.key_env`` is read from it once).
    :param jwt_verifier: a ready verifier (tests); built from ``config.jwt`` otherwise.
    """

    def __init__(
        self, config: GatewayConfig, environ: Mapping[str, str], *, jwt_verifier: JwtVerifier | None = None
    ) -> None:
        self.plugin = PluginTokenAuth(config.rest_api_plugin)
        self.tokens = NamedTokenAuth(config.auth.tokens)
        self.jwt = jwt_verifier or (JwtVerifier(config.jwt, environ) if config.jwt.enabled else None)
        self.header_name = config.auth.header_name
        self._header_key = environ_key(config.auth.header_name)
        self.allow_anonymous = config.auth.allow_anonymous

    @property
    def enabled(self) -> bool:
        """True when any credential is configured (otherwise everyone is anonymous)."""
        return self.plugin.enabled or self.tokens.enabled or self.jwt is not None

    def credential_keys(self) -> tuple[str, ...]:
        """Environ keys of gateway credentials: the proxy must not forward these."""
        return (*self.plugin.credential_keys(), self._header_key)

    def _bearer(self, environ: WSGIEnvironment, own: bool) -> str | None:
        value = environ.get(self._header_key)
        if value is not None:
            text = str(value).strip()
            scheme, _, rest = text.partition(" ")
            return rest.strip() if scheme.lower() == "bearer" else text
        if own:
            scheme, _, rest = str(environ.get("HTTP_AUTHORIZATION", "")).strip().partition(" ")
            if scheme.lower() == "bearer":
                return rest.strip()
        return None

    def _verify(self, credential: str) -> Principal:
        if not credential or len(credential) > MAX_CREDENTIAL_CHARS:
            raise Unauthorized("Invalid token", error="invalid_token")
        principal = self.tokens.lookup(credential) if self.tokens.enabled else None
        if principal is not None:
            return principal
        if self.jwt is not None and credential.count(".") == 2:
            return self.jwt.verify(credential)
        raise Unauthorized("Invalid token", error="invalid_token")

    def identify(self, environ: WSGIEnvironment, *, own: bool) -> Principal | None:
        """The principal of the gateway credential the request carries; None without one.

        A :class:`~gateway.request.authentication.PrincipalSource`.

        :param own: True on the gateway's own endpoints, False on proxied paths (where
            ``Authorization`` belongs to Airflow).
        :raises TokenAuthenticationFailed: a wrong plugin token.
        :raises Unauthorized: invalid bearer credentials.
        """
        if self.plugin.enabled and self.plugin.present(environ):
            return self.plugin.authenticate(environ)
        credential = self._bearer(environ, own)
        if credential is not None:
            return self._verify(credential)
        return None

    def missing(self, environ: WSGIEnvironment | None = None, *, own: bool) -> Principal:
        """The principal of a request without gateway credentials: anonymous on proxied paths
        (Airflow's auth applies), when nothing is configured or anonymous access is allowed.

        :raises TokenAuthenticationFailed: where only the plugin token is configured.
        :raises Unauthorized: otherwise.
        """
        if not own or not self.enabled or self.allow_anonymous:
            return ANONYMOUS
        if self.plugin.enabled:
            raise TokenAuthenticationFailed(auth_failure="missing_token")  # the original plugin's answer
        raise Unauthorized()

    def authenticate(self, environ: WSGIEnvironment, *, own: bool) -> Principal:
        """The request's principal: :meth:`identify`, else :meth:`missing`.

        :param own: True on the gateway's own endpoints, False on proxied paths (where a
            request without gateway credentials is anonymous and Airflow's auth applies).
        :raises TokenAuthenticationFailed: wrong plugin token, or none where only it is configured.
        :raises Unauthorized: missing or invalid bearer credentials.
        """
        principal = self.identify(environ, own=own)
        return principal if principal is not None else self.missing(environ, own=own)
