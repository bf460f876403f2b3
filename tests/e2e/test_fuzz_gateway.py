"""Ten thousand hostile requests against real gunicorn in front of real Airflow 3.

One hypothesis run (derandomized: the same requests every time) sends raw HTTP to the
gateway's own endpoints: the API with any api name and arguments in query strings,
urlencoded, JSON and multipart bodies, malformed percent-encoding, repeated keys, nested and
duplicate-key JSON, odd and missing credentials and headers; the job endpoints aimed at real
jobs with every offset and Last-Event-ID extreme; the page, its static files, the OpenAPI
document, /healthz, /readyz, /metrics; unknown paths; and broken HTTP.  Whatever comes in,
the answer is never a 5xx, errors from the gateway are JSON (the envelope, with its status),
an ended job's event stream is whole, and no gunicorn worker dies or restarts.

It stays cheap: a policy lets only builtins and ``version`` run, so every other API is
parsed and validated in full and then refused without a CLI call; ``version`` itself runs a
few times on purpose, before and after the fuzz.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gateway.cli.apis import CATALOGUE
from gateway.identity.tokens import hash_token
from tests.e2e.conftest import TOKEN, TOKEN_HEADER
from tests.support.airflow import AirflowHome
from tests.support.fuzz import (
    OFFSET_EXTREMES,
    expected_output_status,
    offset_kind,
    seed_jobs,
    sse_complete,
    stream_refused,
    worker_pids,
    worker_trouble,
)
from tests.support.http import get
from tests.support.servers import GatewayServer, start_gateway

EXAMPLES = int(os.environ.get("AIRFLOW_GATEWAY_FUZZ_EXAMPLES", "10000"))
VERSION_CALLS = 3  # real commands sent before and again after the fuzz (the only CLI calls it makes)
SENDERS = 3  # connections in flight at once
BUDGET_S = 220.0  # the fuzz's share of the 5-minute bound; past it requests are skipped (and counted)
PLUGIN_HEADER = next(iter(TOKEN_HEADER))
NAMED_TOKEN = "fuzz-token-0123456789abcdefghijklmnopqrstuvwxyz"
METRICS_TOKEN = "fuzz-metrics-token-0123456789abcdef"
POLICY = """
[[rule]]
id = "fuzz-cheap"
effect = "allow"
description = "Builtins and the version command run; every other API is validated, then refused"
principals = ["*"]
apis = ["version", "rest_api_plugin_version", "whoami", "list_daemons"]
"""

# --- what is sent ------------------------------------------------------------------------

# `version` runs a real command: only real_commands() sends it (never mode=job: a job is a cold
# Airflow start), so random names never include it.
API_NAMES = sorted(set(CATALOGUE) - {"version"})
PARAM_NAMES = sorted(
    {p.name for api in CATALOGUE.values() for p in api.params}
    | {alias for api in CATALOGUE.values() for p in api.params for alias in p.aliases}
    | {"api", "mode", "output", "format", "offset"}
)
NASTY = [
    "",
    " ",
    "0",
    "-1",
    "1e999",
    "NaN",
    "true",
    "on",
    "null",
    "[]",
    "{}",
    '{"a":',
    '{"key": "value"}',
    "%",
    "%zz",
    "%00",
    "\x00",
    "\x7f",
    "\t\n\r",
    "../../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "/etc/passwd",
    "a" * 300,
    "${jndi:ldap://127.0.0.1/x}",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "' OR '1'='1",
    "; rm -rf /",
    "$(id)",
    "`id`",
    "-h",
    "--help",
    "--yes",
    "\u202egnp.exe",
    "\ufeff",
    "\U0001f600",
    "caf\u00e9",
    "\ud800",  # a lone surrogate: not encodable as UTF-8
    "2017-01-02T03:04:05",
    "9999-12-31T23:59:59+14:00",
    "2017-13-45",
    "example_bash_operator",
    "gw_example",
    "default_pool",
    "scheduler-0123456789abcdef",
    "*",
    "a*",
    "(a+)+$",
    "[",
    *OFFSET_EXTREMES[:12],
]
NAME_LIKE = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=24),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    NAME_LIKE,
)
KEYS = st.one_of(
    st.sampled_from(PARAM_NAMES), st.text(max_size=12), st.sampled_from(["", "api[]", "a.b", "__proto__"])
)
API_NAME = st.one_of(
    st.sampled_from(API_NAMES),
    st.sampled_from(API_NAMES).map(str.upper),
    st.sampled_from(["", "VERSION", "version ", " version", "version\x00", "Version", "../version", "api"]),
    st.text(max_size=20),
)
MALFORMED_PERCENT = [
    "%", "%G1", "%zz", "%1", "%80", "%ff%fe", "%C0%AF", "%E2%82", "%00", "%%32%35", "%u0041", "&&&", "=", "==",
    ";", "a=b;c=d", "+%2B+", "%0d%0aSet-Cookie:%20x=1", "%25", "%2", "?",
]  # fmt: skip
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-16",
    "application/JSON",
    "application/json;;;",
    "application/x-www-form-urlencoded",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    'multipart/form-data; boundary="x"',
    "text/plain",
    "application/octet-stream",
    "*/*",
    "",
    "\u00e9/\u00e9",
]
ACCEPTS = [
    "application/json",
    "text/event-stream",
    "text/event-stream, application/json",
    "application/openmetrics-text; version=1.0.0",
    "*/*",
    "text/html;q=0.9, */*;q=0.1",
    "",
    "x" * 2000,
]
OUTPUT_FORMATS = ["json", "sse", "JSON", "", "xml", "json\x00"]
JOB_STATES = ["queued", "running", "succeeded", "failed", "timed_out", "cancelled", "", "RUNNING", "x"]


@dataclass
class Fuzzed:
    """One request as bytes on the wire, and what it may answer."""

    kind: str
    method: str
    target: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    raw: bytes | None = None  # the whole request, when it is not HTTP the builder can express
    chunked: bool = False
    length: int | None = None  # a Content-Length that lies
    half_close: bool = False  # shut the write side after sending (the server sees EOF)
    oracle: Callable[[int, dict[str, str], bytes], str | None] | None = None  # a reason, or None
    answer_optional: bool = False  # broken HTTP: gunicorn may close without answering

    def wire(self, host: str) -> bytes:
        if self.raw is not None:
            return self.raw
        head = [f"{self.method} {self.target} HTTP/1.1", f"Host: {host}"]
        head += [f"{name}: {value}" for name, value in self.headers]
        body = self.body
        if self.chunked:
            head.append("Transfer-Encoding: chunked")
            body = (
                b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in _chunks(body))
                + b"0\r\n\r\n"
            )
        elif self.length is not None:
            head.append(f"Content-Length: {self.length}")
        elif body or self.method in {"POST", "PUT", "PATCH"}:
            head.append(f"Content-Length: {len(body)}")
        head.append("Connection: close")
        return "\r\n".join(head).encode("utf-8", "surrogatepass") + b"\r\n\r\n" + body


def _chunks(body: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _clean(text: str) -> str:
    """Text safe inside one header line (no line breaks, no NUL: they would start another request)."""
    return "".join(ch for ch in text if ch not in "\r\n\x00")


def _percent(text: str) -> str:
    return quote(text, safe="", errors="surrogatepass")


# --- strategies --------------------------------------------------------------------------


@st.composite
def query_string(draw: st.DrawFn, pairs: list[tuple[str, str]]) -> str:
    """The pairs as a query string: proper, with raw separators kept, or with broken escapes."""
    style = draw(st.sampled_from(["urlencode", "urlencode", "quote", "raw", "malformed"]))
    if style == "urlencode":
        return urlencode(pairs, errors="surrogatepass")
    if style == "quote":
        return "&".join(f"{_percent(k)}={_percent(v)}" for k, v in pairs)
    encoded = [f"{quote(k, safe='=&;%+', errors='surrogatepass')}={quote(v, safe='=&;%+', errors='surrogatepass')}"
               for k, v in pairs]  # fmt: skip
    if style == "malformed":
        junk = draw(st.lists(st.sampled_from(MALFORMED_PERCENT), min_size=1, max_size=4))
        for item in junk:
            encoded.insert(draw(st.integers(0, len(encoded))), item)
    return "&".join(encoded)


CREDENTIALS: dict[str, list[tuple[str, str]]] = {
    "plugin": [(PLUGIN_HEADER, TOKEN)],
    "none": [],
    "wrong": [(PLUGIN_HEADER, "nope")],
    "named": [("X-Gateway-Authorization", NAMED_TOKEN)],
    "bearer": [("Authorization", f"Bearer {NAMED_TOKEN}")],
    "jwt": [("Authorization", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.")],  # alg none
    "both": [(PLUGIN_HEADER, "nope"), ("Authorization", f"Bearer {NAMED_TOKEN}")],
    "twice": [(PLUGIN_HEADER, TOKEN), (PLUGIN_HEADER, "nope")],
    "dashes": [(PLUGIN_HEADER.replace("_", "-"), TOKEN)],
    "basic": [("Authorization", "Basic YWRtaW46YWRtaW4=")],
    "huge": [(PLUGIN_HEADER, "x" * 7000)],
    "empty": [(PLUGIN_HEADER, "")],
}


@st.composite
def credentials(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """(label, headers): mostly the valid plugin token, else every other way of (not) signing in."""
    choice = draw(st.sampled_from(["plugin"] * 12 + [*CREDENTIALS, "bad-bearer"]))
    if choice == "bad-bearer":
        return choice, [("X-Gateway-Authorization", "Bearer " + _clean(draw(st.text(max_size=40))))]
    return choice, list(CREDENTIALS[choice])


RANGES = ["bytes=0-10", "bytes=-1", "bytes=99999999999999999999-", "bytes=5-1", "bytes=0-0,0-0,0-0"]
ODD_HEADERS: dict[str, Callable[[st.DrawFn, str], tuple[str, str]]] = {
    "accept": lambda draw, value: ("Accept", draw(st.sampled_from(ACCEPTS))),
    "forwarded": lambda draw, value: (
        draw(st.sampled_from(["X-Forwarded-For", "Forwarded", "X-Forwarded-Proto", "X-Forwarded-Host"])),
        value,
    ),
    "request-id": lambda draw, value: ("X-Request-ID", value),
    "prefer": lambda draw, value: (
        "Prefer",
        draw(st.sampled_from(["respond-async", "RESPOND-ASYNC, wait=1", value])),
    ),
    "random": lambda draw, value: (
        draw(st.from_regex(r"[A-Za-z][A-Za-z0-9_\-]{0,20}", fullmatch=True)),
        value,
    ),
    "cookie": lambda draw, value: ("Cookie", f"session={value}; _token={value}"),
    "encoding": lambda draw, value: (
        "Content-Encoding",
        draw(st.sampled_from(["gzip", "deflate", "br", value])),
    ),
    "expect": lambda draw, value: ("Expect", "100-continue"),
    "long": lambda draw, value: ("X-Padding", "p" * draw(st.integers(0, 8000))),
    "range": lambda draw, value: ("Range", draw(st.sampled_from([*RANGES, value]))),
    "conditional": lambda draw, value: (
        draw(st.sampled_from(["If-None-Match", "If-Modified-Since", "If-Range"])),
        value,
    ),
    "override": lambda draw, value: (
        draw(st.sampled_from(["X-HTTP-Method-Override", "X-Method-Override"])),
        draw(st.sampled_from(["DELETE", "PUT", "GET", value])),
    ),
}


@st.composite
def odd_headers(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Up to three headers a client may add: forwarding, request ids, ranges, overrides, junk."""
    kinds = draw(st.lists(st.sampled_from(sorted(ODD_HEADERS)), max_size=3))
    return [ODD_HEADERS[kind](draw, _clean(draw(VALUES))) for kind in kinds]


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
JSON_TYPE = "application/json"
SPECIAL_JSON_NAMES = [
    "deep-arrays-100000", "deep-objects-50000", "deep-arrays-2000", "duplicate-api", "duplicate-mode",
    "lone-surrogates", "5000-digit-number", "1e999999", "bom", "utf-16", "invalid-utf-8", "null", "string",
    "array", "empty", "truncated",
]  # fmt: skip
SPECIAL_JSON = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b"[" * 2_000 + b"]" * 2_000,
    b'{"api": "whoami", "api": "nope"}',
    b'{"mode": "job", "mode": "sync", "api": "whoami"}',
    b'{"\\ud800": "\\udfff", "api": "\\ud800"}',
    b'{"api": "whoami", "dag_id": ' + b"9" * 5000 + b"}",
    b'{"api": 1e999999}',
    b"\xef\xbb\xbf" + b'{"api": "whoami"}',
    '{"api": "whoami"}'.encode("utf-16"),
    b'{"api": "who\xff\xfeami"}',
    b"null",
    b'"api"',
    b"[1, 2]",
    b"",
    b"{",
]


