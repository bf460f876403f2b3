"""Masking secrets in anything the gateway echoes or logs.

Two layers work together.  Structural rules know where secrets live (a sensitive
argument or key name, a connection URI's password, ``conn_extra``, the value of a
variable whose key looks sensitive, ``Authorization``/``Cookie`` headers).  Known-secret
substitution then masks the *values* found that way (and configured tokens) wherever
else they turn up: in argv, exception messages, tracebacks.  :class:`Redactor` is also a
structlog processor, so nothing reaches a log line unmasked.

Encodings.  A secret reaches the gateway percent-encoded (upper- or lower-case hex, ``+``
for a space), in a JSON body, in multipart, and the gateway itself re-serialises JSON
arguments into argv.  One path covers every output (the audit file, stdout, the gateway
log, responses, stored jobs), decided as follows:

* a query string is recorded *decoded, masked and re-encoded* (:meth:`Redactor.query`):
  it is parsed into pairs as werkzeug parses it, each value masked by the rules of
  :meth:`Redactor.arguments` (plus the request's known secrets), and re-encoded in one
  canonical form; structure never depends on how the client encoded it;
* a known secret is also looked for in its encoded forms (percent-encoded either case,
  ``+`` for space, JSON-escaped: :func:`secret_forms`);
* free text holding percent-encoded data is masked through its decoded form: when the
  decoded text holds something to mask, the *decoded, masked* text replaces it (free text
  cannot be re-encoded faithfully; a readable decoded line is the safe choice);
* the command line shown (``airflow_cmd``) is quoted from the masked argv, never masked
  after quoting;
* an answer has only the request's own known secrets masked (:meth:`Redactor.known`: what
  the caller asked for is left alone); a job's envelope is stored masked like an audit
  event (:meth:`Redactor.value`: sensitive keys too, so exported variables are masked).

Every pass is a constant number of linear scans: redaction stays linear in its input.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, unquote_plus, urlsplit

import werkzeug.urls  # noqa: F401  registers the "werkzeug.url_quote" codec error handler

MASK = "***"
_SCALARS = frozenset({bool, int, float})
# Airflow's DEFAULT_SENSITIVE_FIELDS (airflow/utils/log/secrets_masker.py), plus "cookie"
# for HTTP headers.  Matching is by substring, as Airflow's is.
SENSITIVE_NAMES = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "authorization",
        "cookie",
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
# Literal substitution of shorter values would mangle ordinary words ("OK", "1").
MIN_SECRET_LENGTH = 4
SECRETS_KEY = "_secrets"  # event-dict key carrying per-request secret values (never rendered)

_AUTH_SCHEME = re.compile(
    r"(?i)\b(?P<scheme>bearer|basic|digest)(?P<sp>\s+)(?P<cred>[A-Za-z0-9._~+/=\-]{4,})"
)
_SCHEME_WORD = re.compile(r"(?i)bearer|basic|digest")
# Every pattern below matches without backtracking into what it has consumed (a run of
# one character class, then a fixed tail), and the scans that use them never look at a
# character twice: redaction costs time linear in its input, whatever the input.  The
# old single-pattern forms (``[\w.\-]*?word[\w.\-]*``, ``scheme://user:[^@]*@``) were
# quadratic, and matching holds the GIL: one request froze every thread of its worker.
_NAME_RUN = re.compile(r"[\w.\-]+")  # a key name: ``db_password``, ``x.api-key``
_SEPARATOR = re.compile(r"[\"']?\s*[=:]\s*[\"']?")
_VALUE = re.compile(r"[^\s&\"',;}\]]+")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SCHEME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-_")
_USER_END = re.compile(r"[:/@\s]")  # what ends the user name of ``scheme://user:pw@host``
# What ends a URI's authority for the password's sake: whitespace, and characters never
# unencoded in a URI (double quotes, angle brackets) that delimit it in text.  Not "?",
# "#" or "'" (valid in a password): a client may send a password unencoded, and it runs
# to the last "@" still (a URL with an "@" in its query may be over-masked, never under).
_AUTHORITY_END = re.compile(r"[\s\"<>]")
_QUERY_NAME = re.compile(r"[A-Za-z_][\w.\-]*")
# A request with more secret values than this (sensitive arguments, conn_extra leaves)
# is refused: each free-text scrub checks every one of them.
MAX_SECRETS = 64


def _uri_password_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each ``scheme://user:PASSWORD@host`` password, in one pass.

    The password runs to the *last* ``@`` of the authority, so one containing ``@``
    (``user:pass@word@host``) is masked whole.  Each character is looked at a bounded
    number of times: the authority end found for one URI serves every URI inside it.
    """
    spans: list[tuple[int, int]] = []
    pos, region_end, last_at = 0, -1, -1
    while True:
        i = text.find("://", pos)
        if i < 0:
            return spans
        pos = i + 3
        j = i - 1  # the scheme needs a letter (the run of scheme characters before "://")
        while j >= 0 and text[j] in _SCHEME_CHARS and text[j] not in _LETTERS:
            j -= 1
        if j < 0 or text[j] not in _LETTERS:
            continue
        user_end = _USER_END.search(text, pos)
        if user_end is None or text[user_end.start()] != ":":
            continue
        start = user_end.start() + 1
        if start > region_end:  # a new authority: find its end and its last "@" once
            found = _AUTHORITY_END.search(text, start)
            region_end = found.start() if found else len(text)
            last_at = text.rfind("@", start, region_end)
        if last_at < start:
            continue
        spans.append((start, last_at))
        pos = last_at + 1


