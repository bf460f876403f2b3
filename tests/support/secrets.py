"""Generated secrets, the requests that carry them in every encoding, and a leak finder.

A secret mixes marker letters (rare upper-case ones, never hex, never an English word)
with the characters that break naive parsing (``@ : / % + #``, space, non-ASCII), at most
two of those in a row: every 4-character window of it holds a marker letter, so a window
found in an output is a leak, not a coincidence.  Outputs are searched decoded every way
the gateway or a client could have encoded them (JSON escapes, percent-encoding, ``+``).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from hypothesis import strategies as st

MARKERS = "JQXZVKW"
BREAKERS = "@:/%+# éß漢\"\\&=;,'"
WINDOW = 4
_HEX = re.compile(r"%[0-9A-F]{2}")
# Unencoded, these end a URI's authority or change the password (Airflow decodes "%"):
# no password holds them raw, and Airflow would read a part of it as the host.
_NOT_IN_USERINFO = frozenset(' "#%/?\\')


def secrets() -> st.SearchStrategy[str]:
    """8 marker letters, each followed by up to two breaking characters."""
    piece = st.tuples(st.sampled_from(MARKERS), st.text(alphabet=BREAKERS, max_size=2))
    return st.lists(piece, min_size=8, max_size=8).map(lambda ps: "".join(m + b for m, b in ps))


def lower_hex(text: str) -> str:
    return _HEX.sub(lambda m: m.group().lower(), text)


@dataclass(frozen=True)
class Carrier:
    """Where a secret travels: the call's arguments, and which of them the secret is in."""

    name: str
    args: tuple[tuple[str, str], ...]
    secret: str  # as sent (a raw URI password cannot hold whitespace)


def carrier(kind: str, secret: str, unique: str, *, lower: bool = False, ascii_json: bool = True) -> Carrier:
    """The arguments of one call carrying ``secret`` (``unique``: a fresh connection id)."""
    if kind == "conn_uri_raw":  # unencoded, as careless clients send it: "@", sub-delimiters
        secret = in_uri = "".join("K" if c in _NOT_IN_USERINFO else c for c in secret)
    else:
        in_uri = quote(secret, safe="")
        in_uri = lower_hex(in_uri) if lower else in_uri
    extra = {"password": secret, "region": "eu-west-1"} if kind == "conn_extra" else {"api_token": secret}
    calls: dict[str, list[tuple[str, str]]] = {
        "conn_uri": [
            ("api", "connections"), ("add", "true"), ("conn_id", f"gw_{unique}"),
            ("conn_uri", f"postgresql://dbuser:{in_uri}@db.example:5432/app"),
        ],
        "conn_uri_raw": [
            ("api", "connections"), ("add", "true"), ("conn_id", f"gw_{unique}"),
            ("conn_uri", f"postgresql://dbuser:{in_uri}@db.example:5432/app"),
        ],
        "conn_uri_query": [
            ("api", "connections"), ("add", "true"), ("conn_id", f"gw_{unique}"),
            ("conn_uri", f"http://api.example/v1?region=eu&token={in_uri}"),
        ],
        "conn_extra": [
            ("api", "connections"), ("add", "true"), ("conn_id", f"gw_{unique}"), ("conn_type", "http"),
            ("conn_extra", json.dumps(extra, ensure_ascii=ascii_json)),
        ],
        "conn_extra_token": [
            ("api", "connections"), ("add", "true"), ("conn_id", f"gw_{unique}"), ("conn_type", "http"),
            ("conn_extra", json.dumps(extra, ensure_ascii=ascii_json)),
        ],
        "conn_password": [
            ("api", "connections"), ("add", "true"), ("conn_id", f"gw_{unique}"), ("conn_type", "postgres"),
            ("conn_password", secret),
        ],
        "variable": [("api", "variables"), ("set", "db_password"), ("set_value", secret)],
    }  # fmt: skip
    return Carrier(kind, tuple(calls[kind]), secret)


