"""Configuration: one TOML file plus environment overrides, validated once at start-up.

Precedence, lowest first: built-in defaults, the ``[rest_api_plugin]`` section of an
existing ``airflow.cfg`` (migration from the original plugin), the gateway's TOML file,
then ``AIRFLOW_GATEWAY__SECTION__KEY`` environment variables.  Any bad value raises
:class:`ConfigError` naming the setting; secret values are never echoed.
"""

from __future__ import annotations

import configparser
import difflib
import json
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "AIRFLOW_GATEWAY__"
CONFIG_PATH_ENV = "AIRFLOW_GATEWAY_CONFIG"
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
class AirflowConfig:
    """How to reach the Airflow CLI on this host."""

    executable: str
    home: Path | None
    dialect: str
    env: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class CliConfig:
    """Limits for CLI subprocesses."""

    default_timeout_s: float
    timeouts_s: Mapping[str, float]
    max_output_bytes: int
    max_concurrent: int
    filter_loading_messages: bool
    files_dir: Path
    #: "warm": fork each call from a warm Airflow process; "cold": a new process per call.
    runner: str = "warm"
    #: calls that may wait for a slot (beyond them: 503 at once), and for how long.
    max_waiting: int = 2
    queue_timeout_s: float = 5.0
    #: Airflow records the gateway principal's name as the CLI user (LOGNAME/USER).
    pass_principal_as_user: bool = True
    #: the warm process is replaced after this many calls, this age or this RSS.
    warm_max_calls: int = 2000
    warm_max_age_s: float = 3600.0
    warm_max_rss_bytes: int = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PluginAuthConfig:
    """The original plugin's static-token check, under its original names."""

    header_name: str
    expected_token: Secret | None


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Upstream Airflow webserver / api-server for every path the gateway does not own."""

    upstream: str | None
    connect_timeout_s: float
    read_timeout_s: float
    host_header: str = "client"  # "client", "upstream" or a fixed host[:port]
    pool_size: int = 16
    readiness_path: str = "/"


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Request size limits on the gateway's own endpoints."""

    max_body_bytes: int
    max_form_memory_bytes: int


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """Where audit events go and what else counts as a secret."""

    file: Path | None
    sensitive_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``/metrics``: on or off, and who may scrape it."""

    enabled: bool
    token: Secret | None
    allow_from: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NamedToken:
    """One static token: a name, its groups, and the SHA-256 of the token (never the token)."""

    name: str
    sha256: bytes = field(repr=False)
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Named tokens and how gateway credentials are presented (see docs/identity-and-policies.md)."""

    header_name: str
    tokens: tuple[NamedToken, ...]
    allow_anonymous: bool


