"""The admin page at ``/admin/rest_api/``: every API of the catalogue, with a form to call it.

Rendered from the same catalogue and dialect table as the API, so it cannot drift.  Every
value goes through :func:`html.escape`; no inline script or style (the page's
Content-Security-Policy forbids them); its JavaScript and CSS are served by the gateway.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from importlib import resources

from werkzeug.wrappers import Response

from gateway.cli.interpreter import Interpreter
from gateway.cli.spec import Api, ApiKind, Kind, Param, Unavailable

PAGE_PATH = "/admin/rest_api/"
API_PATH = "/admin/rest_api/api"
STATIC_PATH = "/admin/rest_api/static/"
JOBS_PATH = "/admin/rest_api/jobs"
LOGIN_PATH = "/admin/rest_api/login"
LOGOUT_PATH = "/admin/rest_api/logout"
#: Offered as jobs on the page (live output, cancel); the first four are sent as jobs by default.
LONG_APIS = frozenset({"test", "backfill", "run", "clear", "deploy_dag", "refresh_dag", "refresh_all_dags"})
JOB_BY_DEFAULT = frozenset({"test", "backfill", "run", "clear"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it the page's own form posts say "Origin: null", which the
    # sign-on's CSRF check cannot tell from another site's. No referrer leaves the origin.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATIC_FILES = {"page.js": "text/javascript", "page.css": "text/css"}
_INPUT_TYPES = {Kind.INT: "number", Kind.PORT: "number", Kind.UPLOAD: "file"}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _input(api: Api, param: Param, disabled: bool) -> str:
    ident = _e(f"{api.name}--{param.name}")
    attrs = [f'id="{ident}"', f'name="{_e(param.name)}"']
    if param.required:
        attrs.append("required")
    if disabled:
        attrs.append("disabled")
    if param.kind is Kind.BOOL:
        return f'<input type="checkbox" value="on" {" ".join(attrs)}>'
    if param.kind is Kind.JSON_OBJECT:
        placeholder = _e('{"key": "value"}')
        return f'<textarea rows="2" placeholder="{placeholder}" {" ".join(attrs)}></textarea>'
    kind = _INPUT_TYPES.get(param.kind, "text")
    if param.kind is Kind.UPLOAD:
        attrs.append('accept=".py,.zip"')
    if kind == "number":
        attrs.append('min="0"')
    if param.kind in (Kind.DATE, Kind.DATE_OR_RUN_ID):
        attrs.append('placeholder="2017-01-02T03:04:05"')
    return f'<input type="{kind}" {" ".join(attrs)}>'


def _field(api: Api, param: Param, disabled: bool) -> str:
    ident = _e(f"{api.name}--{param.name}")
    required = ' <span class="required">required</span>' if param.required else ""
    aliases = f' <span class="aliases">also: {_e(", ".join(param.aliases))}</span>' if param.aliases else ""
    return (
        f'<div class="field"><label for="{ident}"><code>{_e(param.name)}</code>{required}{aliases}</label>'
        f"{_input(api, param, disabled)}"
        f'<small>{_e(param.help)} <span class="kind">({_e(param.kind.value)})</span></small></div>'
    )


def _fields(api: Api, disabled: bool) -> Iterable[str]:
    """Each parameter; a ``NAME`` + ``NAME_value`` pair (variables set) shares one key/value row."""
    names = {p.name for p in api.params}
    paired = {f"{p.name}_value" for p in api.params if f"{p.name}_value" in names}
    for param in api.params:
        if param.name in paired:
            continue
        if f"{param.name}_value" in paired:
            value = api.param(f"{param.name}_value")
            assert value is not None  # noqa: S101
            yield (
                f'<fieldset class="pair"><legend>{_e(param.name)}: key / value</legend>'
                f"{_field(api, param, disabled)}{_field(api, value, disabled)}</fieldset>"
            )
        else:
            yield _field(api, param, disabled)


def _section(api: Api, interpreter: Interpreter) -> str:
    entry = interpreter.dialect.table.get(api.name)
    available = interpreter.available(api.name)
    if available:
        badge = '<span class="badge ok">available</span>'
    else:
        reason = (
            entry.reason
            if isinstance(entry, Unavailable)
            else "needs a provider package that is not installed"
        )
        badge = (
            f'<span class="badge no">not available on Airflow {_e(interpreter.dialect.versions)}</span> '
            f'<span class="reason">{_e(reason)}</span>'
        )
    upload = any(p.kind is Kind.UPLOAD for p in api.params)
    methods = api.methods
    disabled = not available
    choices = "".join(
        f'<label class="method"><input type="radio" name="{_e("method--" + api.name)}" value="{_e(m)}"'
        f'{" checked" if i == 0 else ""}{" disabled" if disabled else ""} form="">{_e(m)}</label>'
        for i, m in enumerate(methods)
    )
    fields = "".join(_fields(api, disabled)) or '<p class="none">No arguments.</p>'
    if api.name in LONG_APIS:
        choices += (
            f'<label class="as-job"><input type="checkbox" class="as-job" form=""'
            f"{' checked' if api.name in JOB_BY_DEFAULT else ''}"
            f"{' disabled' if disabled else ''}> as a job (live output, cancel)</label>"
        )
    enctype = ' enctype="multipart/form-data"' if upload else ""
    origin = "original plugin API" if api.origin == "plugin" else "added by the gateway"
    kind = {ApiKind.CLI: "CLI", ApiKind.DAEMON: "daemon", ApiKind.BUILTIN: "gateway"}[api.kind]
    return (
        f'<section class="api" id="api-{_e(api.name)}">'
        f"<h2><code>{_e(api.name)}</code> {badge}</h2>"
        f'<p>{_e(api.summary)} <span class="origin">({_e(origin)}, {_e(kind)})</span></p>'
        f'<form class="call" action="{_e(API_PATH)}" method="{_e(methods[0].lower())}"{enctype} '
        f'data-api="{_e(api.name)}">'
        f'<input type="hidden" name="api" value="{_e(api.name)}">{fields}'
        f'<div class="send"><span class="methods">{choices}</span>'
        f'<button type="submit"{" disabled" if disabled else ""}>Send</button></div></form>'
        f'<pre class="answer" aria-live="polite"></pre></section>'
    )


def render_page(
    interpreter: Interpreter,
    catalogue: Mapping[str, Api],
    *,
    versions: Mapping[str, str],
    token_header: str,
    signon: bool = False,
) -> str:
    """The whole page as HTML text; with ``signon``, the token field is marked for
    :func:`personal_page` (shown as is or replaced by who is signed in)."""
    token = (
        '<div class="token"><label for="token">Token (header '
        f"<code>{_e(token_header)}</code>; kept in this browser tab only)</label>"
        '<input type="password" id="token" autocomplete="off"></div>'
    )
    sections = "".join(_section(api, interpreter) for api in catalogue.values())
    toc = "".join(
        f'<li><a href="#api-{_e(name)}"{"" if interpreter.available(name) else " class=unavailable"}>'
        f"{_e(name)}</a></li>"
        for name in catalogue
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Airflow REST API - airflow-gateway</title>"
        f'<link rel="stylesheet" href="{_e(STATIC_PATH)}page.css"></head>'
        f'<body data-api-url="{_e(API_PATH)}" data-token-header="{_e(token_header)}" '
        f'data-dags-url="{_e(PAGE_PATH)}api/list_dags?output=json" data-jobs-url="{_e(JOBS_PATH)}">'
        "<header><h1>Airflow REST API</h1>"
        f'<p class="versions">gateway <span id="gateway-version">{_e(versions["gateway"])}</span> · '
        f'Airflow <span id="airflow-version">{_e(versions["airflow"])}</span> '
        f"(CLI dialect {_e(versions['dialect'])}) · "
        f'<a href="{_e(PAGE_PATH)}openapi.json">OpenAPI description</a></p>'
        + (SESSION_START + token + SESSION_END if signon else token)
        + "</header>"
        '<nav><h2>APIs</h2><ul class="toc">' + toc + "</ul>"
        '<h2>DAGs <button type="button" id="reload-dags">reload</button></h2>'
        '<p id="dags-status">Enter the token (if any), then reload.</p><ul id="dags"></ul>'
        '<h2>Recent jobs <button type="button" id="reload-jobs">reload</button></h2>'
        '<p id="jobs-status"></p><ul id="jobs"></ul></nav>'
        f"<main>{sections}</main>"
        f'<script src="{_e(STATIC_PATH)}page.js"></script>'
        "</body></html>\n"
    )


SESSION_START = "<!--session-->"
SESSION_END = "<!--/session-->"


def personal_page(text: str, *, principal: str | None, csrf_token: str | None) -> str:
    """The page rendered with ``signon`` for one browser: who is signed in, a sign-out button
    (a form POST carrying the CSRF token, which the script also sends with every API call), and
    no token field; or, without a session, a sign-in link beside the token field."""
    head, _, rest = text.partition(SESSION_START)
    token, _, tail = rest.partition(SESSION_END)
    if principal is None or csrf_token is None:
        block = (
            f'<p class="session"><a id="sign-in" href="{_e(LOGIN_PATH)}?next={_e(PAGE_PATH)}">Sign in</a>'
            " or use a token:</p>" + token
        )
    else:
        block = (
            f'<div class="session" id="session" data-csrf-token="{_e(csrf_token)}">'
            f'Signed in as <strong id="signed-in-as">{_e(principal)}</strong> '
            f'<form method="post" action="{_e(LOGOUT_PATH)}" id="sign-out-form">'
            f'<input type="hidden" name="csrf_token" value="{_e(csrf_token)}">'
            '<button type="submit" id="sign-out">Sign out</button></form></div>'
        )
    return head + block + tail


def page_response(text: str, *, form_origins: Iterable[str] = ()) -> Response:
    """The page; ``form_origins`` may receive its forms (the provider's logout, after the redirect)."""
    extra = " ".join(form_origins)
    if not extra:
        return Response(text, mimetype="text/html", headers=SECURITY_HEADERS)
    csp = CSP.replace("form-action 'self'", f"form-action 'self' {extra}")
    return Response(text, mimetype="text/html", headers={**SECURITY_HEADERS, "Content-Security-Policy": csp})


def static_response(name: str) -> Response | None:
    """One of the page's own assets, or ``None`` for any other name."""
    mimetype = STATIC_FILES.get(name)
    if mimetype is None:
        return None
    body = resources.files("gateway.web").joinpath("static", name).read_bytes()
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return Response(body, mimetype=mimetype, headers=headers)
