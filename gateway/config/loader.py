"""Configuration: one TOML file plus environment overrides, validated once at start-up.

Precedence, lowest first: built-in defaults, the ``[rest_api_plugin]`` section of an
existing ``airflow.cfg`` (migration from the original plugin), the gateway's TOML file,
then ``AIRFLOW_GATEWAY__SECTION__KEY`` environment variables (and the older ``GATEWAY_*``
names of the ``[server]`` settings).  Every setting, with its type, default and meaning,
is an attribute of a section class in :mod:`gateway.config.settings`; this module only
gathers raw values from those sources, validates each through its record, and builds the
sections (then their :meth:`~gateway.config.settings.Section.derive` and
:meth:`~gateway.config.settings.Section.check`).  It names no setting of its own.  Any bad
value raises :class:`ConfigError` naming the setting and where the value came from; secret
values are never echoed.
"""

from __future__ import annotations

import configparser
import difflib
import os
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gateway.config.settings import (
    ENV_PREFIX,
    AirflowConfig,
    AuditConfig,
    AuthConfig,
    CliConfig,
    ConfigError,
    DeployConfig,
    GatewayConfig,
    GatewayProcessConfig,
    JobsConfig,
    JwtConfig,
    LimitsConfig,
    MetricsConfig,
    NamedToken,
    PolicyConfig,
    ProxyConfig,
    Registry,
    RestApiPluginConfig,
    Secret,
    ServerConfig,
    Setting,
)

# The section types are re-exported: the rest of the gateway imports its configuration from here.
__all__ = [
    "CONFIG_PATH_ENV", "ENV_PREFIX", "AirflowConfig", "AuditConfig", "AuthConfig", "CliConfig", "ConfigError",
    "DeployConfig", "GatewayConfig", "GatewayProcessConfig", "JobsConfig", "JwtConfig", "LimitsConfig",
    "MetricsConfig", "NamedToken", "PolicyConfig", "ProxyConfig", "RestApiPluginConfig", "Secret",
    "ServerConfig", "check_writable", "describe", "load_config", "load_config_from_process", "setting_names",
]  # fmt: skip

CONFIG_PATH_ENV = "AIRFLOW_GATEWAY_CONFIG"


def setting_names(schema: type[GatewayConfig] = GatewayConfig) -> tuple[tuple[str, str], ...]:
    """Every accepted (section, key), in file order."""
    return tuple((s.section, s.key) for s in schema.registry().settings)


# One raw value from one source: (setting name, value, where it came from).
_Entry = tuple[str, Any, str]


