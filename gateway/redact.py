"""Masking secrets in anything the gateway echoes or logs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
# Airflow's DEFAULT_SENSITIVE_FIELDS (airflow/utils/log/secrets_masker.py), plus "token".
SENSITIVE_NAMES = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "authorization",
        "passphrase",
        "passwd",
        "password",
        "private_key",
        "secret",
        "token",
        "keyfile_dict",
        "service_account",
    }
)
_URI_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-_]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<at>@)")


def is_sensitive(name: str, extra: Iterable[str] = ()) -> bool:
    """True when a key or argument name looks like it holds a secret (substring match)."""
    lowered = name.lower()
    return any(word in lowered for word in (*SENSITIVE_NAMES, *extra))


def mask_uri(text: str) -> str:
    """``postgresql://user:pw@host`` -> ``postgresql://user:***@host``."""
    return _URI_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}{m.group('at')}", text)


def redact_arguments(args: Mapping[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
    """Request arguments safe to echo or log.

    Masks URI passwords, ``conn_extra`` (often holds keys), sensitive-looking argument
    names, and the value of a variable whose key looks sensitive.
    """
    extra = tuple(extra)
    out: dict[str, Any] = {}
    sensitive_var = any(
        isinstance(args.get(k), str) and is_sensitive(str(args.get(k)), extra) for k in ("set", "get")
    )
    for name, value in args.items():
        if name == "conn_extra" or is_sensitive(name, extra) or (name == "set_value" and sensitive_var):
            out[name] = MASK
        elif isinstance(value, str):
            out[name] = mask_uri(value)
        else:
            out[name] = value
    return out


def redact_argv(argv: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """Replace every argv element (or ``--flag=value`` value) equal to a known secret."""
    hidden = {s for s in secrets if s}
    out = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if arg in hidden:
            out.append(MASK)
        elif eq and flag.startswith("--") and value in hidden:
            out.append(f"{flag}={MASK}")
        else:
            out.append(mask_uri(arg))
    return out
