"""Configuration: one TOML file plus environment overrides, validated once at start-up.

Precedence, lowest first: built-in defaults, the ``[rest_api_plugin]`` section of an
existing ``airflow.cfg`` (migration from the original plugin), the gateway's TOML file,
then ``AIRFLOW_GATEWAY__SECTION__KEY`` environment variables.  Any bad value raises
:class:`ConfigError` naming the setting; secret values are never echoed.
"""

from __future__ import annotations

import configparser
import os
import shutil
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
class GatewayConfig:
    """The whole, validated configuration, passed explicitly to every layer."""

    state_dir: Path
    trusted_proxy_count: int
    airflow: AirflowConfig
    cli: CliConfig
    plugin_auth: PluginAuthConfig
    proxy: ProxyConfig
    limits: LimitsConfig
    sources: tuple[str, ...] = field(default=())

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
    ("cli", "timeouts"): _float_mapping,
    ("cli", "max_output_bytes"): _pos_int,
    ("cli", "max_concurrent"): _pos_int,
    ("cli", "files_dir"): _path,
    (PLUGIN_SECTION, "log_loading"): _bool,
    (PLUGIN_SECTION, "filter_loading_messages_in_cli_response"): _bool,
    (PLUGIN_SECTION, "rest_api_plugin_http_token_header_name"): _header_name,
    (PLUGIN_SECTION, "rest_api_plugin_expected_http_token"): _secret,
    (PLUGIN_SECTION, "airflow_cfg"): _path,
    ("proxy", "upstream"): _url,
    ("proxy", "connect_timeout"): _pos_float,
    ("proxy", "read_timeout"): _pos_float,
    ("proxy", "host_header"): _host_policy,
    ("proxy", "pool_size"): _pos_int,
    ("proxy", "readiness_path"): _abs_path,
    ("limits", "max_body_bytes"): _pos_int,
    ("limits", "max_form_memory_bytes"): _pos_int,
}
_TABLE_KEYS = {("airflow", "env"), ("cli", "timeouts")}
_SECRET_KEYS = {(PLUGIN_SECTION, "rest_api_plugin_expected_http_token")}


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
            max_concurrent=get("cli", "max_concurrent", 4),
            filter_loading_messages=get(PLUGIN_SECTION, "filter_loading_messages_in_cli_response", True),
            files_dir=(get("cli", "files_dir") or state_dir / "files").resolve(),
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
        sources=tuple(sources),
    )


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
            "files_dir": str(config.cli.files_dir),
        },
        "rest_api_plugin": {
            "header_name": config.plugin_auth.header_name,
            "token_configured": config.plugin_auth.expected_token is not None,
        },
        "proxy": {
            "upstream": config.proxy.upstream,
            "connect_timeout_s": config.proxy.connect_timeout_s,
            "read_timeout_s": config.proxy.read_timeout_s,
            "host_header": config.proxy.host_header,
            "pool_size": config.proxy.pool_size,
        },
    }
