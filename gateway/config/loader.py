"""Configuration: one TOML file plus environment overrides, validated once at start-up.

Precedence, lowest first: built-in defaults, the ``[rest_api_plugin]`` section of an
existing ``airflow.cfg`` (migration from the original plugin), the gateway's TOML file,
then ``AIRFLOW_GATEWAY__SECTION__KEY`` environment variables (and the older ``GATEWAY_*``
names of the ``[server]`` settings).  Every setting, with its type, default and meaning,
is a record in :mod:`gateway.config.settings`; this module reads values through those records
and builds the typed objects the rest of the gateway uses.  Any bad value raises
:class:`ConfigError` naming the setting and where the value came from; secret values are
never echoed.
"""

from __future__ import annotations

import configparser
import difflib
import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.settings import (
    BY_ALIAS,
    BY_NAME,
    ENV_PREFIX,
    PLUGIN_SECTION,
    SETTINGS,
    ConfigError,
    NamedToken,
    Secret,
    Setting,
)

__all__ = [
    "CONFIG_PATH_ENV", "ENV_PREFIX", "PLUGIN_SECTION", "AirflowConfig", "AuditConfig", "AuthConfig",
    "CliConfig", "ConfigError", "DeployConfig", "GatewayConfig", "JobsConfig", "JwtConfig", "LimitsConfig",
    "MetricsConfig", "NamedToken", "PluginAuthConfig", "PolicyConfig", "ProxyConfig", "Secret",
    "ServerConfig", "check_setting", "check_writable", "describe", "load_config", "load_config_from_process",
    "setting_names",
]  # fmt: skip

CONFIG_PATH_ENV = "AIRFLOW_GATEWAY_CONFIG"


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
    runner: str
    #: calls that may wait for a slot (beyond them: 503 at once), and for how long.
    max_waiting: int
    queue_timeout_s: float
    #: Airflow records the gateway principal's name as the CLI user (LOGNAME/USER).
    pass_principal_as_user: bool
    #: the warm process is replaced after this many calls, this age or this RSS.
    warm_max_calls: int
    warm_max_age_s: float
    warm_max_rss_bytes: int
    #: CPU priority of every CLI call and job (see gateway.execution.proctree.lower_priority).
    nice: int
    #: "auto", "off" or a cgroup directory: where CLI calls and jobs run (gateway.execution.cpugroup).
    idle_cgroup: str


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
    host_header: str  # "client", "upstream" or a fixed host[:port]
    pool_size: int
    readiness_path: str


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
    """deploy_dag: where uploads go and how big they may be.

    :param dags_folder: ``None`` asks Airflow (``airflow config get-value core dags_folder``).
    """

    dags_folder: Path | None
    max_upload_bytes: int
    allow_zip: bool
    allow_subfolder: bool
    max_zip_entries: int
    max_unzipped_bytes: int


@dataclass(frozen=True, slots=True)
class JobsConfig:
    """Long CLI calls as jobs.

    :param database_url: ``postgresql://...`` for a store shared by several gateway
        instances; ``None`` keeps the store in SQLite under the state directory.
    :param max_running: jobs running at once per gateway worker process (their own limit,
        apart from ``cli.max_concurrent``); more wait as ``queued``.
    :param max_queued: jobs waiting per worker process before submissions get 503.
    :param stream_max_s: how long one SSE response lasts before the client reconnects.
    :param max_streams: SSE responses open at once per worker process (each holds a thread).
    :param max_streams_per_principal: the same, for one principal.
    :param max_stored_output_per_principal: output characters stored for one principal's jobs
        before their new jobs are refused.
    """

    database_url: Secret | None
    max_running: int
    max_queued: int
    timeout_s: float
    max_output_bytes: int
    retention_s: float
    stream_max_s: float
    max_streams: int = 8
    max_streams_per_principal: int = 2
    max_stored_output_per_principal: int = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """gunicorn's settings (``gateway/entry/gunicorn_conf.py``)."""

    bind: str
    workers: int
    threads: int
    head_timeout_s: int
    keepalive_s: int
    keepalive_linger_ms: int
    graceful_timeout_s: int
    max_requests: int
    max_requests_jitter: int
    access_log: str | None


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
    audit: AuditConfig
    metrics: MetricsConfig
    auth: AuthConfig
    jwt: JwtConfig
    policy: PolicyConfig
    deploy: DeployConfig
    jobs: JobsConfig
    server: ServerConfig
    sources: tuple[str, ...]
    compatibility: str  # "1.0.9": answer like the original plugin (gateway/cli/compat.py)
    #: every setting's value by name ("cli.default_timeout"), computed defaults filled in.
    settings: Mapping[str, Any]

    @property
    def daemon_dir(self) -> Path:
        """Where detached daemons' pid records and logs live."""
        return self.state_dir / "daemons"