@st.composite
def body(draw: st.DrawFn, pairs: list[tuple[str, str]]) -> tuple[bytes, str | None]:
    """(body, content type): the arguments in one of the encodings, or something broken."""
    kind = draw(st.sampled_from(["form", "json", "json", "multipart", "special-json", "raw", "many"]))
    if kind == "form":
        return urlencode(pairs, errors="surrogatepass").encode(), "application/x-www-form-urlencoded"
    if kind == "json":
        doc: dict[str, Any] = {k: v for k, v in pairs}
        doc.update(
            draw(st.dictionaries(st.sampled_from(PARAM_NAMES) | st.text(max_size=6), JSON_VALUES, max_size=4))
        )
        return json.dumps(doc).encode("utf-8", "surrogatepass"), draw(
            st.sampled_from(["application/json", "application/json; charset=utf-8", "application/JSON"])
        )
    if kind == "special-json":
        return draw(st.sampled_from(SPECIAL_JSON)), "application/json"
    if kind == "many":
        many = "&".join(f"k{i}=v" for i in range(draw(st.sampled_from([999, 1001, 5000]))))
        return many.encode(), "application/x-www-form-urlencoded"
    if kind == "raw":
        return draw(st.binary(max_size=200)), draw(st.sampled_from(CONTENT_TYPES))
    return _multipart(draw, pairs)