@dataclass(frozen=True, slots=True)
class JwtConfig:
    """JWT verification; ``algorithms`` empty means JWT is off."""

    algorithms: tuple[str, ...]
    key_file: Path | None
    key_env: str | None
    jwks_url: str | None
    jwks_timeout_s: float
    jwks_lifespan_s: float
    jwks_min_refresh_interval_s: float
    issuer: str | None
    audience: tuple[str, ...]
    leeway_s: float
    required_claims: tuple[str, ...]
    subject_claim: str
    groups_claim: str | None

    @property
    def enabled(self) -> bool:
        return bool(self.algorithms)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Where the policy files are; ``dir`` None means no policies (everything authenticated passes)."""

    dir: Path | None
    shadow: bool


@dataclass(frozen=True, slots=True)
class DeployConfig:
    """deploy_dag: where uploads go and how big they may be (issue 6).

    :param dags_folder: ``None`` asks Airflow (``airflow config get-value core dags_folder``).
    """

    dags_folder: Path | None
    max_upload_bytes: int
    allow_zip: bool
    allow_subfolder: bool
    max_zip_entries: int
    max_unzipped_bytes: int
    dag_list_ttl_s: float


@dataclass(frozen=True, slots=True)
class JobsConfig:
    """Long CLI calls as jobs (issue 15).

    :param database_url: ``postgresql://...`` for a store shared by several gateway
        instances; ``None`` keeps the store in SQLite under the state directory.
    :param max_running: jobs running at once per gateway worker process (their own limit,
        apart from ``cli.max_concurrent``); more wait as ``queued``.
    :param max_queued: jobs waiting per worker process before submissions get 503.
    :param stream_max_s: how long one SSE response lasts before the client reconnects.
    """

    database_url: Secret | None
    max_running: int
    max_queued: int
    timeout_s: float
    max_output_bytes: int
    retention_s: float
    stream_max_s: float


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The whole, validated configuration, passed explicitly to every layer."""

    state_dir: Path
    trusted_proxy_count: int
    airflow: AirflowConfig
    cli: CliConfig
    plugin_auth: PluginAuthConfig
    proxy: ProxyConfig
    limits: LimitsConfig
    audit: AuditConfig = field(default_factory=lambda: AuditConfig(None, ()))
    metrics: MetricsConfig = field(default_factory=lambda: MetricsConfig(True, None, ()))
    auth: AuthConfig = field(default_factory=lambda: AuthConfig(DEFAULT_AUTH_HEADER, (), False))
    jwt: JwtConfig = field(default_factory=lambda: _jwt_config(lambda _s, _k, default=None: default))
    policy: PolicyConfig = field(default_factory=lambda: PolicyConfig(None, False))
    deploy: DeployConfig = field(
        default_factory=lambda: DeployConfig(None, 1024 * 1024, True, True, 200, 16 * 1024 * 1024, 10.0)
    )
    jobs: JobsConfig = field(
        default_factory=lambda: JobsConfig(None, 2, 20, 3600.0, 8 * 1024 * 1024, 7 * 86400.0, 30.0)
    )
    sources: tuple[str, ...] = field(default=())
    compatibility: str = "off"  # "1.0.9": answer like the original plugin (gateway/compat.py)

    @property
    def daemon_dir(self) -> Path:
        """Where detached daemons' pid records and logs live."""
        return self.state_dir / "daemons"


# --- validators: each takes (setting name, raw value) and returns the typed value ---


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


def _number(name: str, value: Any, *, integer: bool, minimum: float) -> float:
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} has value {value!r}: expected {kind}") from None
    if isinstance(value, bool) or number < minimum:
        raise ConfigError(f"{name} has value {value!r}: must be at least {minimum:g}")
    return number


def _pos_float(name: str, value: Any) -> float:
    return _number(name, value, integer=False, minimum=0.001)


def _pos_int(name: str, value: Any) -> int:
    return int(_number(name, value, integer=True, minimum=1))


def _non_neg_int(name: str, value: Any) -> int:
    return int(_number(name, value, integer=True, minimum=0))


def _path(name: str, value: Any) -> Path:
    return Path(_str(name, value)).expanduser()


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
    parts = urlsplit(text)
    if parts.scheme not in {"postgresql", "postgres"}:
        raise ConfigError(f"{name}: expected a postgresql:// URL (unset: SQLite in the state directory)")
    return Secret(text)


def _str_list(name: str, value: Any) -> tuple[str, ...]:
    """A TOML list of strings, or a comma-separated string (environment variables)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"{name}: expected a list of strings")
    return tuple(i.strip() for i in items if i.strip())


def _networks(name: str, value: Any) -> tuple[str, ...]:
    import ipaddress

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


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        text = str(value)
        if text not in choices:
            raise ConfigError(f"{name} has value {value!r}: expected one of {', '.join(choices)}")
        return text

    return check


def _str_mapping(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name}: expected a table of strings")
    return {str(k): str(v) for k, v in value.items()}


def _float_mapping(name: str, value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name}: expected a table of numbers")
    return {str(k): _pos_float(f"{name}.{k}", v) for k, v in value.items()}


def _api_float_mapping(name: str, value: Any) -> dict[str, float]:
    """A table of numbers keyed by API name: a misspelt API (``{ tset = 10 }``) is an error."""
    from gateway.cli.apis import CATALOGUE  # the catalogue is data: no import cycle at run time

    table = _float_mapping(name, value)
    for key in table:
        if key not in CATALOGUE:
            close = difflib.get_close_matches(key, list(CATALOGUE), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{name}.{key}: no API is named {key!r}{hint}")
    return table


JWT_ALGORITHMS = (
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
DEFAULT_AUTH_HEADER = "X-Gateway-Authorization"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@:\-]{0,127}")
_HASH = re.compile(r"sha256:([0-9a-f]{64})")


def _str_list(name: str, value: Any) -> tuple[str, ...]:
    """A TOML array of strings, or (from the environment) a comma-separated string."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{name}: expected a list of non-empty strings")
    return tuple(value)


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
    if not isinstance(value, list):
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