def _replace_spans(text: str, spans: list[tuple[int, int]]) -> str:
    parts, prev = [], 0
    for start, end in spans:
        parts += [text[prev:start], MASK]
        prev = end
    parts.append(text[prev:])
    return "".join(parts)


# Variables: the value argument is secret when the key argument looks sensitive.
_VALUE_OF_KEY = {"set_value": ("set",), "value": ("key", "set")}


def is_sensitive(name: str, extra: Iterable[str] = ()) -> bool:
    """True when a key or argument name looks like it holds a secret (substring match)."""
    lowered = name.lower().replace("-", "_")  # header spelling: X-Api-Key
    return any(word in lowered for word in (*SENSITIVE_NAMES, *extra))


def mask_uri(text: str) -> str:
    """``postgresql://user:pw@host`` -> ``postgresql://user:***@host``."""
    spans = _uri_password_spans(text)
    return _replace_spans(text, spans) if spans else text


# What a re-encoded query value keeps readable: the mask itself and a URI's punctuation.
_QUERY_SAFE = "/:@*,"
_UPPER_HEX = re.compile(r"%[0-9A-F]{2}")
# The codec error handler werkzeug's own query parsing uses: invalid UTF-8 stays
# percent-encoded, so a value decoded here is the very string werkzeug handed the app.
_URL_ERRORS = "werkzeug.url_quote"


def _encode(text: str) -> str:
    # A lone surrogate (never from a WSGI server, which hands bytes as latin-1) is kept visible.
    return quote(text, safe=_QUERY_SAFE, errors="backslashreplace")


@functools.lru_cache(maxsize=4096)
def secret_forms(secret: str) -> tuple[str, ...]:
    """``secret`` and the forms it takes encoded: percent-encoded (upper- or lower-case hex,
    ``%20`` or ``+`` for a space) and JSON-escaped (ASCII-only or not); longest first."""
    percent = {quote(secret, safe=""), quote_plus(secret, safe="")}
    percent |= {_UPPER_HEX.sub(lambda m: m.group().lower(), form) for form in percent}
    escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    return tuple(sorted({secret, *percent, *escaped}, key=len, reverse=True))


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, (list, tuple)) and value else value


