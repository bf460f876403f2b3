"""Compatibility names: the identity code lives in :mod:`gateway.identity`."""

from __future__ import annotations

from gateway.identity.plugin_token import PluginTokenAuth, environ_key
from gateway.identity.principal import ANONYMOUS, PLUGIN_TOKEN_PRINCIPAL, Principal

__all__ = ["ANONYMOUS", "PLUGIN_TOKEN_PRINCIPAL", "PluginTokenAuth", "Principal", "environ_key"]
