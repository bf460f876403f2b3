"""Every setting of the gateway, defined once: name, type, default and meaning.

Modelled on gunicorn's ``config.py`` (one ``Setting`` per option carrying its validator,
default and description), but as plain records in one tuple, :data:`SETTINGS`.
Everything else is derived from it:

* ``gateway.config.loader.load_config`` reads and validates values through the records;
* ``check-config``'s summary (``gateway.config.loader.describe``) lists every record;
* ``docs/configuration.md`` and ``examples/gateway.toml`` are rendered from them
  (``gateway.config.documents``; ``tests/unit/test_settings.py`` fails when either drifts);
* environment names are derived: ``AIRFLOW_GATEWAY__<SECTION>__<KEY>``, plus the older
  ``GATEWAY_*`` names of the ``[server]`` settings kept as aliases.

A default is a raw value as the TOML file would give it and goes through the same
validator as any configured value; ``None`` means unset, and ``default_doc`` then says
what happens instead (e.g. a path derived from another setting at start-up).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "AIRFLOW_GATEWAY__"
PLUGIN_SECTION = "rest_api_plugin"


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret string whose repr never shows the value."""

    value: str

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class NamedToken:
    """One static token: a name, its groups, and the SHA-256 of the token (never the token)."""

    name: str
    sha256: bytes = field(repr=False)
    groups: frozenset[str] = frozenset()


# --- types: a name for the documentation and a check taking (setting name, raw value) ---


@dataclass(frozen=True, slots=True)
class Type:
    """What a setting accepts.

    :param name: how the reference documentation describes accepted values.
    :param check: ``check(setting_name, raw_value)`` returns the typed value or raises
        :class:`ConfigError` naming the setting (and never echoing a secret).
    :param table: a TOML table whose entries the environment can set one by one
        (``AIRFLOW_GATEWAY__CLI__TIMEOUTS__TEST=300``).
    """

    name: str
    check: Callable[[str, Any], Any]
    table: bool = False


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name}: expected a non-empty string")
    return value


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
        return False
    raise ConfigError(f"{name} has value {value!r}: expected true or false")


def _number(name: str, value: Any, *, integer: bool, minimum: float, maximum: float | None = None) -> float:
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} has value {value!r}: expected {kind}") from None
    if isinstance(value, bool) or number < minimum:
        raise ConfigError(f"{name} has value {value!r}: must be at least {minimum:g}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name} has value {value!r}: at most {maximum:g}")
    return number


def integer(minimum: int) -> Type:
    """An integer of at least ``minimum``."""
    return Type(
        f"integer ≥ {minimum}", lambda name, value: int(_number(name, value, integer=True, minimum=minimum))
    )


def int_range(minimum: int, maximum: int) -> Type:
    """An integer from ``minimum`` to ``maximum``."""
    return Type(
        f"integer {minimum}-{maximum}",
        lambda name, value: int(_number(name, value, integer=True, minimum=minimum, maximum=maximum)),
    )


def seconds(maximum: float | None = None, *, zero: bool = False) -> Type:
    """A number of seconds: above 0 (or at least 0), and at most ``maximum``."""
    low = 0.0 if zero else 0.001
    text = ("seconds ≥ 0" if zero else "seconds > 0") + (f", at most {maximum:g}" if maximum else "")
    return Type(text, lambda name, value: _number(name, value, integer=False, minimum=low, maximum=maximum))


def choice(*choices: str) -> Type:
    """One of a few fixed strings."""

    def check(name: str, value: Any) -> str:
        text = str(value)
        if text not in choices:
            raise ConfigError(f"{name} has value {value!r}: expected one of {', '.join(choices)}")
        return text

    return Type("one of " + ", ".join(f"`{c}`" for c in choices), check)


def _path(name: str, value: Any) -> Path:
    # Resolved against the working directory at start-up, as gunicorn and the CLI see it.
    return Path(_str(name, value)).expanduser().resolve()