def setting_names() -> tuple[tuple[str, str], ...]:
    """Every accepted (section, key), in the order of :data:`gateway.config.settings.SETTINGS`."""
    return tuple((s.section, s.key) for s in SETTINGS)


def check_setting(section: str, key: str, value: Any) -> Any:
    """Validate one raw value of ``section.key`` as a TOML file would give it."""
    return BY_NAME[f"{section}.{key}"].parse(value)


# One raw value from one source: (setting name, value, where it came from).
_Entry = tuple[str, Any, str]


def _unknown(origin: str, name: str) -> ConfigError:
    close = difflib.get_close_matches(name, list(BY_NAME), n=1)
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


def _from_toml(doc: Mapping[str, Any], origin: str) -> list[_Entry]:
    entries: list[_Entry] = []
    for section, body in doc.items():
        if not isinstance(body, Mapping):
            raise ConfigError(f"{origin}: top-level key {section!r} must be a [section]")
        for key, value in body.items():
            if f"{section}.{key}" not in BY_NAME:
                raise _unknown(origin, f"{section}.{key}")
            entries.append((f"{section}.{key}", value, origin))
    return entries


def _from_env(environ: Mapping[str, str]) -> list[_Entry]:
    """``AIRFLOW_GATEWAY__CLI__DEFAULT_TIMEOUT=45`` sets ``cli.default_timeout``, and
    ``AIRFLOW_GATEWAY__CLI__TIMEOUTS__TEST=300`` the ``test`` entry of the ``cli.timeouts`` table."""
    entries: list[_Entry] = []
    for var, value in sorted(environ.items()):
        alias = BY_ALIAS.get(var)
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
        setting = BY_NAME.get(f"{section}.{key}".lower())
        if setting is None or (entry and not setting.type.table):
            raise _unknown(f"environment variable {var}", f"{section}.{key}".lower())
        origin = f"environment variable {var}"
        if entry:
            # API names are lower-case; other table keys (environment names) are kept as written.
            entries.append((setting.name, {entry.lower() if setting.api_keys else entry: value}, origin))
        else:
            entries.append((setting.name, value, origin))
    return entries


def _from_airflow_cfg(path: Path) -> list[_Entry]:
    """Read the original plugin's ``[rest_api_plugin]`` section, if there is one."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read [{PLUGIN_SECTION}]: {type(exc).__name__}") from None
    if not parser.has_section(PLUGIN_SECTION):
        return []
    origin = f"{path} [{PLUGIN_SECTION}]"
    return [
        (f"{PLUGIN_SECTION}.{key}", value.strip(), origin)
        for key, value in parser.items(PLUGIN_SECTION)
        if f"{PLUGIN_SECTION}.{key}" in BY_NAME and value.strip()
    ]


class _Raw:
    """Raw values merged from sources, lowest precedence first, remembering each one's origin."""

    def __init__(self, *layers: Iterable[_Entry]) -> None:
        self.values: dict[str, Any] = {}
        self.origins: dict[str, str] = {}
        for layer in layers:
            for name, value, origin in layer:
                before = self.values.get(name)
                if BY_NAME[name].type.table and isinstance(before, Mapping) and isinstance(value, Mapping):
                    # A single environment entry adds to the file's table instead of replacing it.
                    value = {**before, **value}
                    if origin not in self.origins[name]:
                        origin = f"{self.origins[name]}; {origin}"
                self.values[name] = value
                self.origins[name] = origin

    def is_set(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str) -> Any:
        """The validated value of one setting (its default when no source sets it)."""
        setting = BY_NAME[name]
        try:
            value = setting.parse(self.values.get(name, setting.default))
            if setting.api_keys and value:
                _check_api_names(name, value)
        except ConfigError as exc:
            if name in self.origins:
                raise ConfigError(f"{exc} (from {self.origins[name]})") from None
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


