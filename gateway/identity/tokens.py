"""Named static tokens, configured as SHA-256 hashes, checked in constant time.

Why a plain SHA-256 and not a slow password hash: the gateway generates the tokens
(``airflow-gateway hash-token``, 256 random bits), so there is nothing to brute-force
and key stretching would only add per-request CPU that an attacker could trigger at
will.  The hash keeps the token itself out of config files, environment dumps and repos.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from gateway.config.loader import NamedToken
from gateway.identity.principal import Principal

TOKEN_BYTES = 32
MIN_TOKEN_LENGTH = 24  # characters; shorter tokens are refused by hash-token


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The config form of a token: ``sha256:<64 hex digits>``."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


class NamedTokenAuth:
    """Maps a presented token to its configured principal.

    Every configured hash is compared, with :func:`hmac.compare_digest`, whatever the
    outcome, so the time taken does not depend on whether or where the token matches.

    :param tokens: the ``[[auth.tokens]]`` entries.
    """

    def __init__(self, tokens: tuple[NamedToken, ...]) -> None:
        self._tokens = tokens

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self._tokens)

    def lookup(self, presented: str) -> Principal | None:
        """The principal for ``presented``, or None when no configured token matches."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found: NamedToken | None = None
        for token in self._tokens:
            # No break: the loop always runs over every token.
            if hmac.compare_digest(digest, token.sha256) and found is None:
                found = token
        if found is None:
            return None
        return Principal(name=found.name, method="token", groups=found.groups)