def _unknown(registry: Registry, origin: str, name: str) -> ConfigError:
    close = difflib.get_close_matches(name, list(registry.by_name), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"{origin}: unknown setting {name}{hint}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def _from_toml(registry: Registry, doc: Mapping[str, Any], origin: str) -> list[_Entry]:
    entries: list[_Entry] = []
    for section, body in doc.items():
        if not isinstance(body, Mapping):
            raise ConfigError(f"{origin}: top-level key {section!r} must be a [section]")
        for key, value in body.items():
            if f"{section}.{key}" not in registry.by_name:
                raise _unknown(registry, origin, f"{section}.{key}")
            entries.append((f"{section}.{key}", value, origin))
    return entries


def _from_env(registry: Registry, environ: Mapping[str, str]) -> list[_Entry]:
    """``AIRFLOW_GATEWAY__CLI__DEFAULT_TIMEOUT=45`` sets ``cli.default_timeout``, and
    ``AIRFLOW_GATEWAY__CLI__TIMEOUTS__TEST=300`` the ``test`` entry of the ``cli.timeouts`` table."""
    entries: list[_Entry] = []
    for var, value in sorted(environ.items()):
        alias = registry.by_alias.get(var)
        if alias is not None:
            # Aliases are never secrets, so the value may be quoted.  Empty means unset,
            # as with `${VAR:-}` in compose files; the canonical name wins over an alias.
            if value.strip() and alias.env not in environ:
                entries.append((alias.name, value, f"{var}={value!r}"))
            continue
        if not var.startswith(ENV_PREFIX):
            continue
        section, _, rest = var[len(ENV_PREFIX) :].partition("__")
        key, _, entry = rest.partition("__")
        setting = registry.by_name.get(f"{section}.{key}".lower())
        if setting is None or (entry and not setting.type.table):
            raise _unknown(registry, f"environment variable {var}", f"{section}.{key}".lower())
        origin = f"environment variable {var}"
        if entry:
            # API names are lower-case; other table keys (environment names) are kept as written.
            entries.append((setting.name, {entry.lower() if setting.api_keys else entry: value}, origin))
        else:
            entries.append((setting.name, value, origin))
    return entries


def _from_airflow_cfg(path: Path) -> list[_Entry]:
    """Read the original plugin's ``[rest_api_plugin]`` section, if there is one (its settings
    have the same names in both files; the one naming the file itself is not read from it)."""
    section, path_setting = RestApiPluginConfig.name, RestApiPluginConfig.airflow_cfg
    if not path.is_file():
        raise ConfigError(f"{path_setting.name} has value {str(path)!r}: not a file")
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read [{section}]: {type(exc).__name__}") from None
    if not parser.has_section(section):
        return []
    keys = {s.key for s in RestApiPluginConfig.settings} - {path_setting.key}
    origin = f"{path} [{section}]"
    return [
        (f"{section}.{key}", value.strip(), origin)
        for key, value in parser.items(section)
        if key in keys and value.strip()
    ]


class _Raw:
    """Raw values merged from sources, lowest precedence first, remembering each one's origin."""

    def __init__(self, registry: Registry, *layers: Iterable[_Entry]) -> None:
        self.values: dict[str, Any] = {}
        self.origins: dict[str, str] = {}
        for layer in layers:
            for name, value, origin in layer:
                before = self.values.get(name)
                table = registry.by_name[name].type.table
                if table and isinstance(before, Mapping) and isinstance(value, Mapping):
                    # A single environment entry adds to the file's table instead of replacing it.
                    value = {**before, **value}
                    if origin not in self.origins[name]:
                        origin = f"{self.origins[name]}; {origin}"
                self.values[name] = value
                self.origins[name] = origin

    def get(self, setting: Setting[Any]) -> Any:
        """The validated value of one setting (its default when no source sets it)."""
        try:
            value = setting.parse(self.values.get(setting.name, setting.default))
            if setting.api_keys and value:
                _check_api_names(setting.name, value)
        except ConfigError as exc:
            if setting.name in self.origins:
                raise ConfigError(f"{exc} (from {self.origins[setting.name]})") from None
            raise
        return value


def _check_api_names(name: str, table: Mapping[str, Any]) -> None:
    """A table keyed by API name: a misspelt API (``{ tset = 10 }``) is an error."""
    from gateway.cli.apis import CATALOGUE  # the catalogue is data: no import cycle at run time

    for key in table:
        if key not in CATALOGUE:
            close = difflib.get_close_matches(key, list(CATALOGUE), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{name}.{key}: no API is named {key!r}{hint}")


def load_config(
    environ: Mapping[str, str], path: Path | None = None, *, schema: type[GatewayConfig] = GatewayConfig
) -> GatewayConfig:
    """Load, merge and validate the configuration.

    :param environ: the process environment (tests pass a dict).
    :param path: the TOML file; defaults to ``$AIRFLOW_GATEWAY_CONFIG`` when set.
    :param schema: the configuration class whose sections are read (a test's subclass).
    :raises ConfigError: naming the first bad setting.
    """
    registry = schema.registry()
    sources: list[str] = ["defaults"]
    if path is None and environ.get(CONFIG_PATH_ENV):
        path = Path(environ[CONFIG_PATH_ENV])
    file_entries: list[_Entry] = []
    if path is not None:
        file_entries = _from_toml(registry, _read_toml(path), str(path))
        sources.append(str(path))
    env_entries = _from_env(registry, environ)
    raw = _Raw(registry, file_entries, env_entries)

    # Which airflow.cfg to migrate from (derived in [rest_api_plugin] from [airflow]) must be
    # known before the rest: its values are the lowest layer.
    first = _build(schema, raw, environ, (), only={AirflowConfig.name, RestApiPluginConfig.name})
    cfg_path = first.rest_api_plugin.airflow_cfg
    if cfg_path is not None:
        legacy = _from_airflow_cfg(cfg_path)
        if legacy:
            sources.insert(1, f"{cfg_path} [{RestApiPluginConfig.name}]")
            raw = _Raw(registry, legacy, file_entries, env_entries)
    return _build(schema, raw, environ, tuple(sources))


def _build(
    schema: type[GatewayConfig],
    raw: _Raw,
    environ: Mapping[str, str],
    sources: tuple[str, ...],
    only: set[str] | None = None,
) -> GatewayConfig:
    """Every section from validated values (``only``: just these, the others at their defaults,
    unchecked), then each section's derived values in order, then the checks across settings."""
    sections = schema.registry().sections
    chosen = [cls for cls in sections if only is None or cls.name in only]
    config = schema({cls.name: cls(**{s.key: raw.get(s) for s in cls.settings}) for cls in chosen}, sources)
    for cls in sections:
        done = getattr(config, cls.name).derive(config, environ)
        unset = [s.name for s in cls.settings if s.derived and getattr(done, s.key) is None]
        if unset:  # a programming error, not a configuration one
            raise TypeError(f"{type(done).__name__}.derive left {', '.join(unset)} unset")
        config = config.replace(**{cls.name: done})
    if only is None:
        for cls in sections:
            getattr(config, cls.name).check(config)
    return config


def check_writable(config: GatewayConfig) -> None:
    """Create the state directories and the audit file now, so start-up fails naming the
    setting instead of a worker failing to boot with a traceback.

    :raises ConfigError: naming ``gateway.state_dir``, ``cli.files_dir`` or ``audit.file``.
    """
    directories = (
        (GatewayProcessConfig.state_dir.name, config.gateway.state_dir),
        (CliConfig.files_dir.name, config.cli.files_dir),
    )
    for setting, directory in directories:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=directory, prefix=".write-check-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise ConfigError(
                f"{setting} has value '{directory}': not a writable directory ({_why(exc, directory)})"
            ) from None
    if config.audit.file is not None:
        try:
            config.audit.file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            os.close(os.open(config.audit.file, flags, 0o640))
        except OSError as exc:
            path, why = config.audit.file, _why(exc, config.audit.file)
            raise ConfigError(
                f"{AuditConfig.file.name} has value '{path}': cannot be written ({why})"
            ) from None


def _why(exc: OSError, path: Path) -> str:
    """``strerror``, and the path it is about when that is not the setting's own (a parent)."""
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, FileExistsError):  # mkdir met a file where a directory must be
        reason = "not a directory"
    if exc.filename and str(exc.filename) != str(path):
        return f"{reason}: {exc.filename}"
    return reason


def load_config_from_process() -> GatewayConfig:
    """Load from ``os.environ``: the single entry point used by the app factory and commands."""
    return load_config(os.environ)


def describe(config: GatewayConfig) -> dict[str, Any]:
    """A printable summary for ``check-config``: every setting's value by section, secrets masked."""
    summary: dict[str, Any] = {"sources": list(config.sources)}
    values = config.settings
    for setting in config.registry().settings:
        summary.setdefault(setting.section, {})[setting.key] = _printable(setting, values[setting.name])
    return summary


def _printable(setting: Setting[Any], value: Any) -> Any:
    if value is None:
        return None
    if setting.secret:
        # A secret table shows which entries are set (airflow.env: the variable names).
        return sorted(value) if isinstance(value, Mapping) else "(set, not shown)"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (tuple, list)):
        return [_printable(setting, item) for item in value]
    if isinstance(value, NamedToken):
        return {"name": value.name, "groups": sorted(value.groups)}  # never the hash
    if isinstance(value, Secret):  # pragma: no cover - a Secret type without the secret flag
        return "(set, not shown)"
    return value
