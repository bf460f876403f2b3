"""The CLI API's request body, read with the gateway's limits, as arguments.

werkzeug applies ``max_form_memory_size`` to multipart fields only: an urlencoded body
was parsed whole whatever its size (8 MiB fields reached redaction and the audit log),
and a chunked body past ``max_content_length`` was cut and processed.  Here:

* ``application/x-www-form-urlencoded`` and ``application/json`` bodies are read up to
  ``limits.max_form_memory_bytes``, and one byte more means 413 (chunked ones too),
  before anything parses or redacts them;
* ``multipart/form-data`` goes through werkzeug's parser with the same limits (files:
  ``deploy.max_upload_bytes``, see :meth:`gateway.web.api.ApiEndpoint._uploads`);
* a JSON body is an object whose values are strings, numbers, booleans or lists of
  them, taken like form fields (``true`` -> ``"true"``, ``[1, 2]`` -> two values); a key
  given twice, or nesting too deep for the parser, is 400 (the parser itself would keep
  the last value silently, or fail with ``RecursionError``);
* any other body gets 415.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request

from gateway.core.errors import BadRequest, GatewayError, PayloadTooLarge

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
JSON = "application/json"
MAX_FIELDS = 1000  # werkzeug's max_form_parts, for urlencoded and JSON bodies too


class UnsupportedMediaType(GatewayError):
    code = 415
    description = (
        "Unsupported request body type: send application/x-www-form-urlencoded, multipart/form-data"
        " or application/json"
    )


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body too large (limit {limit} bytes: limits.max_form_memory_bytes)")


def _has_body(request: Request) -> bool:
    if request.content_length is not None:
        return request.content_length > 0
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _read(request: Request, limit: int) -> bytes:
    """At most ``limit`` bytes of the body, or 413 (also when a chunked body runs past it)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        data = request.stream.read(limit + 1)
    except RequestEntityTooLarge:
        raise _too_large(limit) from None
    if len(data) > limit:
        raise _too_large(limit)
    return data


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return json.dumps(value)
    raise BadRequest(f"JSON argument '{name}': expected a string, number, boolean or a list of them")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members; a key given twice is refused (json keeps the last one silently)."""
    doc: dict[str, Any] = {}
    for name, value in pairs:
        if name in doc:
            raise BadRequest(f"JSON argument '{name}' is given more than once")
        doc[name] = value
    return doc


def _json_arguments(data: bytes) -> MultiDict[str, str]:
    try:
        doc = json.loads(data, object_pairs_hook=_unique_keys)
    except RecursionError:
        # The parser recurses per level: a deep body exhausts the stack, not the size limit.
        raise BadRequest(
            "The JSON request body is nested too deeply: send an object of arguments"
            " whose values are strings, numbers, booleans or lists of them"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The JSON request body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest("The JSON request body must be an object of arguments")
    form: MultiDict[str, str] = MultiDict()
    for name, value in doc.items():
        for item in value if isinstance(value, list) else [value]:
            form.add(name, _scalar(name, item))
    if len(form) > MAX_FIELDS:
        raise PayloadTooLarge(f"Too many arguments in the request body (limit {MAX_FIELDS})")
    return form


def read_form(request: Request, *, max_form_bytes: int) -> MultiDict[str, str]:
    """The body's arguments (empty for a GET or an empty body).

    :raises PayloadTooLarge: past the limits (413).
    :raises UnsupportedMediaType: a body of another type (415).
    :raises BadRequest: a malformed JSON body (400).
    """
    if request.method != "POST":
        return MultiDict()
    mimetype = request.mimetype
    if mimetype == MULTIPART:
        try:
            form, files = request.form, request.files
        except RequestEntityTooLarge:
            raise PayloadTooLarge() from None
        # werkzeug keys a part without a name under None, which no argument can be.
        if None in form or None in files:
            raise BadRequest('Every multipart part needs a name (Content-Disposition: form-data; name="...")')
        return form
    if mimetype == FORM:
        text = _read(request, max_form_bytes).decode("utf-8", "replace")
        try:
            pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except ValueError:
            raise PayloadTooLarge(f"Too many arguments in the request body (limit {MAX_FIELDS})") from None
        return MultiDict(pairs)
    if mimetype == JSON:
        return _json_arguments(_read(request, max_form_bytes))
    if _has_body(request):
        raise UnsupportedMediaType()
    return MultiDict()