# Parts whose headers are odd: werkzeug gives a part without a name the key None.
ODD_PARTS = {
    "nameless-field": b"Content-Disposition: form-data\r\n\r\nvalue\r\n",
    "nameless-file": b'Content-Disposition: form-data; filename="dag.py"\r\n\r\nimport os\r\n',
    "empty-name": b'Content-Disposition: form-data; name=""\r\n\r\nvalue\r\n',
    "no-disposition": b"Content-Type: text/plain\r\n\r\nvalue\r\n",
    "attachment": b'Content-Disposition: attachment; name="api"\r\n\r\nwhoami\r\n',
    "star-name": b"Content-Disposition: form-data; name*=UTF-8''%C3%A9\r\n\r\nvalue\r\n",
}


def _multipart(draw: st.DrawFn, pairs: list[tuple[str, str]]) -> tuple[bytes, str | None]:
    boundary = draw(st.sampled_from(["fuzzboundary", "x", "a" * 71, "--", "b\u00e9"]))
    parts = []
    for name, value in pairs:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode(
                "utf-8", "surrogatepass"
            )
        )
    for odd in draw(st.lists(st.sampled_from(sorted(ODD_PARTS)), max_size=2)):
        parts.append(f"--{boundary}\r\n".encode() + ODD_PARTS[odd])
    if draw(st.booleans()):
        filename = draw(st.sampled_from(["dag.py", "../../x.py", "x.py\x00.txt", "", "a" * 300 + ".py", "d.zip",
                                         "\u0435xample.py", "x.txt.py"]) | st.text(max_size=20))  # fmt: skip
        content = draw(st.sampled_from([b"from airflow import DAG\n", b"PK\x03\x04garbage", b"\x00" * 100]))
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="dag_file"; filename="{filename}"\r\n'
        parts.append(
            head.encode("utf-8", "surrogatepass") + b"Content-Type: text/x-python\r\n\r\n" + content + b"\r\n"
        )
    ending = draw(st.sampled_from([f"--{boundary}--\r\n", "", f"--{boundary}", "--other--\r\n"]))
    content_type = draw(
        st.sampled_from(
            [f"multipart/form-data; boundary={boundary}", "multipart/form-data", f'multipart/form-data; boundary="{boundary}"']
        )
    )  # fmt: skip
    return b"".join(parts) + ending.encode("utf-8", "surrogatepass"), content_type


