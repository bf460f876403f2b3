"""Fixtures for the sign-on tests: the real OpenID provider (tests/support/oidc.py)."""

from tests.support.oidc import oidc_provider

__all__ = ["oidc_provider"]