KINDS = (
    "conn_uri",
    "conn_uri_raw",
    "conn_uri_query",
    "conn_extra",
    "conn_extra_token",
    "conn_password",
    "variable",
)
ENCODINGS = ("query-upper", "query-lower", "query-plus", "form", "form-lower", "json", "multipart", "split")


def encode_query(pairs: Iterable[tuple[str, str]], encoding: str) -> str:
    """A query string: ``%XX`` upper or lower case, ``%20`` or ``+`` for a space."""
    if encoding == "query-plus":
        return "&".join(f"{quote_plus(k)}={quote_plus(v, safe='')}" for k, v in pairs)
    text = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    return lower_hex(text) if encoding.endswith("lower") else text


@dataclass(frozen=True)
class Request:
    method: str
    query: str
    body: bytes | None
    content_type: str | None


def request(
    args: tuple[tuple[str, str], ...], encoding: str, extra: tuple[tuple[str, str], ...] = ()
) -> Request:
    """``args`` (plus ``extra``, e.g. ``mode=job``) sent in one of the encodings the gateway takes."""
    from tests.support.http import multipart

    pairs = (*args, *extra)
    if encoding.startswith("query"):
        return Request("GET", encode_query(pairs, encoding), None, None)
    if encoding.startswith("form"):
        body = "&".join(f"{quote_plus(k)}={quote_plus(v, safe='')}" for k, v in pairs)
        body = lower_hex(body) if encoding == "form-lower" else body
        return Request("POST", "", body.encode(), "application/x-www-form-urlencoded")
    if encoding == "json":
        return Request("POST", "", json.dumps(dict(pairs)).encode(), "application/json")
    if encoding == "multipart":
        data, content_type = multipart(dict(pairs), [])
        return Request("POST", "", data, content_type)
    # split: the secret-carrying (last) argument in the body, the others in the query
    body = "&".join(f"{quote_plus(k)}={quote_plus(v, safe='')}" for k, v in args[-1:])
    query = encode_query((*args[:-1], *extra), "query-upper")
    return Request("POST", query, body.encode(), "application/x-www-form-urlencoded")


def windows(secret: str) -> set[str]:
    return {secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1)}


def _strings(obj: Any, depth: int = 0) -> Iterator[str]:
    """Every string in a JSON document (keys too), and inside strings that are JSON."""
    if isinstance(obj, str):
        yield obj
        if depth < 3 and obj[:1] in '{["':
            try:
                yield from _strings(json.loads(obj), depth + 1)
            except ValueError:
                pass
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield from _strings(value, depth)
    elif isinstance(obj, list):
        for item in obj:
            yield from _strings(item, depth)


def readings(text: str) -> Iterator[str]:
    """``text`` as it is, line by line as JSON where it is, and percent-decoded both ways."""
    found = [text]
    for line in text.splitlines():
        line = line.strip()
        if line[:1] in "{[":
            try:
                found.extend(_strings(json.loads(line)))
            except ValueError:
                pass
    for item in found:
        yield item
        if "%" in item or "+" in item:
            yield unquote(item)
            yield unquote_plus(item)


def leaks(secret: str, outputs: dict[str, str]) -> dict[str, list[str]]:
    """Per output, the secret's 4-character windows found in it (empty: no leak)."""
    parts = windows(secret)
    found: dict[str, list[str]] = {}
    for where, text in outputs.items():
        hits = sorted({w for reading in readings(text) for w in parts if w in reading})
        if hits:
            found[where] = hits
    return found


def job_store_text(path: Path) -> str:
    """Everything in a SQLite job store: each text cell on a line, then the raw file bytes
    (WAL included: pages not yet checkpointed, and free pages, still hold old data)."""
    lines: list[str] = []
    if path.exists():
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names from the schema
                    lines.extend(str(cell) for cell in row if isinstance(cell, str))
        db.close()
    for raw in (path, path.with_name(path.name + "-wal")):
        if raw.exists():
            lines.append(raw.read_bytes().decode("utf-8", "replace"))
    return "\n".join(lines)