def _api_oracle(status: int, headers: dict[str, str], data: bytes) -> str | None:
    if "x-request-id" not in headers or not data:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return "the API answered something else than JSON"
    if not isinstance(doc, dict) or doc.get("http_response_code") != status:
        return (
            f"envelope http_response_code {doc.get('http_response_code') if isinstance(doc, dict) else doc!r}"
        )
    return None


@st.composite
def api_request(draw: st.DrawFn) -> Fuzzed:
    name = draw(API_NAME)
    pairs = draw(st.lists(st.tuples(KEYS, VALUES), max_size=5))
    if draw(st.booleans()):
        pairs.append(("mode", draw(st.sampled_from(["job", "sync", "JOB", "", "x"]))))
    where = draw(st.sampled_from(["query", "query", "path", "both", "none", "body"]))
    path = "/admin/rest_api/api"
    if where in ("path", "both"):
        path += "/" + (
            _percent(name) if draw(st.booleans()) else quote(name, safe="/%", errors="surrogatepass")
        )
    if where in ("query", "both"):
        pairs.insert(draw(st.integers(0, len(pairs))), ("api", draw(API_NAME) if where == "both" else name))
    method = draw(st.sampled_from(["GET"] * 6 + ["POST"] * 8 + ["HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]))
    label, creds = draw(credentials())
    headers = creds + draw(odd_headers())
    request = Fuzzed("api", method, path, headers)
    query_pairs = pairs
    if method in ("POST", "PUT", "PATCH") and draw(st.booleans()):
        body_pairs = [p for p in pairs if p[0] != "api" or where == "body"]
        if where == "body":
            body_pairs.insert(0, ("api", name))
        query_pairs = [p for p in pairs if p not in body_pairs]
        request.body, content_type = draw(body(body_pairs))
        if content_type is not None:
            request.headers.append(("Content-Type", content_type))
        framing = draw(st.sampled_from(["length"] * 6 + ["chunked", "short", "long"]))
        request.chunked = framing == "chunked"
        if framing == "short":
            request.length = max(len(request.body) - 3, 0)
        if framing == "long":  # the body ends early: the server reads until EOF
            request.length, request.half_close = len(request.body) + 100, True
    elif draw(st.integers(0, 9)) == 0:  # a GET (or other) that still carries a body
        request.body, content_type = draw(body(pairs))
        request.headers.append(("Content-Type", content_type or ""))
    if query_pairs:
        request.target = f"{path}?{draw(query_string(query_pairs))}"
    if method != "HEAD":
        request.oracle = _api_oracle
    return request


def valid_call(draw: st.DrawFn) -> Fuzzed:
    """A call that runs: a builtin the policy allows (answered in the gateway, no CLI)."""
    api = draw(st.sampled_from(["rest_api_plugin_version", "whoami", "list_daemons"]))
    extra = draw(st.sampled_from(["", "&mode=sync", "&mode=job", "&output=json"]))
    return Fuzzed("valid call", draw(st.sampled_from(["GET", "POST"])), f"/admin/rest_api/api?api={api}{extra}",
                  [(PLUGIN_HEADER, TOKEN)], oracle=_api_oracle)  # fmt: skip


def _version_oracle(status: int, headers: dict[str, str], data: bytes) -> str | None:
    if status != 200 or json.loads(data).get("status") != "OK":
        return f"api=version answered {status}: {data[:300]!r}"
    return _api_oracle(status, headers, data)


@st.composite
def job_request(draw: st.DrawFn, job_ids: list[str]) -> Fuzzed:
    """Half of them read a real job's output with valid credentials (the offset oracle applies);
    the others go anywhere under /admin/rest_api/jobs, with any method and credentials."""
    focused = draw(st.booleans())
    label, creds = ("plugin", [(PLUGIN_HEADER, TOKEN)]) if focused else draw(credentials())
    headers = creds + draw(odd_headers())
    pairs: list[tuple[str, str]] = []
    offsets = st.sampled_from(OFFSET_EXTREMES) | st.integers(-(2**70), 2**70).map(str) | VALUES
    offset_value = draw(st.none() | offsets)
    if offset_value is not None:
        pairs.append(("offset", offset_value))
    if draw(st.booleans()):
        pairs.append(("format", draw(st.sampled_from(OUTPUT_FORMATS))))
    leid = draw(st.none() | offsets)
    if leid is not None:
        leid = _clean(leid).strip(" \t")
        headers.append(("Last-Event-ID", leid))
    if focused:
        job = draw(st.sampled_from(job_ids))
        path = f"/admin/rest_api/jobs/{job}/output"
        request = Fuzzed("job output", "GET", f"{path}?{urlencode(pairs, errors='surrogatepass')}", headers)
        request.oracle = _output_oracle(leid, offset_value)
        return request
    shape = draw(st.sampled_from(["list", "job", "output", "output"]))
    job = draw(
        st.sampled_from(job_ids) | st.from_regex(r"[0-9a-f]{32}", fullmatch=True) | st.text(max_size=40)
    )
    method = draw(st.sampled_from(["GET"] * 6 + ["DELETE", "DELETE", "HEAD", "POST", "PUT", "OPTIONS"]))
    if shape == "list":
        pairs += draw(st.lists(st.tuples(st.sampled_from(["state", "api", "limit"]), VALUES | st.sampled_from(JOB_STATES)), max_size=3))  # fmt: skip
        path = "/admin/rest_api/jobs"
    else:
        tail = "/output" if shape == "output" else ""
        tail = draw(st.sampled_from([tail] * 8 + ["/", "/outputs", "/output/x", "/../output"]))
        raw_id = quote(job, safe="/%?#&=;:@!$'()*+,", errors="surrogatepass")
        path = f"/admin/rest_api/jobs/{_percent(job) if draw(st.integers(0, 4)) else raw_id}{tail}"
    query = urlencode(pairs, errors="surrogatepass") if draw(st.booleans()) else draw(query_string(pairs))
    return Fuzzed("jobs", method, f"{path}?{query}" if query else path, headers)


def _output_oracle(
    leid: str | None, offset: str | None
) -> Callable[[int, dict[str, str], bytes], str | None]:
    expected = expected_output_status(leid, offset)

    def check(status: int, headers: dict[str, str], data: bytes) -> str | None:
        if 200 in expected and stream_refused(status, headers.get("retry-after")):
            return None
        if status not in expected:
            kinds = f"Last-Event-ID {offset_kind(leid)}, offset {offset_kind(offset)}"
            return (
                f"output {status} where {sorted(expected)} is documented ({kinds}) | "
                f"Last-Event-ID={leid!r} offset={offset!r}"
            )
        if status == 200 and headers.get("content-type", "").startswith("text/event-stream"):
            if not sse_complete(data.decode("utf-8", "replace")):
                return "an ended job's event stream without its end event"
        return None

    return check


@st.composite
def own_request(draw: st.DrawFn) -> Fuzzed:
    path = draw(
        st.sampled_from(
            ["/admin/rest_api/", "/admin/rest_api", "/admin/rest_api/openapi.json", "/healthz", "/readyz", "/metrics",
             "/admin/rest_api/static/page.js", "/admin/rest_api/static/page.css", "/healthz/", "/metrics/x"]
        )
        | st.sampled_from(["../app.py", "%2e%2e%2fapp.py", "", "page.js%00", "PAGE.JS", ".", "..", "a" * 300])
        .map(lambda name: f"/admin/rest_api/static/{name}")
    )  # fmt: skip
    method = draw(st.sampled_from(["GET", "GET", "GET", "HEAD", "POST", "DELETE", "OPTIONS", "TRACE"]))
    _, creds = draw(credentials())
    headers = creds + draw(odd_headers())
    if path == "/metrics":
        token = draw(st.sampled_from([METRICS_TOKEN, "nope", None]))
        if token is not None:
            headers.append(("Authorization", f"Bearer {token}"))
    pairs = draw(st.lists(st.tuples(KEYS, VALUES), max_size=3))
    target = f"{path}?{draw(query_string(pairs))}" if pairs else path
    return Fuzzed("own", method, target, headers)


@st.composite
def path_request(draw: st.DrawFn) -> Fuzzed:
    """Paths the gateway does not serve (no Airflow upstream here: a 404 after authentication)."""
    path = draw(
        st.sampled_from(
            ["//admin/rest_api/api?api=whoami", "/admin//rest_api/api", "/admin/rest_api/api/../jobs", "/ADMIN/rest_api/api",
             "/admin/rest_api/api%2fwhoami", "/%2e%2e/%2e%2e/etc/passwd", "/admin/rest_api/api;x=1", "/api/v2/dags",
             "/admin/rest_api/jobs/../../healthz", "/" + "a/" * 2000, "/" + "x" * 9000, "/admin/rest_api/static/",
             "/admin/rest_api/jobs//output", "/metrics%00", "/healthz?" + "a=b&" * 1500, "*"]
        )
        | st.lists(st.text(max_size=10).map(_percent), max_size=4).map(lambda parts: "/" + "/".join(parts))
    )  # fmt: skip
    _, creds = draw(credentials())
    return Fuzzed(
        "path", draw(st.sampled_from(["GET", "POST", "HEAD", "DELETE"])), path, creds + draw(odd_headers())
    )


RAW_REQUESTS = [
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET /healthz HTTP/1.0\r\n\r\n",
    b"GET /healthz\r\n\r\n",
    b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    b"GET /healthz HTTP/1.1\nHost: x\n\n",
    b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /admin/rest_api/api?api=whoami HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /admin/rest_api/api?api=whoami HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST /admin/rest_api/api HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /admin/rest_api/api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"POST /admin/rest_api/api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
    b"POST /admin/rest_api/api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nab\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo-Colon-Here\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n",
    b"GET http://evil.example/admin/rest_api/api?api=whoami HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Many: y\r\n" * 150 + b"\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
    b"GET /admin/rest_api/api?api=whoami HTTP/1.1\r\nHost: x\r\n"
    + PLUGIN_HEADER.encode()
    + b": \xff\xfe\r\n\r\n",
    b"GET /admin/rest_api/api?api=who\xffami HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /admin/rest_api/api?api=whoami HTTP/1.1\r\nHost: x\r\n",  # cut in the middle of the head
    b"\r\n\r\n",
    b"",
    # Pipelined: a second request (or a smuggled one) behind the first on one connection.
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /admin/rest_api/api?api=whoami HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /admin/rest_api/api?api=whoami HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\n\r\n"
    b"GET /admin/rest_api/jobs HTTP/1.1\r\nHost: x\r\n\r\n",
]


@st.composite
def raw_request(draw: st.DrawFn) -> Fuzzed:
    data = draw(st.sampled_from(RAW_REQUESTS) | st.binary(max_size=300))
    return Fuzzed("broken http", "RAW", "", raw=data, half_close=True, answer_optional=True)


# Weights: the API and the jobs most.
SHAPES = ["api"] * 45 + ["jobs"] * 30 + ["own"] * 10 + ["path"] * 7 + ["raw"] * 5 + ["valid"] * 3


@st.composite
def any_request(draw: st.DrawFn, job_ids: list[str]) -> Fuzzed:
    shape = draw(st.sampled_from(SHAPES))
    if shape == "valid":
        return valid_call(draw)
    if shape == "jobs":
        return draw(job_request(job_ids))
    return draw(
        {"api": api_request(), "own": own_request(), "path": path_request(), "raw": raw_request()}[shape]
    )


# --- sending and checking ----------------------------------------------------------------


@dataclass
class Outcome:
    status: int | None
    headers: dict[str, str]
    body: bytes
    error: str | None = None
    seconds: float = 0.0


def send(port: int, request: Fuzzed, timeout: float = 60.0) -> Outcome:
    started = time.monotonic()
    outcome = _send(port, request, timeout)
    outcome.seconds = time.monotonic() - started
    return outcome


def _send(port: int, request: Fuzzed, timeout: float) -> Outcome:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request.wire(f"127.0.0.1:{port}"))
            if request.half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError as exc:  # the server closed first (it refused the head)
            pass_error = f"send: {type(exc).__name__}"
        else:
            pass_error = None
        response = http.client.HTTPResponse(sock, method="HEAD" if request.method == "HEAD" else "GET")
        try:
            response.begin()
            data = response.read()
        except (http.client.HTTPException, OSError) as exc:
            return Outcome(None, {}, b"", pass_error or f"{type(exc).__name__}: {exc}")
        return Outcome(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


def judge(request: Fuzzed, outcome: Outcome) -> str | None:
    """Why the answer is wrong, or None."""
    if outcome.status is None:
        if request.answer_optional:
            return None
        return f"no answer ({(outcome.error or '').partition(':')[0]}{', a stream cut short' if 'Incomplete' in (outcome.error or '') else ''}) | {outcome.error}"
    if outcome.status == 501 and b"needs the Python package" in outcome.body:
        return None  # documented: the API needs a provider this Airflow lacks (checked before the policy)
    if outcome.status >= 500:
        return f"server error {outcome.status}: {outcome.body[:300]!r}"
    if request.method == "HEAD" or request.kind == "broken http":
        return None
    gateway_answered = "x-request-id" in outcome.headers
    content_type = outcome.headers.get("content-type", "")
    if gateway_answered and outcome.status >= 400 and not content_type.startswith("application/json"):
        return f"a {outcome.status} that is not JSON: {content_type!r} {outcome.body[:200]!r}"
    if request.oracle is not None and gateway_answered:
        return request.oracle(outcome.status, outcome.headers, outcome.body)
    return None


def repro(request: Fuzzed, port: int) -> str:
    wire = request.wire(f"127.0.0.1:{port}")
    shown = wire if len(wire) <= 600 else wire[:500] + b"...(%d bytes)" % len(wire)
    how = " (then shut the write side)" if request.half_close else ""
    return f"printf %s {shown!r}{how} | nc 127.0.0.1 PORT"


# --- the test ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_gateway(airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    tmp = tmp_path_factory.mktemp("fuzz")
    policies = tmp / "policies"
    policies.mkdir()
    (policies / "fuzz.toml").write_text(POLICY)
    server = start_gateway(
        airflow3,
        tmp,
        settings={
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
            "AUTH__TOKENS": json.dumps([{"name": "fuzzer", "sha256": hash_token(NAMED_TOKEN), "groups": []}]),
            "POLICY__DIR": str(policies),
            "METRICS__TOKEN": METRICS_TOKEN,
            "JOBS__STREAM_MAX_SECONDS": "3",
            "JOBS__MAX_QUEUED": "500",  # builtin jobs (whoami, mode=job) never wait for a 503
            "LIMITS__MAX_BODY_BYTES": str(1024 * 1024),
        },
    )
    yield server
    server.stop()


@pytest.mark.fuzz
@pytest.mark.timeout(300, func_only=True)  # the bound CI relies on (fixtures apart)
def test_ten_thousand_hostile_requests(
    fuzz_gateway: GatewayServer,
    run_report: Callable[[str], None],
    record_property: Callable[[str, object], None],
) -> None:
    """No 5xx, JSON errors, whole event streams, no worker death, /healthz fine at the end."""
    server = fuzz_gateway
    port = int(server.url.rsplit(":", 1)[1])
    # Builtin jobs: they end at once (test_openapi_fuzz.py reads a CLI job's output).
    job_ids = seed_jobs(server, dict(TOKEN_HEADER), ["rest_api_plugin_version", "whoami", "list_daemons"])
    workers_before = worker_pids(server)
    assert len(workers_before) == 2, workers_before
    log_start = len(server.log_text())
    stats: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    failures: list[tuple[str, str, str]] = []  # (kind, reason, request id)
    repros: dict[int, str] = {}
    seconds: Counter[str] = Counter()
    started = time.monotonic()

    lock = threading.Lock()

    def run(request: Fuzzed) -> None:
        if time.monotonic() - started > BUDGET_S:
            stats["skipped: over the time budget"] += 1
            return
        outcome = send(port, request)
        with lock:
            record(request, outcome)

    def record(request: Fuzzed, outcome: Outcome) -> None:
        stats["requests"] += 1
        stats[request.kind] += 1
        seconds[request.kind] += outcome.seconds
        statuses[str(outcome.status or "no answer")] += 1
        reason = judge(request, outcome)
        if reason is not None:
            stats["failures"] += 1
            if len(failures) < 2000:
                repros[len(failures)] = repro(request, port)
                failures.append((request.kind, reason, outcome.headers.get("x-request-id", "")))

    @given(request=any_request(job_ids))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # failures are collected, not shrunk: the run stays bounded
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(request: Fuzzed) -> None:
        pending.put(request)

    # Real CLI calls (`version`) before and after the fuzz: not during it, where the niced CLI
    # would starve behind the fuzz's own load and time out.
    def real_commands() -> None:
        for _ in range(VERSION_CALLS):
            request = Fuzzed("version", "GET", "/admin/rest_api/api?api=version", [(PLUGIN_HEADER, TOKEN)])
            request.oracle = _version_oracle
            outcome = send(port, request, timeout=180)
            with lock:
                record(request, outcome)

    # Senders beside hypothesis: it generates while they wait for answers.
    pending: queue.Queue[Fuzzed | None] = queue.Queue(maxsize=64)

    def sender() -> None:
        while (request := pending.get()) is not None:
            run(request)

    real_commands()
    senders = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in senders:
        thread.start()
    try:
        fuzz()
    finally:
        for _ in senders:
            pending.put(None)
        for thread in senders:
            thread.join(timeout=120)
    real_commands()
    elapsed = time.monotonic() - started
    alive = get(f"{server.url}/healthz", timeout=10)
    log_tail = server.log_text()[log_start:]
    trouble = worker_trouble(log_tail)
    workers_after = worker_pids(server)
    server_errors = sum(
        n for code, n in statuses.items() if code.isdigit() and int(code) >= 500 and code != "501"
    )
    line = (
        f"fuzz: {stats['requests']} requests in {elapsed:.0f} s ({stats['requests'] / elapsed:.0f}/s), "
        f"{server_errors} server errors, {stats['failures']} failed checks; "
        f"kinds {dict((k, v) for k, v in stats.items() if k not in ('requests', 'failures'))}; "
        f"statuses {dict(sorted(statuses.items()))} (501: an API whose provider is missing); "
        f"seconds per kind { {k: round(v) for k, v in seconds.items()} }"
    )
    run_report(line)
    record_property("fuzz_requests", stats["requests"])
    record_property("fuzz_server_errors", server_errors)
    problems = _grouped(failures, repros, log_tail)
    if workers_after != workers_before or server.proc.poll() is not None:
        problems.append(f"gunicorn workers changed: {sorted(workers_before)} -> {sorted(workers_after)}")
    if trouble:
        problems.append("gunicorn log:\n    " + "\n    ".join(trouble[:20]))
    if alive.status != 200:
        problems.append(f"/healthz after the run: {alive.status}")
    assert not problems, line + "\n" + "\n".join(problems)
    assert stats["requests"] >= 10_000 or EXAMPLES < 10_000, line


def _grouped(failures: list[tuple[str, str, str]], repros: dict[int, str], log: str) -> list[str]:
    """One example per kind of request and cause (a 5xx's exception, from the gateway log)."""
    causes = {}
    for line in log.splitlines():
        if '"unhandled error"' in line:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            causes[event.get("request_id", "")] = event.get("exception", "").strip().splitlines()[-1][:160]
    groups: dict[str, list[int]] = {}
    for index, (kind, reason, request_id) in enumerate(failures):
        cause = causes.get(request_id) or reason.partition(" | ")[0][:120]
        groups.setdefault(f"{kind}: {cause}", []).append(index)
    found_lines = [
        f"{key} ({len(found)}x)\n    {failures[found[0]][1][:300]}\n    {repros[found[0]]}"
        for key, found in groups.items()
    ]
    # A 500 whose answer the client lost (its connection reset) is still in the log.
    seen_ids = {request_id for _, _, request_id in failures}
    unseen = Counter(cause for request_id, cause in causes.items() if request_id not in seen_ids)
    return found_lines + [
        f"gateway log, unhandled error no client saw: {c} ({n}x)" for c, n in unseen.items()
    ]


# Every hand-written hostile input once, whatever hypothesis picks: the regression list.
CORPUS = (
    [
        pytest.param(
            Fuzzed(
                "corpus",
                "POST",
                "/admin/rest_api/api?api=whoami",
                [(PLUGIN_HEADER, TOKEN), ("Content-Type", JSON_TYPE)],
                body=body_,
            ),
            id=f"json-{name}",
        )
        for name, body_ in zip(SPECIAL_JSON_NAMES, SPECIAL_JSON, strict=True)
    ]
    + [
        pytest.param(
            Fuzzed(
                "corpus",
                "POST",
                "/admin/rest_api/api?api=whoami",
                [(PLUGIN_HEADER, TOKEN), ("Content-Type", "multipart/form-data; boundary=b")],
                body=b"--b\r\n" + part + b"--b--\r\n",
            ),
            id=f"multipart-{name}",
        )
        for name, part in ODD_PARTS.items()
    ]
    + [
        pytest.param(
            Fuzzed(
                "corpus",
                "GET",
                f"/admin/rest_api/api?api=whoami&x={quote(junk, safe='%&=')}",
                [(PLUGIN_HEADER, TOKEN)],
            ),
            id=f"percent-{index}",
        )
        for index, junk in enumerate(MALFORMED_PERCENT)
    ]
)


@pytest.mark.parametrize("request_", CORPUS)
def test_hostile_input_corpus(fuzz_gateway: GatewayServer, request_: Fuzzed) -> None:
    """Deep nesting, duplicate keys, lone surrogates, huge numbers, BOM, UTF-16, multipart parts
    without a name, broken escapes: each is answered (4xx or the builtin's 200), in JSON, never
    with a 5xx."""
    request_.oracle = _api_oracle
    port = int(fuzz_gateway.url.rsplit(":", 1)[1])
    outcome = send(port, request_)
    assert outcome.status is not None, outcome.error
    assert judge(request_, outcome) is None, (outcome.status, outcome.body[:300])
    assert outcome.status < 500
