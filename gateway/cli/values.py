"""Validators for request values, one per :class:`~gateway.cli.spec.Kind`.

Every value that reaches an argv must pass here first.  Identifiers follow Airflow's own
rules (``KEY_REGEX``, run-id pattern) and may never start with ``-``; free text may hold
anything but NUL and is only ever passed as a single ``--flag=value`` or after ``--``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.cli.spec import Kind

# Airflow's KEY_REGEX for dag and task ids, with the 250-character column limit.
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,249}")
# Airflow 3's default run_id pattern, made to start with a word character.
_RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.~:+\-]{0,249}")
_VAR_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/:]{0,249}")
_POOL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,255}")
_CONN_TYPE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}")
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}\.(json|yaml|yml|env)")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,252}")
_PRINCIPAL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/@]{0,255}")
_DAEMON_ID = re.compile(r"[a-z0-9_]{1,40}-[0-9a-f]{8,32}")
_STATES = {"queued", "running", "success", "failed"}
_TRUE = {"", "on", "true", "1", "yes"}
_FALSE = {"off", "false", "0", "no"}
MAX_TEXT = 64 * 1024


class InvalidValue(ValueError):
    """The value is not acceptable; the message says why without repeating the value."""


@dataclass(frozen=True, slots=True)
class Upload:
    """A file sent as a multipart part: the client's file name (untrusted) and its bytes."""

    filename: str
    data: bytes = field(repr=False)


Value = str | bool | int | tuple[str, ...] | Upload
# A relative folder under the DAGs folder: plain names joined by '/', at most 4 deep.
_SUBFOLDER_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,63}")


def _match(pattern: re.Pattern[str], what: str, allowed: str = "_ . -") -> Callable[[str], str]:
    def check(raw: str) -> str:
        if not pattern.fullmatch(raw):
            raise InvalidValue(
                f"not a valid {what} (ASCII letters, digits and {allowed} only, not starting with '-')"
            )
        return raw

    return check


def _text(raw: str) -> str:
    if "\x00" in raw:
        raise InvalidValue("contains a NUL character")
    if len(raw) > MAX_TEXT:
        raise InvalidValue(f"longer than {MAX_TEXT} characters")
    return raw


def _date(raw: str) -> str:
    text = raw.strip()
    if not text or text.startswith("-"):
        raise InvalidValue("not an ISO 8601 date (e.g. 2017-01-02 or 2017-01-02T03:04:05)")
    try:
        # Python 3.11's parser takes the ISO 8601 forms Airflow's CLI takes, "Z" included.
        dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue("not an ISO 8601 date (e.g. 2017-01-02 or 2017-01-02T03:04:05)") from None
    return text


def _date_or_run_id(raw: str) -> str:
    try:
        return _date(raw)
    except InvalidValue:
        pass
    if _RUN_ID.fullmatch(raw):
        return raw
    raise InvalidValue("neither an ISO 8601 date nor a valid run_id")


def _json_object(raw: str) -> str:
    _text(raw)
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidValue("not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidValue("must be a JSON object")
    return json.dumps(value, separators=(",", ":"))


def parse_bool(raw: str) -> bool:
    """The original plugin's booleans: a bare ``&flag`` is true, as are on/true/1/yes."""
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidValue("not a boolean (use on/true/1/yes or off/false/0/no)")


def _int(raw: str) -> int:
    text = raw.strip()
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise InvalidValue("not a non-negative integer")
    return int(text)


def _port(raw: str) -> int:
    port = _int(raw)
    if not 1 <= port <= 65535:
        raise InvalidValue("not a TCP port (1-65535)")
    return port


def _regex(raw: str) -> str:
    _text(raw)
    if "\n" in raw or "\r" in raw:
        raise InvalidValue("a task regex may not contain a line break")
    try:
        re.compile(raw)
    except re.error:
        raise InvalidValue("not a valid regular expression") from None
    return raw


def _pool_set(raw: str) -> tuple[str, ...]:
    """The original ``set=NAME SLOTS DESCRIPTION`` form, split into three argv elements."""
    parts = raw.split(None, 2)
    if len(parts) < 2:
        raise InvalidValue("expected 'NAME SLOT_COUNT [DESCRIPTION]'")
    name = _match(_POOL, "pool name")(parts[0])
    slots = str(_int(parts[1]))
    return (name, slots, _text(parts[2]) if len(parts) == 3 else "")


def _conn_uri(raw: str) -> str:
    _text(raw)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-_]*://\S*", raw):
        raise InvalidValue("not a connection URI (scheme://...)")
    return raw