def _secret(name: str, value: Any) -> Secret:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name}: expected a non-empty string (value not shown)")
    return Secret(value)


def _header_name(name: str, value: Any) -> str:
    text = _str(name, value)
    if not all(c.isalnum() or c in "-_" for c in text):
        raise ConfigError(f"{name} has value {text!r}: a header name has only letters, digits, '-', '_'")
    return text


def _url(name: str, value: Any) -> str:
    text = _str(name, value)
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"{name} has value {text!r}: expected an http:// or https:// URL with a host")
    return text.rstrip("/")


def _database_url(name: str, value: Any) -> Secret:
    text = _str(name, value)
    if urlsplit(text).scheme not in {"postgresql", "postgres"}:
        raise ConfigError(f"{name}: expected a postgresql:// URL (unset: SQLite in the state directory)")
    return Secret(text)


def _str_list(name: str, value: Any) -> tuple[str, ...]:
    """A TOML array of strings, or (from the environment) a comma-separated string."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{name}: expected a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _networks(name: str, value: Any) -> tuple[str, ...]:
    items = _str_list(name, value)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{name} has value {item!r}: expected an IP address or CIDR network") from None
    return items


def _host_policy(name: str, value: Any) -> str:
    text = _str(name, value).strip()
    if text in {"client", "upstream"}:
        return text
    try:
        parts = urlsplit(f"//{text}")
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        parts = None
    if (
        parts is None
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
        or any(c.isspace() for c in text)
    ):
        raise ConfigError(f"{name} has value {text!r}: expected client, upstream or a host[:port]")
    return text


def _abs_path(name: str, value: Any) -> str:
    text = _str(name, value)
    if not text.startswith("/") or any(c.isspace() for c in text):
        raise ConfigError(f"{name} has value {text!r}: expected a path starting with '/'")
    return text


def _idle_cgroup(name: str, value: Any) -> str:
    text = _str(name, value)
    return text if text in ("auto", "off") else _abs_path(name, text)


def _str_mapping(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name}: expected a table of strings")
    return {str(k): str(v) for k, v in value.items()}


def _seconds_mapping(name: str, value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name}: expected a table of numbers")
    return {str(k): _number(f"{name}.{k}", v, integer=False, minimum=0.001) for k, v in value.items()}


JWT_ALGORITHMS = (
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@:\-]{0,127}")
_HASH = re.compile(r"sha256:([0-9a-f]{64})")


def _algorithms(name: str, value: Any) -> tuple[str, ...]:
    algs = _str_list(name, value)
    bad = [a for a in algs if a not in JWT_ALGORITHMS]
    if bad:
        known = ", ".join(JWT_ALGORITHMS)
        raise ConfigError(f"{name} has value {bad[0]!r}: expected some of {known} (never 'none')")
    # An HMAC secret and a public key must never be usable for the same token: a public
    # key used as an HMAC secret is the classic algorithm-confusion forgery.
    if any(a.startswith("HS") for a in algs) and not all(a.startswith("HS") for a in algs):
        raise ConfigError(f"{name}: HS* algorithms cannot be mixed with public-key algorithms")
    return algs


def _token_list(name: str, value: Any) -> tuple[NamedToken, ...]:
    """``[[auth.tokens]]`` tables, or (from the environment) the same as a JSON array."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{name}: expected a JSON array of tables (value not shown)") from None
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name}: expected an array of tables ([[auth.tokens]])")
    tokens: list[NamedToken] = []
    for index, entry in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected a table with name, sha256 and groups")
        unknown = sorted(set(entry) - {"name", "sha256", "groups"})
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(unknown)} (a token is configured by its sha256)"
            )
        token_name = entry.get("name")
        if not isinstance(token_name, str) or not _NAME.fullmatch(token_name):
            raise ConfigError(f"{where}.name: expected a name of letters, digits and _ . @ : -")
        digest = entry.get("sha256")
        match = _HASH.fullmatch(digest) if isinstance(digest, str) else None
        if match is None:
            raise ConfigError(
                f"{where}.sha256 (token {token_name!r}): expected 'sha256:' and 64 lower-case hex digits "
                "from 'airflow-gateway hash-token' (value not shown)"
            )
        groups = _str_list(f"{where}.groups", entry.get("groups", []))
        tokens.append(NamedToken(token_name, bytes.fromhex(match.group(1)), frozenset(groups)))
    names = [t.name for t in tokens]
    if len(set(names)) != len(names):
        raise ConfigError(f"{name}: token names must be unique")
    if len({t.sha256 for t in tokens}) != len(tokens):
        raise ConfigError(f"{name}: two tokens have the same hash")
    return tuple(tokens)


