"""Who is calling: the original plugin's static token, producing a :class:`Principal`."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.config import PluginAuthConfig
from gateway.errors import TokenAuthenticationFailed

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

log = logging.getLogger("gateway.auth")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a name, how it authenticated, and what policies can use."""

    name: str
    method: str  # "plugin-token", "token", "jwt" or "anonymous"
    groups: frozenset[str] = frozenset()
    claims: dict[str, Any] = field(default_factory=dict)


ANONYMOUS = Principal(name="anonymous", method="anonymous")
PLUGIN_TOKEN_PRINCIPAL = Principal(name="rest_api_plugin", method="plugin-token")


def environ_key(header_name: str) -> str:
    """``rest_api_plugin_http_token`` -> ``HTTP_REST_API_PLUGIN_HTTP_TOKEN`` (dash or underscore)."""
    return "HTTP_" + header_name.upper().replace("-", "_")


class PluginTokenAuth:
    """The original plugin's check: a fixed header must carry the configured token.

    With no token configured every caller is anonymous (the plugin's default), and
    start-up logs a warning.
    """

    def __init__(self, config: PluginAuthConfig) -> None:
        self.header_name = config.header_name
        self._key = environ_key(config.header_name)
        self._expected = config.expected_token.value.encode() if config.expected_token else None

    @property
    def enabled(self) -> bool:
        return self._expected is not None

    def credential_keys(self) -> tuple[str, ...]:
        """Environ keys holding gateway credentials (stripped before proxying)."""
        return (self._key,)

    def authenticate(self, environ: WSGIEnvironment) -> Principal:
        """Return the principal, or raise the plugin's 403 envelope."""
        if self._expected is None:
            return ANONYMOUS
        given = environ.get(self._key)
        # compare_digest on the whole value: no early exit on a prefix match.
        if given is None:
            raise TokenAuthenticationFailed(auth_failure="missing_token")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self._expected):
            raise TokenAuthenticationFailed(auth_failure="bad_token")
        return PLUGIN_TOKEN_PRINCIPAL