def load_config(environ: Mapping[str, str], path: Path | None = None) -> GatewayConfig:
    """Load, merge and validate the configuration.

    :param environ: the process environment (tests pass a dict).
    :param path: the TOML file; defaults to ``$AIRFLOW_GATEWAY_CONFIG`` when set.
    :raises ConfigError: naming the first bad setting.
    """
    sources: list[str] = ["defaults"]
    if path is None and environ.get(CONFIG_PATH_ENV):
        path = Path(environ[CONFIG_PATH_ENV])
    file_entries: list[_Entry] = []
    if path is not None:
        file_entries = _from_toml(_read_toml(path), str(path))
        sources.append(str(path))
    env_entries = _from_env(environ)
    raw = _Raw(file_entries, env_entries)

    # airflow.home and the airflow.cfg to migrate from must be known before the rest.
    home: Path | None = raw.get("airflow.home")
    if home is None and environ.get("AIRFLOW_HOME"):
        home = Path(environ["AIRFLOW_HOME"]).resolve()
    cfg_path: Path | None = raw.get(f"{PLUGIN_SECTION}.airflow_cfg")
    if cfg_path is None and home is not None and (home / "airflow.cfg").is_file():
        cfg_path = home / "airflow.cfg"
    if cfg_path is not None:
        if not cfg_path.is_file():
            raise ConfigError(f"{PLUGIN_SECTION}.airflow_cfg has value {str(cfg_path)!r}: not a file")
        legacy = _from_airflow_cfg(cfg_path)
        if legacy:
            sources.insert(1, f"{cfg_path} [{PLUGIN_SECTION}]")
            raw = _Raw(legacy, file_entries, env_entries)

    values = {setting.name: raw.get(setting.name) for setting in SETTINGS}
    # Defaults computed at start-up (their records say so in default_doc).
    values["airflow.home"] = home
    values[f"{PLUGIN_SECTION}.airflow_cfg"] = cfg_path
    values["airflow.executable"] = values["airflow.executable"] or _default_executable(environ)
    values["cli.files_dir"] = values["cli.files_dir"] or values["gateway.state_dir"] / "files"

    if values["auth.allow_anonymous"] and values["policy.dir"] is None:
        # Without policies, anonymous callers could run every API.
        raise ConfigError("auth.allow_anonymous = true needs policy.dir (policies limit anonymous callers)")
    return _build(values, tuple(sources))


def _default_executable(environ: Mapping[str, str]) -> str:
    return shutil.which("airflow", path=environ.get("PATH")) or "airflow"


def _build(v: dict[str, Any], sources: tuple[str, ...]) -> GatewayConfig:
    """The typed configuration from validated values: no defaults here, they live in the records."""
    return GatewayConfig(
        state_dir=v["gateway.state_dir"],
        trusted_proxy_count=v["gateway.trusted_proxy_count"],
        airflow=AirflowConfig(
            executable=v["airflow.executable"],
            home=v["airflow.home"],
            dialect=v["airflow.dialect"],
            env=v["airflow.env"],
        ),
        cli=CliConfig(
            default_timeout_s=v["cli.default_timeout"],
            timeouts_s=v["cli.timeouts"],
            max_output_bytes=v["cli.max_output_bytes"],
            max_concurrent=v["cli.max_concurrent"],
            filter_loading_messages=v[f"{PLUGIN_SECTION}.filter_loading_messages_in_cli_response"],
            files_dir=v["cli.files_dir"],
            runner=v["cli.runner"],
            max_waiting=v["cli.max_waiting"],
            queue_timeout_s=v["cli.queue_timeout"],
            pass_principal_as_user=v["cli.pass_principal_as_user"],
            warm_max_calls=v["cli.warm_max_calls"],
            warm_max_age_s=v["cli.warm_max_age"],
            warm_max_rss_bytes=v["cli.warm_max_rss_bytes"],
            nice=v["cli.nice"],
            idle_cgroup=v["cli.idle_cgroup"],
        ),
        plugin_auth=PluginAuthConfig(
            header_name=v[f"{PLUGIN_SECTION}.rest_api_plugin_http_token_header_name"],
            expected_token=v[f"{PLUGIN_SECTION}.rest_api_plugin_expected_http_token"],
        ),
        proxy=ProxyConfig(
            upstream=v["proxy.upstream"],
            connect_timeout_s=v["proxy.connect_timeout"],
            read_timeout_s=v["proxy.read_timeout"],
            host_header=v["proxy.host_header"],
            pool_size=v["proxy.pool_size"],
            readiness_path=v["proxy.readiness_path"],
        ),
        limits=LimitsConfig(
            max_body_bytes=v["limits.max_body_bytes"],
            max_form_memory_bytes=v["limits.max_form_memory_bytes"],
        ),
        audit=AuditConfig(file=v["audit.file"], sensitive_names=v["audit.sensitive_names"]),
        metrics=MetricsConfig(
            enabled=v["metrics.enabled"], token=v["metrics.token"], allow_from=v["metrics.allow_from"]
        ),
        auth=AuthConfig(
            header_name=v["auth.header_name"],
            tokens=v["auth.tokens"],
            allow_anonymous=v["auth.allow_anonymous"],
        ),
        jwt=_jwt_config(v),
        policy=PolicyConfig(dir=v["policy.dir"], shadow=v["policy.shadow"]),
        deploy=DeployConfig(
            dags_folder=v["deploy.dags_folder"],
            max_upload_bytes=v["deploy.max_upload_bytes"],
            allow_zip=v["deploy.allow_zip"],
            allow_subfolder=v["deploy.allow_subfolder"],
            max_zip_entries=v["deploy.max_zip_entries"],
            max_unzipped_bytes=v["deploy.max_unzipped_bytes"],
        ),
        jobs=JobsConfig(
            database_url=v["jobs.database_url"],
            max_running=v["jobs.max_running"],
            max_queued=v["jobs.max_queued"],
            timeout_s=v["jobs.timeout"],
            max_output_bytes=v["jobs.max_output_bytes"],
            retention_s=v["jobs.retention"],
            stream_max_s=v["jobs.stream_max_seconds"],
            max_streams=v["jobs.max_streams"],
            max_streams_per_principal=v["jobs.max_streams_per_principal"],
            max_stored_output_per_principal=v["jobs.max_stored_output_per_principal"],
        ),
        server=ServerConfig(
            bind=v["server.bind"],
            workers=v["server.workers"],
            threads=v["server.threads"],
            head_timeout_s=v["server.head_timeout"],
            keepalive_s=v["server.keepalive"],
            keepalive_linger_ms=v["server.keepalive_linger_ms"],
            graceful_timeout_s=v["server.graceful_timeout"],
            max_requests=v["server.max_requests"],
            max_requests_jitter=v["server.max_requests_jitter"],
            access_log=v["server.access_log"],
        ),
        sources=sources,
        compatibility=v[f"{PLUGIN_SECTION}.compatibility"],
        settings=v,
    )