def _server_path(raw: str) -> str:
    _text(raw)
    if not raw.startswith("/") or "\n" in raw or any(part == ".." for part in raw.split("/")):
        raise InvalidValue("must be an absolute path without '..'")
    return raw


def _host(raw: str) -> str:
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return _match(_HOST, "host name")(raw)


def _queues(raw: str) -> str:
    names = [q.strip() for q in raw.split(",")]
    if not names or not all(_KEY.fullmatch(q) for q in names):
        raise InvalidValue("not a comma-separated list of queue names")
    return ",".join(names)


def _state(raw: str) -> str:
    if raw not in _STATES:
        raise InvalidValue(f"not one of {', '.join(sorted(_STATES))}")
    return raw


def _upload(raw: str) -> str:
    raise InvalidValue("must be sent as a file in a multipart/form-data POST body")


def _subfolder(raw: str) -> str:
    parts = raw.split("/")
    if len(parts) > 4 or not all(_SUBFOLDER_PART.fullmatch(part) for part in parts):
        raise InvalidValue(
            "not a folder under the DAGs folder (up to 4 names of letters, digits, _ and - joined by '/')"
        )
    return "/".join(parts)


_VALIDATORS: dict[Kind, Callable[[str], Any]] = {
    Kind.DAG_ID: _match(_KEY, "DAG id"),
    Kind.TASK_ID: _match(_KEY, "task id"),
    Kind.RUN_ID: _match(_RUN_ID, "run id", "_ . ~ : + -"),
    Kind.DATE: _date,
    Kind.DATE_OR_RUN_ID: _date_or_run_id,
    Kind.JSON_OBJECT: _json_object,
    Kind.BOOL: parse_bool,
    Kind.INT: _int,
    Kind.PORT: _port,
    Kind.REGEX: _regex,
    Kind.POOL: _match(_POOL, "pool name"),
    Kind.POOL_SET: _pool_set,
    Kind.CONN_ID: _match(_KEY, "connection id"),
    Kind.CONN_URI: _conn_uri,
    Kind.CONN_TYPE: _match(_CONN_TYPE, "connection type"),
    Kind.VAR_KEY: _match(_VAR_KEY, "variable key", "_ . - / :"),
    Kind.TEXT: _text,
    Kind.FILE_NAME: _match(_FILE_NAME, "file name (.json, .yaml, .yml or .env)"),
    Kind.SERVER_PATH: _server_path,
    Kind.HOST: _host,
    Kind.QUEUES: _queues,
    Kind.PRINCIPAL: _match(_PRINCIPAL, "Kerberos principal", "_ . - / @"),
    Kind.BUNDLE: _match(_KEY, "bundle name"),
    Kind.DAEMON_ID: _match(_DAEMON_ID, "daemon id", "_ -"),
    Kind.STATE: _state,
    Kind.UPLOAD: _upload,
    Kind.SUBFOLDER: _subfolder,
}

assert set(_VALIDATORS) == set(Kind), "every Kind needs a validator"  # noqa: S101


def validate(kind: Kind, raw: str) -> Value:
    """Check ``raw`` for ``kind``; returns the value to use (bool, int, str or tuple).

    :raises InvalidValue: with a message that does not repeat the value.
    """
    return _VALIDATORS[kind](raw)  # type: ignore[no-any-return]
