"""The original plugin's static token in its fixed header: one principal source among others."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from gateway.config.loader import RestApiPluginConfig
from gateway.core.errors import TokenAuthenticationFailed
from gateway.identity.principal import ANONYMOUS, PLUGIN_TOKEN_PRINCIPAL, Principal

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


def environ_key(header_name: str) -> str:
    """``rest_api_plugin_http_token`` -> ``HTTP_REST_API_PLUGIN_HTTP_TOKEN`` (dash or underscore)."""
    return "HTTP_" + header_name.upper().replace("-", "_")


class PluginTokenAuth:
    """The original plugin's check: a fixed header must carry the configured token.

    With no token configured every caller is anonymous (the plugin's default), and
    start-up logs a warning.

    :param config: the ``[rest_api_plugin]`` header name and expected token.
    """

    def __init__(self, config: RestApiPluginConfig) -> None:
        self.header_name = config.rest_api_plugin_http_token_header_name
        self._key = environ_key(self.header_name)
        expected = config.rest_api_plugin_expected_http_token
        self._expected = expected.value.encode() if expected else None

    @property
    def enabled(self) -> bool:
        return self._expected is not None

    def credential_keys(self) -> tuple[str, ...]:
        """Environ keys holding gateway credentials (stripped before proxying)."""
        return (self._key,)

    def present(self, environ: WSGIEnvironment) -> bool:
        """True when the request carries the plugin's header at all."""
        return self._key in environ

    def authenticate(self, environ: WSGIEnvironment) -> Principal:
        """Return the principal, or raise the plugin's 403 envelope."""
        if self._expected is None:
            return ANONYMOUS
        given = environ.get(self._key)
        if given is None:
            raise TokenAuthenticationFailed(auth_failure="missing_token")
        # compare_digest on the whole value: no early exit on a prefix match.
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self._expected):
            raise TokenAuthenticationFailed(auth_failure="bad_token")
        return PLUGIN_TOKEN_PRINCIPAL