def _jwt_config(v: Mapping[str, Any]) -> JwtConfig:
    """Build and cross-check ``[jwt]``: exactly one key source when algorithms are set."""
    algorithms = v["jwt.algorithms"]
    key_file, key_env, jwks_url = v["jwt.key_file"], v["jwt.key_env"], v["jwt.jwks_url"]
    sources = [n for n, x in (("key_file", key_file), ("key_env", key_env), ("jwks_url", jwks_url)) if x]
    if algorithms and len(sources) != 1:
        raise ConfigError("jwt: set exactly one of jwt.key_file, jwt.key_env, jwt.jwks_url")
    if not algorithms and sources:
        raise ConfigError(f"jwt.{sources[0]} is set but jwt.algorithms is not (JWT would be off)")
    if jwks_url and any(a.startswith("HS") for a in algorithms):
        raise ConfigError("jwt.algorithms: HS* (shared secrets) cannot come from a JWKS URL")
    return JwtConfig(
        algorithms=algorithms,
        key_file=key_file,
        key_env=key_env,
        jwks_url=jwks_url,
        jwks_timeout_s=v["jwt.jwks_timeout"],
        jwks_lifespan_s=v["jwt.jwks_lifespan"],
        jwks_min_refresh_interval_s=v["jwt.jwks_min_refresh_interval"],
        issuer=v["jwt.issuer"],
        audience=v["jwt.audience"],
        leeway_s=v["jwt.leeway"],
        required_claims=v["jwt.required_claims"],
        subject_claim=v["jwt.subject_claim"],
        groups_claim=v["jwt.groups_claim"],
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
                f"{setting} has value '{directory}': not a writable directory ({_why(exc, directory)})"
            ) from None
    if config.audit.file is not None:
        try:
            config.audit.file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            os.close(os.open(config.audit.file, flags, 0o640))
        except OSError as exc:
            path, why = config.audit.file, _why(exc, config.audit.file)
            raise ConfigError(f"audit.file has value '{path}': cannot be written ({why})") from None


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
    for setting in SETTINGS:
        summary.setdefault(setting.section, {})[setting.key] = _printable(
            setting, config.settings[setting.name]
        )
    return summary


def _printable(setting: Setting, value: Any) -> Any:
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