def _leeway(name: str, value: Any) -> float:
    number = _number(name, value, integer=False, minimum=0)
    if number > 300:
        raise ConfigError(f"{name} has value {value!r}: at most 300 seconds")
    return number


def _timeout(name: str, value: Any) -> float:
    number = _pos_float(name, value)
    if number > 30:
        raise ConfigError(f"{name} has value {value!r}: at most 30 seconds (a JWKS fetch blocks a request)")
    return number


def _claim_path(name: str, value: Any) -> str:
    text = _str(name, value)
    if not all(part for part in text.split(".")):
        raise ConfigError(
            f"{name} has value {text!r}: expected a claim name or a dotted path like realm_access.roles"
        )
    return text


# Every accepted setting: (section, key) -> validator.  Unknown keys are an error, so a
# misspelt setting fails start-up instead of being silently ignored.
_SCHEMA: dict[tuple[str, str], Callable[[str, Any], Any]] = {
    ("gateway", "state_dir"): _path,
    ("gateway", "trusted_proxy_count"): _non_neg_int,
    ("airflow", "executable"): _str,
    ("airflow", "home"): _path,
    ("airflow", "dialect"): _choice("auto", "3", "2", "1.10"),
    ("airflow", "env"): _str_mapping,
    ("cli", "default_timeout"): _pos_float,
    ("cli", "timeouts"): _api_float_mapping,
    ("cli", "max_output_bytes"): _pos_int,
    ("cli", "max_concurrent"): _pos_int,
    ("cli", "files_dir"): _path,
    ("cli", "runner"): _choice("warm", "cold"),
    ("cli", "max_waiting"): _non_neg_int,
    ("cli", "queue_timeout"): _pos_float,
    ("cli", "pass_principal_as_user"): _bool,
    ("cli", "warm_max_calls"): _pos_int,
    ("cli", "warm_max_age"): _pos_float,
    ("cli", "warm_max_rss_bytes"): _pos_int,
    (PLUGIN_SECTION, "log_loading"): _bool,
    (PLUGIN_SECTION, "filter_loading_messages_in_cli_response"): _bool,
    (PLUGIN_SECTION, "rest_api_plugin_http_token_header_name"): _header_name,
    (PLUGIN_SECTION, "rest_api_plugin_expected_http_token"): _secret,
    (PLUGIN_SECTION, "airflow_cfg"): _path,
    (PLUGIN_SECTION, "compatibility"): _choice("off", "1.0.9"),
    ("proxy", "upstream"): _url,
    ("proxy", "connect_timeout"): _pos_float,
    ("proxy", "read_timeout"): _pos_float,
    ("proxy", "host_header"): _host_policy,
    ("proxy", "pool_size"): _pos_int,
    ("proxy", "readiness_path"): _abs_path,
    ("limits", "max_body_bytes"): _pos_int,
    ("limits", "max_form_memory_bytes"): _pos_int,
    ("audit", "file"): _path,
    ("audit", "sensitive_names"): _str_list,
    ("metrics", "enabled"): _bool,
    ("metrics", "token"): _secret,
    ("metrics", "allow_from"): _networks,
    ("auth", "header_name"): _header_name,
    ("auth", "tokens"): _token_list,
    ("auth", "allow_anonymous"): _bool,
    ("jwt", "algorithms"): _algorithms,
    ("jwt", "key_file"): _path,
    ("jwt", "key_env"): _env_name,
    ("jwt", "jwks_url"): _url,
    ("jwt", "jwks_timeout"): _timeout,
    ("jwt", "jwks_lifespan"): _pos_float,
    ("jwt", "jwks_min_refresh_interval"): _pos_float,
    ("jwt", "issuer"): _str,
    ("jwt", "audience"): _str_list,
    ("jwt", "leeway"): _leeway,
    ("jwt", "required_claims"): _str_list,
    ("jwt", "subject_claim"): _claim_path,
    ("jwt", "groups_claim"): _claim_path,
    ("policy", "dir"): _path,
    ("policy", "shadow"): _bool,
    ("deploy", "dags_folder"): _path,
    ("deploy", "max_upload_bytes"): _pos_int,
    ("deploy", "allow_zip"): _bool,
    ("deploy", "allow_subfolder"): _bool,
    ("deploy", "max_zip_entries"): _pos_int,
    ("deploy", "max_unzipped_bytes"): _pos_int,
    ("deploy", "dag_list_ttl"): _pos_float,
    ("jobs", "database_url"): _database_url,
    ("jobs", "max_running"): _pos_int,
    ("jobs", "max_queued"): _non_neg_int,
    ("jobs", "timeout"): _pos_float,
    ("jobs", "max_output_bytes"): _pos_int,
    ("jobs", "retention"): _pos_float,
    ("jobs", "stream_max_seconds"): _pos_float,
}
_TABLE_KEYS = {("airflow", "env"), ("cli", "timeouts")}
_SECRET_KEYS = {(PLUGIN_SECTION, "rest_api_plugin_expected_http_token"), ("metrics", "token")}