def _env_name(name: str, value: Any) -> str:
    text = _str(name, value)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise ConfigError(f"{name} has value {text!r}: expected an environment variable name")
    return text


def _claim_path(name: str, value: Any) -> str:
    text = _str(name, value)
    if not all(part for part in text.split(".")):
        raise ConfigError(
            f"{name} has value {text!r}: expected a claim name or a dotted path like realm_access.roles"
        )
    return text


def _bind(name: str, value: Any) -> str:
    # gunicorn's forms: HOST:PORT, [IPv6]:PORT, :PORT, unix:PATH, fd://N; several comma-separated.
    text = _str(name, value).strip()
    for part in (p.strip() for p in text.split(",")):
        if part.startswith(("unix:", "fd://")):
            continue
        _, colon, port = part.rpartition(":")
        if not colon or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"{name} has value {text!r}: expected HOST:PORT (or unix:PATH), comma-separated"
            )
    return text


STRING = Type("string", _str)
BOOL = Type("boolean", _bool)
PATH = Type("path", _path)
SECRET = Type("string (secret)", _secret)
HEADER = Type("header name", _header_name)
URL = Type("http(s) URL", _url)
STRINGS = Type("list of strings", _str_list)
NETWORKS = Type("list of IP addresses / CIDR networks", _networks)
STRING_TABLE = Type("table of strings", _str_mapping, table=True)
SECONDS_TABLE = Type("table of seconds > 0", _seconds_mapping, table=True)