class Redactor:
    """Masks secrets in request arguments, argv, headers, free text and log events.

    :param extra_names: more sensitive-name substrings (``[audit] sensitive_names``).
    :param secrets: literal values always masked wherever they appear (configured tokens).

    Usage: ``structlog.configure(processors=[..., Redactor(names), JSONRenderer()])``.
    """

    def __init__(self, extra_names: Iterable[str] = (), secrets: Iterable[str] = ()) -> None:
        self.extra = tuple(n.lower() for n in extra_names if n)
        self.secrets = frozenset(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)
        self._words = tuple(sorted({*SENSITIVE_NAMES, *self.extra}))
        forms = {form for secret in self.secrets for form in secret_forms(secret)}
        # Whatever text() could change: a known secret (in any of its forms), a URI, a
        # name=value / scheme form, or percent- or plus-encoded text that may hide one.
        known = [re.escape(x) for x in sorted(forms, key=len, reverse=True)]
        self._suspect = re.compile("|".join(["://", "[=: +]", "%[0-9A-Fa-f]{2}", *known]))
        # One C-level scan instead of a Python loop over the words (a hot path: audit events).
        self._any_word = re.compile(
            "|".join(re.escape(w).replace("_", "[-_]") for w in self._words), re.IGNORECASE
        )
        self._verdicts: dict[str, bool] = {}  # names repeat (event keys, argument names)

    def is_sensitive(self, name: str) -> bool:
        verdict = self._verdicts.get(name)
        if verdict is None:
            verdict = is_sensitive(name, self.extra)
            if len(self._verdicts) < 4096:
                self._verdicts[name] = verdict
        return verdict

    def _masks_value(self, name: str, args: Mapping[str, Any]) -> bool:
        if name == "conn_extra" or self.is_sensitive(name):
            return True
        keys = _VALUE_OF_KEY.get(name, ())
        return any(isinstance(_first(args.get(k)), str) and self.is_sensitive(_first(args[k])) for k in keys)

    def secrets_in(self, args: Mapping[str, Any]) -> set[str]:
        """The raw secret values carried by request arguments, for masking them elsewhere."""
        found: set[str] = set()
        for name, raw in args.items():
            for value in raw if isinstance(raw, (list, tuple)) else [raw]:
                if not isinstance(value, str):
                    continue
                if self._masks_value(name, args):
                    found.add(value)
                    found |= self._json_secrets(value)
                found |= self._uri_secrets(value)
        return {s for s in found if len(s) >= MIN_SECRET_LENGTH}

    def masked_values(self, args: Mapping[str, Any]) -> set[str]:
        """The values of arguments masked whole, whatever their length: an argv element equal
        to one is masked (a short one is not looked for in free text: it would mangle words)."""
        return {
            value
            for name, raw in args.items()
            if self._masks_value(name, args)
            for value in (raw if isinstance(raw, (list, tuple)) else [raw])
            if isinstance(value, str) and value
        }

    def _uri_secrets(self, value: str) -> set[str]:
        if "://" not in value:
            return set()
        found = {value[start:end] for start, end in _uri_password_spans(value) if end > start}
        found |= {unquote(pw) for pw in found}
        try:
            query = urlsplit(value).query
        except ValueError:
            query = ""
        for pair in query.split("&"):
            name, eq, raw = pair.partition("=")
            bare = _VALUE.match(raw)
            if eq and bare and _QUERY_NAME.fullmatch(name) and self.is_sensitive(name):
                found |= {bare.group(), unquote(bare.group())}
        return found

    def _json_secrets(self, value: str) -> set[str]:
        """String leaves of a JSON document (``conn_extra`` holds keys and passwords)."""
        try:
            doc = json.loads(value)
        except ValueError:
            return set()
        found: set[str] = set()
        stack = [doc]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, str):
                found.add(item)
        return found

    def arguments(
        self, args: Mapping[str, Any], secrets: Iterable[str] = (), context: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Request arguments safe to echo or log (values may be strings or lists of them).

        :param secrets: the request's known secret values, masked wherever they appear.
        :param context: every argument of the call, when ``args`` is a part of them (the
            query, the body): a variable's value is secret by its key, which may be in the other.
        """
        rules = args if context is None else {**context, **args}
        secrets = tuple(secrets)
        out: dict[str, Any] = {}
        for name, value in args.items():
            if self._masks_value(name, rules):
                out[name] = [MASK for _ in value] if isinstance(value, (list, tuple)) else MASK
            elif isinstance(value, (list, tuple)):
                out[name] = [self.text(v, secrets) if isinstance(v, str) else v for v in value]
            elif isinstance(value, str):
                out[name] = self.text(value, secrets)
            else:
                out[name] = value
        return out

    def query(self, raw: str, secrets: Iterable[str] = (), context: Mapping[str, Any] | None = None) -> str:
        """A query string as recorded: decoded, masked, re-encoded.

        ``raw`` is the WSGI ``QUERY_STRING`` (its bytes as latin-1).  It is parsed into pairs
        as werkzeug parses it, each value masked by the rules of :meth:`arguments` (with the
        known ``secrets``; ``context``: every argument of the call, when known), and the pairs
        re-encoded in one form (``%XX`` upper case, ``%20`` for a space, ``/:@*,`` kept), so
        what is recorded never depends on how the client encoded the values.
        """
        if not raw:
            return ""
        try:
            text = raw.encode("latin-1").decode("utf-8", _URL_ERRORS)
        except UnicodeEncodeError:  # not from a WSGI server: already text
            text = raw
        pairs = parse_qsl(text, keep_blank_values=True, errors=_URL_ERRORS)
        args: dict[str, list[str]] = {}
        for name, value in pairs:
            args.setdefault(name, []).append(value)
        shown = self.arguments(args, secrets, context)
        seen: dict[str, int] = {}
        out = []
        for name, _ in pairs:
            n = seen[name] = seen.get(name, -1) + 1
            shown_name = self.text(name, secrets)
            out.append(f"{_encode(shown_name)}={_encode(shown[name][n])}")
        return "&".join(out)

    def argv(self, argv: Iterable[str], secrets: Iterable[str] = ()) -> list[str]:
        """An argv with every known secret (whole element or ``--flag=value`` value) masked."""
        hidden = {s for s in secrets if s} | self.secrets
        out = []
        for arg in argv:
            flag, eq, value = arg.partition("=")
            if arg in hidden:
                out.append(MASK)
            elif eq and flag.startswith("--") and (value in hidden or self.is_sensitive(flag)):
                out.append(f"{flag}={MASK}")
            else:
                out.append(self.text(arg, hidden))
        return out

    def headers(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
        """HTTP headers with credentials (Authorization, Cookie, token headers...) masked."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        return {k: MASK if self.is_sensitive(k) else self.text(v) for k, v in items}

    def text(self, text: str, secrets: Iterable[str] = ()) -> str:
        """Free text (a message, a traceback, a URL) with every recognisable secret masked,
        percent-encoded ones included (then the text comes back decoded, see the module)."""
        if not secrets and self._suspect.search(text) is None:  # one C-level scan, most strings
            return text
        secrets = tuple(secrets)
        masked = self._mask_plain(text, secrets)
        if "%" in masked or "+" in masked:
            masked = self._mask_decoded(masked, secrets)
        return masked

    def _mask_decoded(self, text: str, secrets: tuple[str, ...]) -> str:
        """Secrets visible only once the text is percent-decoded (``+`` as a space or not):
        when decoding reveals something to mask, the decoded, masked text replaces it."""
        for decode in (unquote, unquote_plus):
            decoded = decode(text, errors=_URL_ERRORS)
            if decoded != text:
                masked = self._mask_plain(decoded, secrets)
                if masked != decoded:
                    text = masked
        return text

    def _mask_known(self, text: str, secrets: tuple[str, ...]) -> str:
        """Each known secret, in each of its forms, masked."""
        present = [
            form
            for secret in (*secrets, *self.secrets)
            if len(secret) >= MIN_SECRET_LENGTH
            for form in secret_forms(secret)
            if form in text
        ]
        for secret in sorted(present, key=len, reverse=True):  # longest first: one may contain another
            text = text.replace(secret, MASK)
        return text

    def _mask_plain(self, text: str, secrets: tuple[str, ...]) -> str:
        text = self._mask_known(text, secrets)
        # Cheap checks first: most strings (ids, paths, statuses) hold none of these forms.
        if "://" in text:
            text = mask_uri(text)
        if "=" not in text and ":" not in text and " " not in text:
            return text
        if _SCHEME_WORD.search(text):
            text = _AUTH_SCHEME.sub(lambda m: f"{m.group('scheme')}{m.group('sp')}{MASK}", text)
        if ("=" in text or ":" in text) and self._any_word.search(text):
            text = self._mask_pairs(text)
        return text

    def _mask_pairs(self, text: str) -> str:
        """``name=value`` / ``"name": "value"`` / ``Name: value`` where the name contains a
        sensitive word: the value masked.  One pass over the name runs (linear time)."""
        spans: list[tuple[int, int]] = []
        resume = 0
        for run in _NAME_RUN.finditer(text):
            start, end = run.span()
            if start < resume or self._any_word.search(text, start, end) is None:
                continue
            sep = _SEPARATOR.match(text, end)
            value = sep and _VALUE.match(text, sep.end())
            if value:
                spans.append(value.span())
                resume = value.end()
        return _replace_spans(text, spans) if spans else text

    def value(self, obj: Any, secrets: Iterable[str] = ()) -> Any:
        """Any JSON-like structure: sensitive keys masked, strings scrubbed."""
        if obj is None or type(obj) in _SCALARS:  # most audit fields; skips the ABC checks below
            return obj
        secrets = tuple(secrets)
        if isinstance(obj, str):
            return self.text(obj, secrets)
        if isinstance(obj, Mapping):
            return {
                k: MASK
                if isinstance(k, str) and self.is_sensitive(k) and v is not None
                else self.value(v, secrets)
                for k, v in obj.items()
            }
        if isinstance(obj, (list, tuple, set, frozenset)):
            return [self.value(v, secrets) for v in obj]
        return obj

    def known(self, obj: Any, secrets: Iterable[str] = ()) -> Any:
        """A JSON-like answer with the known secrets (in any of their forms) masked in every
        string, and nothing else changed: what the caller asked for stays as it is, except
        the secrets its own request carried (a CLI error message may echo them)."""
        secrets = tuple(secrets)
        if isinstance(obj, str):
            return self._mask_known(obj, secrets)
        if isinstance(obj, Mapping):
            return {k: self.known(v, secrets) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.known(v, secrets) for v in obj]
        return obj

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        """structlog processor: runs after exception formatting, before rendering."""
        return self.scrub(event_dict)

    def scrub(
        self, event_dict: MutableMapping[str, Any], skip: frozenset[str] = frozenset()
    ) -> MutableMapping[str, Any]:
        """Mask secrets in an event dict, in place.

        :param skip: keys whose values the gateway produced itself (numbers, enums,
            timestamps), left as they are; the audit event's hot path uses it.
        """
        secrets = tuple(event_dict.pop(SECRETS_KEY, None) or ())
        # Runs on every audit event: None and numbers (most fields) cost one lookup each.
        # Replacing values of existing keys while iterating is safe (no resize).
        # Method calls are the cost at this size, hence the inlined lookups.
        verdicts, suspect = self._verdicts, self._suspect.search
        for key, value in event_dict.items():
            if value is None or key in skip or key[:1] == "_":  # _record etc.: structlog/stdlib bookkeeping
                continue
            sensitive = verdicts.get(key)
            if sensitive is None:
                sensitive = self.is_sensitive(key)
            if sensitive:
                event_dict[key] = MASK
            elif type(value) is str:
                if secrets or suspect(value) is not None:
                    event_dict[key] = self.text(value, secrets)
            elif type(value) not in _SCALARS:
                event_dict[key] = self.value(value, secrets)
        return event_dict