def setting_names() -> tuple[tuple[str, str], ...]:
    """Every accepted (section, key), in schema order (for the sample configuration)."""
    return tuple(_SCHEMA)


def check_setting(section: str, key: str, value: Any) -> Any:
    """Validate one raw value of ``section.key`` as a TOML file would give it."""
    return _SCHEMA[(section, key)](f"{section}.{key}", value)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def _flatten(doc: Mapping[str, Any], origin: str) -> dict[tuple[str, str], Any]:
    flat: dict[tuple[str, str], Any] = {}
    for section, body in doc.items():
        if not isinstance(body, Mapping):
            raise ConfigError(f"{origin}: top-level key {section!r} must be a [section]")
        for key, value in body.items():
            if (section, key) not in _SCHEMA:
                raise ConfigError(f"{origin}: unknown setting {section}.{key}")
            flat[(section, key)] = value
    return flat


def _from_env(environ: Mapping[str, str]) -> dict[tuple[str, str], Any]:
    """``AIRFLOW_GATEWAY__CLI__TIMEOUTS__TEST=300`` sets ``cli.timeouts.test``."""
    flat: dict[tuple[str, str], Any] = {}
    for var, value in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX):
            continue
        parts = var[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) < 2 or (parts[0], parts[1]) not in _SCHEMA:
            raise ConfigError(f"environment variable {var}: unknown setting")
        key = (parts[0], parts[1])
        if len(parts) == 3 and key in _TABLE_KEYS:
            table = dict(flat.get(key, {}))
            # env keys of [airflow.env] are upper-case variable names
            table[parts[2].upper() if key == ("airflow", "env") else parts[2]] = value
            flat[key] = table
        elif len(parts) == 2:
            flat[key] = value
        else:
            raise ConfigError(f"environment variable {var}: unknown setting")
    return flat