# --- the records ---


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: ``section.key`` in the TOML file.

    :param default: the raw default (as TOML would give it; checked by ``type``);
        ``None`` leaves the setting unset.
    :param doc: one or two sentences for the sample file and the reference.
    :param default_doc: what "unset" means when the default is computed at start-up.
    :param example: a raw value for the sample file when the default does not illustrate
        the setting (no default, or an empty one).
    :param secret: never shown (``check-config`` says only whether it is set); set it from
        the environment rather than the file.
    :param aliases: older environment variable names still read (the canonical one wins).
    :param api_keys: a table keyed by API name; keys are checked against the API catalogue.
    """

    section: str
    key: str
    type: Type
    default: Any
    doc: str
    default_doc: str | None = None
    example: Any = None
    secret: bool = False
    aliases: tuple[str, ...] = ()
    api_keys: bool = False

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env(self) -> str:
        """The environment variable that overrides the file."""
        return f"{ENV_PREFIX}{self.section.upper()}__{self.key.upper()}"

    def parse(self, value: Any) -> Any:
        """Validate one raw value (as TOML or the environment gives it); ``None`` stays unset."""
        return None if value is None else self.type.check(self.name, value)


# Section -> what it is about, in the order of the sample file and the reference.
SECTIONS: dict[str, str] = {
    "gateway": "The gateway process itself.",
    "server": (
        "gunicorn, which serves the gateway (`gateway/entry/gunicorn_conf.py`). The worker `timeout` "
        "is not a setting: it is the longest of `cli.default_timeout`, `cli.timeouts` and "
        "`proxy.read_timeout`, plus 30 s, so gunicorn never kills a worker in the middle of a call."
    ),
    "airflow": "The Airflow CLI the gateway drives (same AIRFLOW_HOME / AIRFLOW__* as your Airflow).",
    "cli": "Limits for Airflow CLI subprocesses.",
    PLUGIN_SECTION: "The original airflow-rest-api-plugin's settings, under their original names.",
    "proxy": "Every path the gateway does not own goes to Airflow's api-server / webserver.",
    "limits": "Request size limits on the gateway's own endpoints (413 beyond them).",
    "audit": "One JSON audit event per request (stdout unless a file is set).",
    "metrics": "Prometheus /metrics.",
    "auth": "Gateway credentials: named tokens (see docs/identity-and-policies.md).",
    "jwt": "JWT verification; off while algorithms is empty. Set exactly one key source.",
    "policy": "Policies (see docs/identity-and-policies.md); without them every authenticated call passes.",
    "deploy": "deploy_dag uploads (see docs/deploy-and-page.md).",
    "jobs": "CLI calls run as jobs (mode=job; see docs/jobs.md).",
}

_S = Setting
SETTINGS: tuple[Setting, ...] = (
    _S("gateway", "state_dir", PATH, ".state",
       "Daemons' records and logs, import/export files, the metrics files and the CLI's working directory.",
       example="/var/lib/airflow-gateway"),
    _S("gateway", "trusted_proxy_count", integer(0), 0,
       "Proxies in front of the gateway whose X-Forwarded-For entries are trusted (client address for "
       "audit events and policies)."),
    # [server]: gunicorn.  The GATEWAY_* aliases predate this section (Dockerfile, compose files).
    _S("server", "bind", Type("HOST:PORT, comma-separated", _bind), "127.0.0.1:8000",
       "Listen address(es); the container image sets 0.0.0.0:8080. `airflow-gateway serve --bind` wins.",
       aliases=("GATEWAY_BIND",)),
    _S("server", "workers", integer(1), 2, "gunicorn worker processes.", aliases=("GATEWAY_WORKERS",)),
    _S("server", "threads", integer(1), 8,
       "Threads per worker; raised to at least cli.max_concurrent + cli.max_waiting + jobs.max_streams "
       "+ 4, so CLI calls and job output streams never take every thread from the proxy.",
       aliases=("GATEWAY_THREADS",)),
    _S("server", "head_timeout", integer(0), 10,
       "Seconds a request head (request line and headers) may take to arrive; later: 408 and the "
       "connection closed. 0 turns event-loop head reading off (stock gthread).",
       aliases=("GATEWAY_HEAD_TIMEOUT",)),
    _S("server", "keepalive", integer(0), 5,
       "Idle client keep-alive in seconds; keep it above the idle timeout of a load balancer in front.",
       aliases=("GATEWAY_KEEPALIVE",)),
    _S("server", "keepalive_linger_ms", integer(0), 2,
       "Milliseconds a thread that has just answered on a keep-alive connection waits for its next "
       "request (only while no other connection waits for a thread); 0 is plain gthread.",
       aliases=("GATEWAY_KEEPALIVE_LINGER_MS",)),
    _S("server", "graceful_timeout", integer(0), 30,
       "On SIGTERM, seconds in-flight requests get to finish; match the orchestrator's stop grace period.",
       aliases=("GATEWAY_GRACEFUL_TIMEOUT",)),
    _S("server", "max_requests", integer(0), 0,
       "Recycle a worker after this many requests (0: never; a restart waits for streams in flight).",
       aliases=("GATEWAY_MAX_REQUESTS",)),
    _S("server", "max_requests_jitter", integer(0), 0,
       "Random extra requests added to max_requests per worker, so workers do not restart together.",
       aliases=("GATEWAY_MAX_REQUESTS_JITTER",)),
    _S("server", "access_log", STRING, None,
       "gunicorn's access log (`-`: stdout), rendered as JSON with query strings redacted.",
       default_doc="off (the audit event is the access log)", example="-", aliases=("GATEWAY_ACCESS_LOG",)),
    _S("airflow", "executable", STRING, None, "The Airflow CLI.",
       default_doc="`airflow` on PATH", example="/home/airflow/.local/bin/airflow"),
    _S("airflow", "home", PATH, None, "Passed to the CLI as AIRFLOW_HOME.",
       default_doc="$AIRFLOW_HOME", example="/opt/airflow"),
    _S("airflow", "dialect", choice("auto", "3", "2", "1.10"), "auto",
       "Which Airflow CLI the API calls are translated for; auto asks the installed Airflow."),
    _S("airflow", "env", STRING_TABLE, {},
       "Extra environment for the CLI (the gateway's own AIRFLOW__* variables pass through too). Values "
       "are not shown by check-config.",
       example={"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}, secret=True),
    _S("cli", "default_timeout", seconds(), 120,
       "Seconds before a command's process group is killed (504)."),
    _S("cli", "timeouts", SECONDS_TABLE, {}, "Per-API timeouts in seconds, keyed by API name.",
       example={"test": 300, "backfill": 900}, api_keys=True),
    _S("cli", "max_output_bytes", integer(1), 1024 * 1024,
       "Cap per output stream; the rest is dropped and flagged."),
    _S("cli", "max_concurrent", integer(1), 3, "CLI calls running at once per worker process."),
    _S("cli", "files_dir", PATH, None, "Files for variables import/export.",
       default_doc="<state_dir>/files", example="/var/lib/airflow-gateway/files"),
    _S("cli", "runner", choice("warm", "cold"), "warm",
       "warm: fork each call from a warm Airflow process; cold: a new process per call."),
    _S("cli", "max_waiting", integer(0), 2,
       "Further calls that may wait for a slot; beyond them 503 at once."),
    _S("cli", "queue_timeout", seconds(), 5, "Seconds a waiting call waits for a slot before its 503."),
    _S("cli", "pass_principal_as_user", BOOL, True,
       "Airflow records the gateway principal as the CLI user (LOGNAME/USER) in its log table."),
    _S("cli", "warm_max_calls", integer(1), 2000, "A warm process is replaced after this many calls..."),
    _S("cli", "warm_max_age", seconds(), 3600, "... or after this many seconds..."),
    _S("cli", "warm_max_rss_bytes", integer(1), 1024 * 1024 * 1024,
       "... or once its resident memory passes this."),
    _S("cli", "nice", int_range(0, 19), 10,
       "CPU priority of CLI calls and jobs (a nice value; 0 is the gateway's own): CLI work yields "
       "to the requests the gateway serves. Their session's autogroup gets it too, or else the "
       "kernel's autogroup scheduling would make the value count for nothing."),
    _S("cli", "idle_cgroup", Type("`auto`, `off` or a cgroup directory", _idle_cgroup), "auto",
       "Run CLI calls and jobs in a cgroup with cpu.idle = 1, which yields the CPU at once to any "
       "request that wakes (nice values alone do not). auto: create it beside the gateway's own "
       "cgroup when the cgroup file system lets it, else fall back to cli.nice (logged at start); "
       "off: never; a path: that cgroup directory. See docs/cli-runner.md."),
    _S(PLUGIN_SECTION, "log_loading", BOOL, False, "Accepted for compatibility; no effect."),
    _S(PLUGIN_SECTION, "filter_loading_messages_in_cli_response", BOOL, True,
       "Drop Airflow's loading messages from CLI output."),
    _S(PLUGIN_SECTION, "rest_api_plugin_http_token_header_name", HEADER, "rest_api_plugin_http_token",
       "Header carrying the original plugin's token."),
    _S(PLUGIN_SECTION, "rest_api_plugin_expected_http_token", SECRET, None,
       "The original plugin's token.", default_doc="unset (no plugin token check)",
       example="change-me-to-a-long-random-token", secret=True),
    _S(PLUGIN_SECTION, "airflow_cfg", PATH, None,
       "An airflow.cfg whose [rest_api_plugin] section is read (migration from the plugin).",
       default_doc="$AIRFLOW_HOME/airflow.cfg when it exists", example="/opt/airflow/airflow.cfg"),
    _S(PLUGIN_SECTION, "compatibility", choice("off", "1.0.9"), "off",
       "1.0.9: answer as the original plugin v1.0.9 did (see docs/compatibility.md)."),
    _S("proxy", "upstream", URL, None, "Airflow's api-server (3) or webserver (2).",
       default_doc="unset (no proxy: the gateway's own endpoints only)", example="http://127.0.0.1:8080"),
    _S("proxy", "connect_timeout", seconds(), 5, "Seconds to connect upstream."),
    _S("proxy", "read_timeout", seconds(), 60, "Seconds to wait for upstream data."),
    _S("proxy", "host_header", Type("`client`, `upstream` or HOST[:PORT]", _host_policy), "client",
       "Host sent upstream: the client's, the upstream's, or a fixed host[:port]."),
    _S("proxy", "pool_size", integer(1), 16, "Kept-alive upstream connections per worker."),
    _S("proxy", "readiness_path", Type("absolute URL path", _abs_path), "/",
       "What /readyz asks Airflow for (any status below 500 counts)."),
    _S("limits", "max_body_bytes", integer(1), 16 * 1024 * 1024, "Largest request body."),
    _S("limits", "max_form_memory_bytes", integer(1), 1024 * 1024, "Largest form field held in memory."),
    _S("audit", "file", PATH, None, "Append audit events to this file.",
       default_doc="unset (stdout)", example="/var/log/airflow-gateway/audit.jsonl"),
    _S("audit", "sensitive_names", STRINGS, [],
       "More argument names whose values are redacted.", example=["pin", "otp"]),
    _S("metrics", "enabled", BOOL, True, "Serve /metrics."),
    _S("metrics", "token", SECRET, None, "Bearer token a scraper must send.",
       default_doc="unset (none needed)", example="change-me-scrape-token", secret=True),
    _S("metrics", "allow_from", NETWORKS, [], "Addresses that may scrape (empty: all).",
       example=["127.0.0.1/32", "10.0.0.0/8"]),
    _S("auth", "header_name", HEADER, "X-Gateway-Authorization", "Header carrying a gateway token or JWT."),
    _S("auth", "tokens", Type("array of tables (name, sha256, groups); JSON in the environment", _token_list),
       [], "Named tokens by their hash (`airflow-gateway hash-token --generate`); or [[auth.tokens]] tables.",
       example=[{"name": "ci", "sha256": "sha256:" + "0" * 64, "groups": ["deployers"]}]),
    _S("auth", "allow_anonymous", BOOL, False, "Let callers without credentials through (needs policy.dir)."),
    _S("jwt", "algorithms", Type("list of JWT algorithms", _algorithms), [],
       "Accepted algorithms (HS* cannot mix with public-key ones); empty: JWT off.", example=["RS256"]),
    _S("jwt", "key_file", PATH, None, "Key source 1: a PEM public key or secret file.",
       example="/etc/airflow-gateway/jwt-public.pem"),
    _S("jwt", "key_env", Type("environment variable name", _env_name), None,
       "Key source 2: an environment variable holding the key.", example="GATEWAY_JWT_SECRET"),
    _S("jwt", "jwks_url", URL, None, "Key source 3: a JWKS URL.",
       example="https://idp.example.com/.well-known/jwks.json"),
    _S("jwt", "jwks_timeout", seconds(30), 3, "Seconds for a JWKS fetch (it blocks a request)."),
    _S("jwt", "jwks_lifespan", seconds(), 300, "Seconds a fetched JWKS is kept."),
    _S("jwt", "jwks_min_refresh_interval", seconds(), 30,
       "Least seconds between refetches for unknown key ids."),
    _S("jwt", "issuer", STRING, None, "Required iss claim.", default_doc="unset (not checked)",
       example="https://idp.example.com/"),
    _S("jwt", "audience", STRINGS, [], "Accepted aud values (empty: not checked).",
       example=["airflow-gateway"]),
    _S("jwt", "leeway", seconds(300, zero=True), 10, "Clock skew tolerance in seconds."),
    _S("jwt", "required_claims", STRINGS, [], "Claims that must be present.", example=["exp", "sub"]),
    _S("jwt", "subject_claim", Type("claim name or dotted path", _claim_path), "sub",
       "Claim naming the principal."),
    _S("jwt", "groups_claim", Type("claim name or dotted path", _claim_path), None,
       "Claim (dotted path) listing the principal's groups.", default_doc="unset (no groups)",
       example="realm_access.roles"),
    _S("policy", "dir", PATH, None, "Directory of policy TOML files.",
       default_doc="unset (no policies)", example="/etc/airflow-gateway/policies"),
    _S("policy", "shadow", BOOL, False, "Log denials without enforcing them."),
    _S("deploy", "dags_folder", PATH, None, "Where uploads go.",
       default_doc="unset (asked from Airflow)", example="/opt/airflow/dags"),
    _S("deploy", "max_upload_bytes", integer(1), 1024 * 1024, "Largest upload."),
    _S("deploy", "allow_zip", BOOL, True, "Accept zipped DAG bundles."),
    _S("deploy", "allow_subfolder", BOOL, True, "Accept the subfolder argument."),
    _S("deploy", "max_zip_entries", integer(1), 200, "Most files in a zip."),
    _S("deploy", "max_unzipped_bytes", integer(1), 16 * 1024 * 1024, "Largest unzipped size."),
    _S("jobs", "database_url", Type("postgresql:// URL (secret)", _database_url), None,
       "Shared job store for several gateway instances.", default_doc="unset (SQLite in the state directory)",
       example="postgresql://gateway@db.example:5432/gateway_jobs", secret=True),
    _S("jobs", "max_running", integer(1), 2,
       "Jobs running at once per worker process (apart from cli.max_concurrent)."),
    _S("jobs", "max_queued", integer(0), 20, "Jobs waiting for a free job thread; beyond them 503."),
    _S("jobs", "timeout", seconds(), 3600, "Seconds before a job's process tree is killed."),
    _S("jobs", "max_output_bytes", integer(1), 8 * 1024 * 1024,
       "Output kept per job; the rest is dropped and flagged."),
    _S("jobs", "retention", seconds(), 7 * 86400, "Seconds a finished job is kept."),
    _S("jobs", "stream_max_seconds", seconds(), 30,
       "Longest single SSE response, backlog included; clients reconnect."),
    _S("jobs", "max_streams", integer(1), 8,
       "Job output streams (SSE) open at once per worker process; each holds a thread, and "
       "server.threads is raised to leave room for them. Beyond: 503 with Retry-After."),
    _S("jobs", "max_streams_per_principal", integer(1), 2,
       "Job output streams one principal may have open at once per worker process. Beyond: 429 with "
       "Retry-After (format=json polls hold no thread)."),
    _S("jobs", "max_stored_output_per_principal", integer(1), 256 * 1024 * 1024,
       "Output characters kept in the job store for one principal's jobs; beyond it their new jobs are "
       "refused (429) until older ones expire (jobs.retention). Running jobs keep all their output."),
)  # fmt: skip

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
BY_ALIAS: dict[str, Setting] = {alias: s for s in SETTINGS for alias in s.aliases}


def in_section(section: str) -> Iterator[Setting]:
    """The records of one section, in order."""
    return (s for s in SETTINGS if s.section == section)