def _from_airflow_cfg(path: Path) -> dict[tuple[str, str], Any]:
    """Read the original plugin's ``[rest_api_plugin]`` section, if there is one."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read [{PLUGIN_SECTION}]: {type(exc).__name__}") from None
    if not parser.has_section(PLUGIN_SECTION):
        return {}
    flat: dict[tuple[str, str], Any] = {}
    for key, value in parser.items(PLUGIN_SECTION):
        if (PLUGIN_SECTION, key) in _SCHEMA and value.strip():
            flat[(PLUGIN_SECTION, key)] = value.strip()
    return flat


def _default_executable(environ: Mapping[str, str]) -> str:
    return shutil.which("airflow", path=environ.get("PATH")) or "airflow"


def load_config(environ: Mapping[str, str], path: Path | None = None) -> GatewayConfig:
    """Load, merge and validate the configuration.

    :param environ: the process environment (tests pass a dict).
    :param path: the TOML file; defaults to ``$AIRFLOW_GATEWAY_CONFIG`` when set.
    :raises ConfigError: naming the first bad setting.
    """
    sources: list[str] = ["defaults"]
    if path is None and environ.get(CONFIG_PATH_ENV):
        path = Path(environ[CONFIG_PATH_ENV])
    file_values: dict[tuple[str, str], Any] = {}
    if path is not None:
        file_values = _flatten(_read_toml(path), str(path))
        sources.append(str(path))
    env_values = _from_env(environ)
    merged = {**file_values, **env_values}
    for key in _TABLE_KEYS & file_values.keys() & env_values.keys():
        # a single env override adds to a table instead of replacing it
        if isinstance(file_values[key], Mapping):
            merged[key] = {**file_values[key], **env_values[key]}

    def raw(section: str, key: str, default: Any = None) -> Any:
        return merged.get((section, key), default)

    def get(section: str, key: str, default: Any = None) -> Any:
        value = raw(section, key)
        if value is None:
            return default
        name = f"{section}.{key}"
        return _SCHEMA[(section, key)](name, value)

    home = get("airflow", "home") or (
        Path(environ["AIRFLOW_HOME"]) if environ.get("AIRFLOW_HOME") else None
    )
    cfg_path = get(PLUGIN_SECTION, "airflow_cfg") or (home / "airflow.cfg" if home else None)
    if cfg_path is not None and (raw(PLUGIN_SECTION, "airflow_cfg") or cfg_path.is_file()):
        if not cfg_path.is_file():
            raise ConfigError(f"{PLUGIN_SECTION}.airflow_cfg has value {str(cfg_path)!r}: not a file")
        legacy = _from_airflow_cfg(cfg_path)
        if legacy:
            sources.insert(1, f"{cfg_path} [{PLUGIN_SECTION}]")
            merged = {**legacy, **merged}

    if get("auth", "allow_anonymous", False) and not raw("policy", "dir"):
        # Without policies, anonymous callers could run every API.
        raise ConfigError("auth.allow_anonymous = true needs policy.dir (policies limit anonymous callers)")
    state_dir = get("gateway", "state_dir", Path(".state")).resolve()
    token = get(PLUGIN_SECTION, "rest_api_plugin_expected_http_token")
    return GatewayConfig(
        state_dir=state_dir,
        trusted_proxy_count=get("gateway", "trusted_proxy_count", 0),
        airflow=AirflowConfig(
            executable=get("airflow", "executable") or _default_executable(environ),
            home=home.resolve() if home else None,
            dialect=get("airflow", "dialect", "auto"),
            env=get("airflow", "env", {}),
        ),
        cli=CliConfig(
            default_timeout_s=get("cli", "default_timeout", 120.0),
            timeouts_s=get("cli", "timeouts", {}),
            max_output_bytes=get("cli", "max_output_bytes", 1024 * 1024),
            max_concurrent=get("cli", "max_concurrent", 3),
            filter_loading_messages=get(PLUGIN_SECTION, "filter_loading_messages_in_cli_response", True),
            files_dir=(get("cli", "files_dir") or state_dir / "files").resolve(),
            runner=get("cli", "runner", "warm"),
            max_waiting=get("cli", "max_waiting", 2),
            queue_timeout_s=get("cli", "queue_timeout", 5.0),
            pass_principal_as_user=get("cli", "pass_principal_as_user", True),
            warm_max_calls=get("cli", "warm_max_calls", 2000),
            warm_max_age_s=get("cli", "warm_max_age", 3600.0),
            warm_max_rss_bytes=get("cli", "warm_max_rss_bytes", 1024 * 1024 * 1024),
        ),
        plugin_auth=PluginAuthConfig(
            header_name=get(PLUGIN_SECTION, "rest_api_plugin_http_token_header_name", "rest_api_plugin_http_token"),
            expected_token=token,
        ),
        proxy=ProxyConfig(
            upstream=get("proxy", "upstream"),
            connect_timeout_s=get("proxy", "connect_timeout", 5.0),
            read_timeout_s=get("proxy", "read_timeout", 60.0),
            host_header=get("proxy", "host_header", "client"),
            pool_size=get("proxy", "pool_size", 16),
            readiness_path=get("proxy", "readiness_path", "/"),
        ),
        limits=LimitsConfig(
            max_body_bytes=get("limits", "max_body_bytes", 16 * 1024 * 1024),
            max_form_memory_bytes=get("limits", "max_form_memory_bytes", 1024 * 1024),
        ),
        audit=AuditConfig(
            file=(lambda f: f.resolve() if f else None)(get("audit", "file")),
            sensitive_names=get("audit", "sensitive_names", ()),
        ),
        metrics=MetricsConfig(
            enabled=get("metrics", "enabled", True),
            token=get("metrics", "token"),
            allow_from=get("metrics", "allow_from", ()),
        ),
        auth=AuthConfig(
            header_name=get("auth", "header_name", DEFAULT_AUTH_HEADER),
            tokens=get("auth", "tokens", ()),
            allow_anonymous=get("auth", "allow_anonymous", False),
        ),
        jwt=_jwt_config(get),
        policy=PolicyConfig(
            dir=get("policy", "dir").resolve() if raw("policy", "dir") else None,
            shadow=get("policy", "shadow", False),
        ),
        deploy=DeployConfig(
            dags_folder=(folder.resolve() if (folder := get("deploy", "dags_folder")) else None),
            max_upload_bytes=get("deploy", "max_upload_bytes", 1024 * 1024),
            allow_zip=get("deploy", "allow_zip", True),
            allow_subfolder=get("deploy", "allow_subfolder", True),
            max_zip_entries=get("deploy", "max_zip_entries", 200),
            max_unzipped_bytes=get("deploy", "max_unzipped_bytes", 16 * 1024 * 1024),
            dag_list_ttl_s=get("deploy", "dag_list_ttl", 10.0),
        ),
        jobs=JobsConfig(
            database_url=get("jobs", "database_url"),
            max_running=get("jobs", "max_running", 2),
            max_queued=get("jobs", "max_queued", 20),
            timeout_s=get("jobs", "timeout", 3600.0),
            max_output_bytes=get("jobs", "max_output_bytes", 8 * 1024 * 1024),
            retention_s=get("jobs", "retention", 7 * 86400.0),
            stream_max_s=get("jobs", "stream_max_seconds", 30.0),
        ),
        sources=tuple(sources),
        compatibility=get(PLUGIN_SECTION, "compatibility", "off"),
    )


def _jwt_config(get: Callable[..., Any]) -> JwtConfig:
    """Build and cross-check ``[jwt]``: exactly one key source when algorithms are set."""
    algorithms = get("jwt", "algorithms", ())
    key_file, key_env, jwks_url = get("jwt", "key_file"), get("jwt", "key_env"), get("jwt", "jwks_url")
    sources = [n for n, v in (("key_file", key_file), ("key_env", key_env), ("jwks_url", jwks_url)) if v]
    if algorithms and len(sources) != 1:
        raise ConfigError("jwt: set exactly one of jwt.key_file, jwt.key_env, jwt.jwks_url")
    if not algorithms and sources:
        raise ConfigError(f"jwt.{sources[0]} is set but jwt.algorithms is not (JWT would be off)")
    if jwks_url and any(a.startswith("HS") for a in algorithms):
        raise ConfigError("jwt.algorithms: HS* (shared secrets) cannot come from a JWKS URL")
    return JwtConfig(
        algorithms=algorithms,
        key_file=key_file.resolve() if key_file else None,
        key_env=key_env,
        jwks_url=jwks_url,
        jwks_timeout_s=get("jwt", "jwks_timeout", 3.0),
        jwks_lifespan_s=get("jwt", "jwks_lifespan", 300.0),
        jwks_min_refresh_interval_s=get("jwt", "jwks_min_refresh_interval", 30.0),
        issuer=get("jwt", "issuer"),
        audience=get("jwt", "audience", ()),
        leeway_s=get("jwt", "leeway", 10.0),
        required_claims=get("jwt", "required_claims", ()),
        subject_claim=get("jwt", "subject_claim", "sub"),
        groups_claim=get("jwt", "groups_claim"),
    )


def check_writable(config: GatewayConfig) -> None:
    """Create the state directories and the audit file now, so start-up fails naming the
    setting instead of a worker failing to boot with a traceback.

    :raises ConfigError: naming ``gateway.state_dir``, ``cli.files_dir`` or ``audit.file``.
    """
    directories = (("gateway.state_dir", config.state_dir), ("cli.files_dir", config.cli.files_dir))
    for setting, directory in directories:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=directory, prefix=".write-check-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise ConfigError(
                f"{setting} has value '{directory}': not a writable directory ({exc.strerror})"
            ) from None
    if config.audit.file is not None:
        try:
            config.audit.file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            os.close(os.open(config.audit.file, flags, 0o640))
        except OSError as exc:
            raise ConfigError(
                f"audit.file has value '{config.audit.file}': cannot be written ({exc.strerror})"
            ) from None


def load_config_from_process() -> GatewayConfig:
    """Load from ``os.environ``: the single entry point used by the app factory and commands."""
    return load_config(os.environ)


def describe(config: GatewayConfig) -> dict[str, Any]:
    """A printable summary for ``check-config``, with secrets masked."""
    return {
        "sources": list(config.sources),
        "state_dir": str(config.state_dir),
        "airflow": {
            "executable": config.airflow.executable,
            "home": str(config.airflow.home) if config.airflow.home else None,
            "dialect": config.airflow.dialect,
            "env": sorted(config.airflow.env),
        },
        "cli": {
            "default_timeout_s": config.cli.default_timeout_s,
            "timeouts_s": dict(config.cli.timeouts_s),
            "max_output_bytes": config.cli.max_output_bytes,
            "max_concurrent": config.cli.max_concurrent,
            "max_waiting": config.cli.max_waiting,
            "queue_timeout_s": config.cli.queue_timeout_s,
            "files_dir": str(config.cli.files_dir),
            "runner": config.cli.runner,
            "pass_principal_as_user": config.cli.pass_principal_as_user,
            "warm_max_calls": config.cli.warm_max_calls,
            "warm_max_age_s": config.cli.warm_max_age_s,
            "warm_max_rss_bytes": config.cli.warm_max_rss_bytes,
        },
        "rest_api_plugin": {
            "header_name": config.plugin_auth.header_name,
            "token_configured": config.plugin_auth.expected_token is not None,
            "compatibility": config.compatibility,
        },
        "proxy": {
            "upstream": config.proxy.upstream,
            "connect_timeout_s": config.proxy.connect_timeout_s,
            "read_timeout_s": config.proxy.read_timeout_s,
            "host_header": config.proxy.host_header,
            "pool_size": config.proxy.pool_size,
        },
        "audit": {
            "file": str(config.audit.file) if config.audit.file else None,
            "sensitive_names": list(config.audit.sensitive_names),
        },
        "metrics": {
            "enabled": config.metrics.enabled,
            "token_configured": config.metrics.token is not None,
            "allow_from": list(config.metrics.allow_from),
        },
        "auth": {
            "header_name": config.auth.header_name,
            "tokens": [{"name": t.name, "groups": sorted(t.groups)} for t in config.auth.tokens],
            "allow_anonymous": config.auth.allow_anonymous,
        },
        "jwt": {
            "enabled": config.jwt.enabled,
            "algorithms": list(config.jwt.algorithms),
            "key_source": "jwks_url" if config.jwt.jwks_url else "key_file" if config.jwt.key_file
            else "key_env" if config.jwt.key_env else None,
            "issuer": config.jwt.issuer,
            "audience": list(config.jwt.audience),
        },
        "policy": {
            "dir": str(config.policy.dir) if config.policy.dir else None,
            "shadow": config.policy.shadow,
        },
        "deploy": {
            "dags_folder": str(config.deploy.dags_folder) if config.deploy.dags_folder else "(asked from Airflow)",
            "max_upload_bytes": config.deploy.max_upload_bytes,
            "allow_zip": config.deploy.allow_zip,
        },
        "jobs": {
            "store": "postgresql" if config.jobs.database_url else "sqlite (state directory)",
            "max_running": config.jobs.max_running,
            "max_queued": config.jobs.max_queued,
            "timeout_s": config.jobs.timeout_s,
            "max_output_bytes": config.jobs.max_output_bytes,
            "retention_s": config.jobs.retention_s,
            "stream_max_s": config.jobs.stream_max_s,
        },
    }
