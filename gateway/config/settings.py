"""Every setting of the gateway, defined once: name, type, default and meaning.

Modelled on gunicorn's ``config.py`` (one ``Setting`` per option carrying its validator,
default and description).  A section is a class whose attributes *are* the records::

    class CliConfig(Section, doc="Limits for Airflow CLI subprocesses."):
        default_timeout = setting(seconds(), 120, "Seconds before a command's process group is killed (504).")

:func:`setting` (and :func:`optional`, :func:`derived`) return a :class:`Setting`, a
descriptor: on the class it is the record (``CliConfig.default_timeout.env``), on a loaded
section it is the typed value (``config.cli.default_timeout``, a ``float`` for mypy).  The
attribute's name is the key in the TOML file, always.  :class:`GatewayConfig` holds one
section per attribute (``cli = section(CliConfig)``), and that attribute's name is the
section's name, written once: the ``[cli]`` of the file.  Everything else is derived from
these classes:

* the registry: :data:`SECTIONS`, :data:`SETTINGS`, :data:`BY_NAME`, :data:`BY_ALIAS`
  (``GatewayConfig.registry()``; a subclass of :class:`GatewayConfig` has its own);
* ``gateway.config.loader.load_config`` reads and validates values through the records;
* ``check-config``'s summary (``gateway.config.loader.describe``) lists every record;
* ``docs/configuration.md`` and ``examples/gateway.toml`` are rendered from them
  (``gateway.config.documents``; ``tests/unit/test_settings.py`` fails when either drifts);
* environment names are derived: ``AIRFLOW_GATEWAY__<SECTION>__<KEY>``, plus the older
  ``GATEWAY_*`` names of the ``[server]`` settings kept as aliases.

A default is a raw value as the TOML file would give it and goes through the same
validator as any configured value; ``None`` means unset, and ``default_doc`` then says
what happens instead.  A value computed at start-up from other settings or the
environment (``cli.files_dir`` from ``gateway.state_dir``) is computed by its section's
:meth:`Section.derive`; a check across settings (``[jwt]``: exactly one key source) is
its section's :meth:`Section.check`.  Neither lists the section's settings again.

Two departures from a class keyword ``name="cli"``: the section's name is the attribute
of :class:`GatewayConfig` (which mypy needs anyway for ``config.cli``), so it is not
written a second time in the class; and the section classes keep their ``...Config``
names, the types the rest of the gateway already imports.
"""

from __future__ import annotations

import builtins
import ipaddress
import json
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar, overload
from urllib.parse import urlsplit

ENV_PREFIX = "AIRFLOW_GATEWAY__"

T = TypeVar("T")
S = TypeVar("S", bound="Section")


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
class Type(Generic[T]):
    """What a setting accepts.

    :param name: how the reference documentation describes accepted values.
    :param check: ``check(setting_name, raw_value)`` returns the typed value or raises
        :class:`ConfigError` naming the setting (and never echoing a secret).
    :param table: a TOML table whose entries the environment can set one by one
        (``AIRFLOW_GATEWAY__CLI__TIMEOUTS__TEST=300``).
    """

    name: str
    check: Callable[[str, Any], T]
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


def integer(minimum: int) -> Type[int]:
    """An integer of at least ``minimum``."""
    return Type(
        f"integer ≥ {minimum}", lambda name, value: int(_number(name, value, integer=True, minimum=minimum))
    )


def int_range(minimum: int, maximum: int) -> Type[int]:
    """An integer from ``minimum`` to ``maximum``."""
    return Type(
        f"integer {minimum}-{maximum}",
        lambda name, value: int(_number(name, value, integer=True, minimum=minimum, maximum=maximum)),
    )


def seconds(maximum: float | None = None, *, zero: bool = False) -> Type[float]:
    """A number of seconds: above 0 (or at least 0), and at most ``maximum``."""
    low = 0.0 if zero else 0.001
    text = ("seconds ≥ 0" if zero else "seconds > 0") + (f", at most {maximum:g}" if maximum else "")
    return Type(text, lambda name, value: _number(name, value, integer=False, minimum=low, maximum=maximum))


def choice(*choices: str) -> Type[str]:
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


@dataclass(frozen=True, slots=True)
class RateRule:
    """One ``[[rate_limits.rules]]`` table: whom it applies to (``principal`` or ``group``, ``*``
    for everyone), and either a rate ``limit`` (on one ``api``, a proxied ``path`` prefix, or every
    request) or caps on what the principal may hold at once."""

    id: str
    principal: str | None = None
    group: str | None = None
    api: str | None = None
    path: str | None = None
    limit: str | None = None
    cli_calls: int | None = None
    running_jobs: int | None = None
    queued_jobs: int | None = None
    streams: int | None = None

    @property
    def caps(self) -> dict[str, int]:
        """The caps this rule sets, by kind."""
        return {k: v for k in RATE_CAPS if (v := getattr(self, k)) is not None}


#: The per-principal caps a rule can set: synchronous CLI API calls, running and queued jobs, streams.
RATE_CAPS = ("cli_calls", "running_jobs", "queued_jobs", "streams")


def _rate_rules(name: str, value: Any) -> tuple[RateRule, ...]:
    """``[[rate_limits.rules]]`` tables, or (from the environment) the same as a JSON array."""
    from limits import parse_many  # the library that enforces them parses them

    from gateway.cli.apis import CATALOGUE  # data only: no import cycle at run time

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{name}: expected a JSON array of tables") from None
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name}: expected an array of tables ([[rate_limits.rules]])")
    rules: list[RateRule] = []
    for index, entry in enumerate(value):
        where = f"{name}[{index}]"
        keys = {"id", "principal", "group", "api", "path", "limit", *RATE_CAPS}
        if not isinstance(entry, Mapping) or set(entry) - keys:
            raise ConfigError(f"{where}: expected a table with keys among {', '.join(sorted(keys))}")
        if any(not isinstance(v, str) for k, v in entry.items() if k not in RATE_CAPS):
            raise ConfigError(f"{where}: id, principal, group, api, path and limit are strings")
        rule_id = entry.get("id", f"rule-{index + 1}")
        if not _NAME.fullmatch(rule_id):
            raise ConfigError(f"{where}.id: expected a name of letters, digits and _ . @ : -")
        if ("principal" in entry) == ("group" in entry):
            raise ConfigError(f"{where} ({rule_id}): set exactly one of principal and group ('*': everyone)")
        caps = {
            k: int(_number(f"{where}.{k}", entry[k], integer=True, minimum=0))
            for k in RATE_CAPS
            if k in entry
        }
        if ("limit" in entry) == bool(caps):
            raise ConfigError(f"{where} ({rule_id}): set either limit or caps ({', '.join(RATE_CAPS)})")
        if "api" in entry and "path" in entry or caps and ("api" in entry or "path" in entry):
            raise ConfigError(f"{where} ({rule_id}): api and path exclude each other and caps")
        if "api" in entry and entry["api"] not in CATALOGUE:
            raise ConfigError(f"{where}.api ({rule_id}): unknown API {entry['api']!r}")
        if "path" in entry:
            _abs_path(f"{where}.path", entry["path"])
        if "limit" in entry:
            try:
                parse_many(entry["limit"])
            except ValueError:
                raise ConfigError(
                    f"{where}.limit ({rule_id}) has value {entry['limit']!r}: expected N/second, N/minute, "
                    "N/hour or N/day (several joined by ;)"
                ) from None
        rules.append(RateRule(
            rule_id, principal=entry.get("principal"), group=entry.get("group"), api=entry.get("api"),
            path=entry.get("path"), limit=entry.get("limit"), cli_calls=caps.get("cli_calls"),
            running_jobs=caps.get("running_jobs"), queued_jobs=caps.get("queued_jobs"),
            streams=caps.get("streams"),
        ))  # fmt: skip
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{name}: rule ids must be unique")
    return tuple(rules)


def _limits_url(name: str, value: Any) -> Secret:
    text = _str(name, value)
    if text != "memory://" and (
        urlsplit(text).scheme not in {"redis", "rediss"} or not urlsplit(text).hostname
    ):
        raise ConfigError(f"{name}: expected memory:// or a redis://host:port/db URL")
    return Secret(text)


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


# --- the records, and the sections that hold them ---


@dataclass(eq=False, slots=True)
class Setting(Generic[T]):
    """One setting: ``section.key`` in the TOML file, and the attribute ``key`` of its section.

    Made by :func:`setting`, :func:`optional` or :func:`derived` in a :class:`Section`'s body.
    On the class it is this record; on a loaded section, the validated value (a section keeps
    its values in its instance dictionary, so reading one costs a dictionary look-up).

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
    :param derived: unset in the file means "computed by the section's :meth:`Section.derive`",
        which always gives it a value.
    """

    type: Type[Any]
    default: Any
    doc: str
    _: KW_ONLY
    default_doc: str | None = None
    example: Any = None
    secret: bool = False
    aliases: tuple[str, ...] = ()
    api_keys: bool = False
    derived: bool = False
    key: str = field(default="", init=False)  # the attribute's name (__set_name__)
    section: str = field(default="", init=False)  # set when the section is placed in a GatewayConfig

    def __set_name__(self, owner: builtins.type[Any], name: str) -> None:
        self.key = name

    @overload
    def __get__(self, instance: None, owner: builtins.type[Any] | None = None) -> Setting[T]: ...
    @overload
    def __get__(self, instance: Section, owner: builtins.type[Any] | None = None) -> T: ...
    def __get__(self, instance: Section | None, owner: builtins.type[Any] | None = None) -> Setting[T] | T:
        if instance is None:
            return self
        # A loaded section's value shadows this descriptor: only a missing one comes here.
        raise AttributeError(f"{type(instance).__name__}.{self.key} holds no value")

    def __repr__(self) -> str:
        return f"<Setting {self.name}>"

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


def setting(
    type: Type[T],
    default: Any,
    doc: str,
    *,
    example: Any = None,
    secret: bool = False,
    aliases: tuple[str, ...] = (),
    api_keys: bool = False,
) -> Setting[T]:
    """A setting with a default (a raw value, as the TOML file would give it)."""
    return Setting(type, default, doc, example=example, secret=secret, aliases=aliases, api_keys=api_keys)


def optional(
    type: Type[T],
    doc: str,
    *,
    default_doc: str | None = None,
    example: Any = None,
    secret: bool = False,
    aliases: tuple[str, ...] = (),
) -> Setting[T | None]:
    """A setting that may stay unset (``None``); ``default_doc`` says what unset means."""
    return Setting(type, None, doc, default_doc=default_doc, example=example, secret=secret, aliases=aliases)


def derived(type: Type[T], doc: str, *, default_doc: str, example: Any = None) -> Setting[T]:
    """A setting whose value, when unset, its section's :meth:`Section.derive` computes."""
    return Setting(type, None, doc, default_doc=default_doc, example=example, derived=True)


class Section:
    """One ``[section]`` of the file: a class whose :class:`Setting` attributes are its records.

    ``CliConfig(default_timeout=5.0)`` is a section with typed values (the others take
    their defaults): what tests build; :meth:`replace` changes some.  Sections are frozen.
    """

    #: what the section is about, for the sample file and the reference (class keyword ``doc``).
    doc: ClassVar[str] = ""
    #: the section's name, given by its attribute in :class:`GatewayConfig`.
    name: ClassVar[str]
    #: the records, in the order of the class body (a subclass's own come after its base's).
    settings: ClassVar[tuple[Setting[Any], ...]] = ()
    #: its settings take effect on restart only, not on a reload (SIGHUP): gunicorn's own, the
    #: state directory (class keyword ``restart``).
    restart: ClassVar[bool] = False

    def __init_subclass__(cls, *, doc: str = "", restart: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if doc:
            cls.doc = doc
        cls.restart = restart
        records = {key: value for key, value in vars(cls).items() if isinstance(value, Setting)}
        taken = sorted(records.keys() & set(dir(Section)))
        if taken:  # the value would hide the method, or the method the value
            raise TypeError(f"{cls.__name__}: {', '.join(taken)} is a Section attribute, not a setting key")
        cls.settings = (*(s for s in cls.settings if s.key not in records), *records.values())

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - {s.key for s in self.settings}
        if unknown:
            raise TypeError(f"{type(self).__name__} has no setting {', '.join(sorted(unknown))}")
        for s in self.settings:
            self.__dict__[s.key] = values[s.key] if s.key in values else s.parse(s.default)

    def replace(self, **changes: Any) -> Self:
        """A copy with some values changed (typed values, as ``dataclasses.replace`` takes)."""
        return type(self)(**{**self.__dict__, **changes})

    def derive(self, config: GatewayConfig, environ: Mapping[str, str]) -> Self:
        """Fill in values computed at start-up (:func:`derived` settings, and defaults read from
        the environment); ``config`` has the sections before this one derived already."""
        return self

    def check(self, config: GatewayConfig) -> None:
        """Cross-check settings once every section is derived; raise :class:`ConfigError`."""

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: use replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self) -> str:
        values = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({values})"


class SectionSlot(Generic[S]):
    """``cli = section(CliConfig)`` in :class:`GatewayConfig`: names the section ``cli``."""

    def __init__(self, cls: type[S]) -> None:
        self.cls = cls
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name
        if getattr(self.cls, "name", name) != name:
            raise TypeError(f"{self.cls.__name__} is already the section [{self.cls.name}]")
        self.cls.name = name
        for record in self.cls.settings:
            if record.section not in ("", name):
                raise TypeError(f"{record.name} cannot also be in [{name}]")
            record.section = name

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> SectionSlot[S]: ...
    @overload
    def __get__(self, instance: GatewayConfig, owner: type[Any] | None = None) -> S: ...
    def __get__(self, instance: GatewayConfig | None, owner: type[Any] | None = None) -> SectionSlot[S] | S:
        if instance is None:
            return self
        raise AttributeError(f"{type(instance).__name__}.{self.name} holds no section")


def section(cls: type[S]) -> SectionSlot[S]:
    """A section of :class:`GatewayConfig`, named by the attribute it is assigned to."""
    return SectionSlot(cls)


@dataclass(frozen=True)
class Registry:
    """Every section and setting of a :class:`GatewayConfig` class, in file order."""

    sections: tuple[type[Section], ...]
    settings: tuple[Setting[Any], ...]
    by_name: Mapping[str, Setting[Any]]
    by_alias: Mapping[str, Setting[Any]]

    def in_section(self, name: str) -> Iterator[Setting[Any]]:
        """The records of one section, in order."""
        return (s for s in self.settings if s.section == name)


# fmt: off
class GatewayProcessConfig(Section, doc="The gateway process itself.", restart=True):
    state_dir = setting(PATH, ".state",
        "Daemons' records and logs, import/export files, the metrics files and the CLI's working directory.",
        example="/var/lib/airflow-gateway")
    trusted_proxy_count = setting(integer(0), 0,
        "Proxies in front of the gateway whose X-Forwarded-For entries are trusted (client address for "
        "audit events and policies).")


class ServerConfig(
    Section,
    doc=(
        "gunicorn, which serves the gateway (`gateway/entry/gunicorn_conf.py`). The worker `timeout` "
        "is not a setting: it is the longest of `cli.default_timeout`, `cli.timeouts` and "
        "`proxy.read_timeout`, plus 30 s, so gunicorn never kills a worker in the middle of a call."
    ),
    restart=True,
):
    # The GATEWAY_* aliases predate this section (Dockerfile, compose files).
    bind = setting(Type("HOST:PORT, comma-separated", _bind), "127.0.0.1:8000",
        "Listen address(es); the container image sets 0.0.0.0:8080. `airflow-gateway serve --bind` wins.",
        aliases=("GATEWAY_BIND",))
    workers = setting(integer(1), 2, "gunicorn worker processes.", aliases=("GATEWAY_WORKERS",))
    threads = setting(integer(1), 8,
        "Threads per worker; raised to at least cli.max_concurrent + cli.max_waiting + jobs.max_streams "
        "+ 4, so CLI calls and job output streams never take every thread from the proxy.",
        aliases=("GATEWAY_THREADS",))
    head_timeout = setting(integer(0), 10,
        "Seconds a request head (request line and headers) may take to arrive; later: 408 and the "
        "connection closed. 0 turns event-loop head reading off (stock gthread).",
        aliases=("GATEWAY_HEAD_TIMEOUT",))
    keepalive = setting(integer(0), 5,
        "Idle client keep-alive in seconds; keep it above the idle timeout of a load balancer in front.",
        aliases=("GATEWAY_KEEPALIVE",))
    keepalive_linger_ms = setting(integer(0), 2,
        "Milliseconds a thread that has just answered on a keep-alive connection waits for its next "
        "request (only while no other connection waits for a thread); 0 is plain gthread.",
        aliases=("GATEWAY_KEEPALIVE_LINGER_MS",))
    graceful_timeout = setting(integer(0), 30,
        "On SIGTERM, seconds in-flight requests get to finish; match the orchestrator's stop grace period.",
        aliases=("GATEWAY_GRACEFUL_TIMEOUT",))
    max_requests = setting(integer(0), 0,
        "Recycle a worker after this many requests (0: never; a restart waits for streams in flight).",
        aliases=("GATEWAY_MAX_REQUESTS",))
    max_requests_jitter = setting(integer(0), 0,
        "Random extra requests added to max_requests per worker, so workers do not restart together.",
        aliases=("GATEWAY_MAX_REQUESTS_JITTER",))
    access_log = optional(STRING,
        "gunicorn's access log (`-`: stdout), rendered as JSON with query strings redacted.",
        default_doc="off (the audit event is the access log)", example="-", aliases=("GATEWAY_ACCESS_LOG",))


class AirflowConfig(
    Section, doc="The Airflow CLI the gateway drives (same AIRFLOW_HOME / AIRFLOW__* as your Airflow)."
):
    executable = derived(STRING, "The Airflow CLI.",
        default_doc="`airflow` on PATH", example="/home/airflow/.local/bin/airflow")
    home = optional(PATH, "Passed to the CLI as AIRFLOW_HOME.",
        default_doc="$AIRFLOW_HOME", example="/opt/airflow")
    dialect = setting(choice("auto", "3", "2", "1.10"), "auto",
        "Which Airflow CLI the API calls are translated for; auto asks the installed Airflow.")
    env = setting(STRING_TABLE, {},
        "Extra environment for the CLI (the gateway's own AIRFLOW__* variables pass through too). Values "
        "are not shown by check-config.",
        example={"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}, secret=True)

    def derive(self, config: GatewayConfig, environ: Mapping[str, str]) -> Self:
        home = self.home
        if home is None and environ.get("AIRFLOW_HOME"):
            home = Path(environ["AIRFLOW_HOME"]).resolve()
        executable = self.executable or shutil.which("airflow", path=environ.get("PATH")) or "airflow"
        return self.replace(home=home, executable=executable)


class CliConfig(Section, doc="Limits for Airflow CLI subprocesses."):
    default_timeout = setting(seconds(), 120,
        "Seconds before a command's process group is killed (504).")
    timeouts = setting(SECONDS_TABLE, {}, "Per-API timeouts in seconds, keyed by API name.",
        example={"test": 300, "backfill": 900}, api_keys=True)
    max_output_bytes = setting(integer(1), 1024 * 1024,
        "Cap per output stream; the rest is dropped and flagged.")
    max_concurrent = setting(integer(1), 3, "CLI calls running at once per worker process.")
    files_dir = derived(PATH, "Files for variables import/export.",
        default_doc="<state_dir>/files", example="/var/lib/airflow-gateway/files")
    runner = setting(choice("warm", "cold"), "warm",
        "warm: fork each call from a warm Airflow process; cold: a new process per call.")
    max_waiting = setting(integer(0), 2,
        "Further calls that may wait for a slot; beyond them 503 at once.")
    queue_timeout = setting(seconds(), 5, "Seconds a waiting call waits for a slot before its 503.")
    pass_principal_as_user = setting(BOOL, True,
        "Airflow records the gateway principal as the CLI user (LOGNAME/USER) in its log table.")
    warm_max_calls = setting(integer(1), 2000, "A warm process is replaced after this many calls...")
    warm_max_age = setting(seconds(), 3600, "... or after this many seconds...")
    warm_max_rss_bytes = setting(integer(1), 1024 * 1024 * 1024,
        "... or once its resident memory passes this.")
    warm_pool_size = setting(integer(0), 2,
        "Children each warm process keeps forked and re-initialised ahead of calls (one call each); "
        "0 forks each call when it comes. See docs/cli-runner.md for the measurements.")
    warm_pool_idle = setting(seconds(), 300,
        "Seconds without a call after which a warm process empties its pool (refilled by the next call).")
    nice = setting(int_range(0, 19), 10,
        "CPU priority of CLI calls and jobs (a nice value; 0 is the gateway's own): CLI work yields "
        "to the requests the gateway serves. Their session's autogroup gets it too, or else the "
        "kernel's autogroup scheduling would make the value count for nothing.")
    idle_cgroup = setting(Type("`auto`, `off` or a cgroup directory", _idle_cgroup), "auto",
        "Run CLI calls and jobs in a cgroup with cpu.idle = 1, which yields the CPU at once to any "
        "request that wakes (nice values alone do not). auto: create it beside the gateway's own "
        "cgroup when the cgroup file system lets it, else fall back to cli.nice (logged at start); "
        "off: never; a path: that cgroup directory. See docs/cli-runner.md.")

    def derive(self, config: GatewayConfig, environ: Mapping[str, str]) -> Self:
        return self.replace(files_dir=self.files_dir or config.gateway.state_dir / "files")


class RestApiPluginConfig(
    Section, doc="The original airflow-rest-api-plugin's settings, under their original names."
):
    log_loading = setting(BOOL, False, "Accepted for compatibility; no effect.")
    filter_loading_messages_in_cli_response = setting(BOOL, True,
        "Drop Airflow's loading messages from CLI output.")
    rest_api_plugin_http_token_header_name = setting(HEADER, "rest_api_plugin_http_token",
        "Header carrying the original plugin's token.")
    rest_api_plugin_expected_http_token = optional(SECRET,
        "The original plugin's token.", default_doc="unset (no plugin token check)",
        example="change-me-to-a-long-random-token", secret=True)
    airflow_cfg = optional(PATH,
        "An airflow.cfg whose [rest_api_plugin] section is read (migration from the plugin).",
        default_doc="$AIRFLOW_HOME/airflow.cfg when it exists", example="/opt/airflow/airflow.cfg")
    compatibility = setting(choice("off", "1.0.9"), "off",
        "1.0.9: answer as the original plugin v1.0.9 did (see docs/compatibility.md).")

    def derive(self, config: GatewayConfig, environ: Mapping[str, str]) -> Self:
        home = config.airflow.home
        if self.airflow_cfg is None and home is not None and (home / "airflow.cfg").is_file():
            return self.replace(airflow_cfg=home / "airflow.cfg")
        return self


class ProxyConfig(
    Section, doc="Every path the gateway does not own goes to Airflow's api-server / webserver."
):
    upstream = optional(URL, "Airflow's api-server (3) or webserver (2).",
        default_doc="unset (no proxy: the gateway's own endpoints only)", example="http://127.0.0.1:8080")
    connect_timeout = setting(seconds(), 5, "Seconds to connect upstream.")
    read_timeout = setting(seconds(), 60, "Seconds to wait for upstream data.")
    host_header = setting(Type("`client`, `upstream` or HOST[:PORT]", _host_policy), "client",
        "Host sent upstream: the client's, the upstream's, or a fixed host[:port].")
    pool_size = setting(integer(1), 16, "Kept-alive upstream connections per worker.")
    readiness_path = setting(Type("absolute URL path", _abs_path), "/",
        "What /readyz asks Airflow for (any status below 500 counts).")


class LimitsConfig(Section, doc="Request size limits on the gateway's own endpoints (413 beyond them)."):
    max_body_bytes = setting(integer(1), 16 * 1024 * 1024, "Largest request body.")
    max_form_memory_bytes = setting(integer(1), 1024 * 1024, "Largest form field held in memory.")


class AuditConfig(Section, doc="One JSON audit event per request (stdout unless a file is set)."):
    file = optional(PATH, "Append audit events to this file.",
        default_doc="unset (stdout)", example="/var/log/airflow-gateway/audit.jsonl")
    sensitive_names = setting(STRINGS, [],
        "More argument names whose values are redacted.", example=["pin", "otp"])


class MetricsConfig(Section, doc="Prometheus /metrics."):
    enabled = setting(BOOL, True, "Serve /metrics.")
    token = optional(SECRET, "Bearer token a scraper must send.",
        default_doc="unset (none needed)", example="change-me-scrape-token", secret=True)
    allow_from = setting(NETWORKS, [], "Addresses that may scrape (empty: all).",
        example=["127.0.0.1/32", "10.0.0.0/8"])


class AuthConfig(Section, doc="Gateway credentials: named tokens (see docs/identity-and-policies.md)."):
    header_name = setting(HEADER, "X-Gateway-Authorization", "Header carrying a gateway token or JWT.")
    tokens = setting(Type("array of tables (name, sha256, groups); JSON in the environment", _token_list),
        [],
        "Named tokens by their hash (`airflow-gateway hash-token --generate`); or [[auth.tokens]] tables.",
        example=[{"name": "ci", "sha256": "sha256:" + "0" * 64, "groups": ["deployers"]}])
    allow_anonymous = setting(BOOL, False, "Let callers without credentials through (needs policy.dir).")

    def check(self, config: GatewayConfig) -> None:
        if self.allow_anonymous and config.policy.dir is None:
            # Without policies, anonymous callers could run every API.
            raise ConfigError(
                "auth.allow_anonymous = true needs policy.dir (policies limit anonymous callers)"
            )


class JwtConfig(Section, doc="JWT verification; off while algorithms is empty. Set exactly one key source."):
    algorithms = setting(Type("list of JWT algorithms", _algorithms), [],
        "Accepted algorithms (HS* cannot mix with public-key ones); empty: JWT off.", example=["RS256"])
    key_file = optional(PATH, "Key source 1: a PEM public key or secret file.",
        example="/etc/airflow-gateway/jwt-public.pem")
    key_env = optional(Type("environment variable name", _env_name),
        "Key source 2: an environment variable holding the key.", example="GATEWAY_JWT_SECRET")
    jwks_url = optional(URL, "Key source 3: a JWKS URL.",
        example="https://idp.example.com/.well-known/jwks.json")
    jwks_timeout = setting(seconds(30), 3, "Seconds for a JWKS fetch (it blocks a request).")
    jwks_lifespan = setting(seconds(), 300, "Seconds a fetched JWKS is kept.")
    jwks_min_refresh_interval = setting(seconds(), 30,
        "Least seconds between refetches for unknown key ids.")
    issuer = optional(STRING, "Required iss claim.", default_doc="unset (not checked)",
        example="https://idp.example.com/")
    audience = setting(STRINGS, [], "Accepted aud values (empty: not checked).",
        example=["airflow-gateway"])
    leeway = setting(seconds(300, zero=True), 10, "Clock skew tolerance in seconds.")
    required_claims = setting(STRINGS, [], "Claims that must be present.", example=["exp", "sub"])
    subject_claim = setting(Type("claim name or dotted path", _claim_path), "sub",
        "Claim naming the principal.")
    groups_claim = optional(Type("claim name or dotted path", _claim_path),
        "Claim (dotted path) listing the principal's groups.", default_doc="unset (no groups)",
        example="realm_access.roles")

    @property
    def enabled(self) -> bool:
        return bool(self.algorithms)

    def check(self, config: GatewayConfig) -> None:
        """Exactly one key source when algorithms are set, and none otherwise."""
        given = [
            s for s in (JwtConfig.key_file, JwtConfig.key_env, JwtConfig.jwks_url) if getattr(self, s.key)
        ]
        if self.algorithms and len(given) != 1:
            raise ConfigError("jwt: set exactly one of jwt.key_file, jwt.key_env, jwt.jwks_url")
        if not self.algorithms and given:
            raise ConfigError(f"{given[0].name} is set but jwt.algorithms is not (JWT would be off)")
        if self.jwks_url and any(a.startswith("HS") for a in self.algorithms):
            raise ConfigError("jwt.algorithms: HS* (shared secrets) cannot come from a JWKS URL")


class PolicyConfig(
    Section, doc="Policies (see docs/identity-and-policies.md); without them every authenticated call passes."
):
    dir = optional(PATH, "Directory of policy TOML files.",
        default_doc="unset (no policies)", example="/etc/airflow-gateway/policies")
    shadow = setting(BOOL, False, "Log denials without enforcing them.")
    reload_interval = setting(seconds(zero=True), 0,
        "Seconds between looks at policy.dir for changed files (0: read at start and on SIGHUP only). "
        "Valid changes take effect at once; invalid ones are logged and the running policies kept.")


class DeployConfig(Section, doc="deploy_dag uploads (see docs/deploy-and-page.md)."):
    dags_folder = optional(PATH, "Where uploads go.",
        default_doc="unset (asked from Airflow)", example="/opt/airflow/dags")
    max_upload_bytes = setting(integer(1), 1024 * 1024, "Largest upload.")
    allow_zip = setting(BOOL, True, "Accept zipped DAG bundles.")
    allow_subfolder = setting(BOOL, True, "Accept the subfolder argument.")
    max_zip_entries = setting(integer(1), 200, "Most files in a zip.")
    max_unzipped_bytes = setting(integer(1), 16 * 1024 * 1024, "Largest unzipped size.")


class JobsConfig(Section, doc="CLI calls run as jobs (mode=job; see docs/jobs.md)."):
    database_url = optional(Type("postgresql:// URL (secret)", _database_url),
        "Shared job store for several gateway instances.",
        default_doc="unset (SQLite in the state directory)",
        example="postgresql://gateway@db.example:5432/gateway_jobs", secret=True)
    max_running = setting(integer(1), 2,
        "Jobs running at once per worker process (apart from cli.max_concurrent).")
    max_queued = setting(integer(0), 20, "Jobs waiting for a free job thread; beyond them 503.")
    timeout = setting(seconds(), 3600, "Seconds before a job's process tree is killed.")
    max_output_bytes = setting(integer(1), 8 * 1024 * 1024,
        "Output kept per job; the rest is dropped and flagged.")
    retention = setting(seconds(), 7 * 86400, "Seconds a finished job is kept.")
    stream_max_seconds = setting(seconds(), 30,
        "Longest single SSE response, backlog included; clients reconnect.")
    max_streams = setting(integer(1), 8,
        "Job output streams (SSE) open at once per worker process; each holds a thread, and "
        "server.threads is raised to leave room for them. Beyond: 503 with Retry-After.")
    max_streams_per_principal = setting(integer(1), 2,
        "Job output streams one principal may have open at once per worker process. Beyond: 429 with "
        "Retry-After (format=json polls hold no thread).")
    max_stored_output_per_principal = setting(integer(1), 256 * 1024 * 1024,
        "Output characters kept in the job store for one principal's jobs; beyond it their new jobs are "
        "refused (429) until older ones expire (jobs.retention). Running jobs keep all their output.")
    lease_timeout = setting(seconds(), 30,
        "Seconds an instance's lease on its jobs lasts unrenewed (its workers renew it every sixth of it); "
        "past it any instance marks those jobs failed, within another sixth. Keep it above the clock skew "
        "between hosts and above the longest job store outage an instance should survive.")


class RateLimitsConfig(
    Section, doc="Per-principal rate limits and caps, shared by every instance through Redis "
    "(see docs/deployment.md). No rules: nothing is limited."
):
    storage_url = setting(Type("memory:// or redis://host:port/db (secret)", _limits_url), "memory://",
        "Where counters live: memory:// counts in each worker process; redis:// shares them between "
        "every worker of every instance (per-worker memory while Redis is unreachable).",
        secret=True)
    strategy = setting(choice("sliding-window", "fixed-window", "moving-window"), "sliding-window",
        "The limits library's algorithm: sliding-window (two counters, smooth), fixed-window (one "
        "counter, cheapest, allows bursts at window edges), moving-window (exact, one entry per hit).")
    timeout = setting(seconds(5), 0.25,
        "Seconds a Redis command may take; an error or a longer wait switches this worker to memory "
        "counters until Redis answers again.")
    lease_timeout = setting(seconds(), 30,
        "Seconds a held cap slot (a CLI call, a job, a stream) lasts in Redis unrenewed: what a crashed "
        "instance's slots take to free up.")
    rules = setting(Type("array of tables (id, principal or group, api or path, limit or caps); JSON "
        "in the environment", _rate_rules), [],
        "Rules: `principal` or `group` (`*`: everyone), then `limit` (`10/second`; `100/minute;1000/hour`) "
        "on an `api`, a proxied `path` prefix or every request, or caps (`cli_calls`, `running_jobs`, "
        "`queued_jobs`, `streams`). Counted per principal; the most specific rule of a kind applies "
        "(principal, then group, then `*`).",
        example=[{"id": "default", "principal": "*", "limit": "20/second"},
                 {"id": "default-caps", "principal": "*", "cli_calls": 2, "running_jobs": 2, "queued_jobs": 5,
                  "streams": 2},
                 {"id": "ci-triggers", "group": "ci", "api": "trigger_dag", "limit": "60/minute"},
                 {"id": "airflow-api", "principal": "*", "path": "/api/v2/", "limit": "10/second"}])


class AssertionConfig(
    Section,
    doc="The identity assertion sent to Airflow with every proxied request of an authenticated principal "
    "(see docs/airflow-identity.md).",
):
    enabled = setting(BOOL, True,
        "Sign an assertion of the principal into each proxied request (a client-sent header of that "
        "name is removed either way).")
    header = setting(HEADER, "X-Gateway-Assertion", "Header carrying the assertion to Airflow.")
    issuer = setting(STRING, "airflow-gateway",
        "The iss claim; Airflow's [gateway_auth] issuer must match.")
    audience = setting(STRING, "airflow", "The aud claim; Airflow's [gateway_auth] audience must match.")
    lifetime = setting(seconds(60), 60,
        "Seconds an assertion is valid; one is reused for three quarters of its life.")
    key_file = optional(PATH, "A P-256 (ES256) private key in PEM.",
        default_doc="generated into <state_dir>/keys (0600) on first start; "
        "`airflow-gateway rotate-assertion-key` rotates it",
        example="/etc/airflow-gateway/assertion-key.pem")
    airflow_roles = setting(STRING_TABLE, {},
        "Group to Airflow role (viewer, user, op, admin; `*` for everyone): the same mapping as "
        "Airflow's [gateway_auth] roles, so that whoami can show the role a principal gets.",
        example={"airflow-admins": "admin", "team-a": "op", "*": "viewer"})

    def check(self, config: GatewayConfig) -> None:
        """Airflow's four roles only: a typo would show a role Airflow never grants."""
        roles = ("viewer", "user", "op", "admin")
        for group, role in self.airflow_roles.items():
            if role not in roles:
                raise ConfigError(
                    f"assertion.airflow_roles.{group} has value {role!r}: expected one of {', '.join(roles)}"
                )


def _issuer(name: str, value: Any) -> str:
    text = _str(name, value)
    _url(name, text)  # the same checks, but kept exactly: an issuer is compared as a string
    return text


def _oidc_algorithms(name: str, value: Any) -> tuple[str, ...]:
    algs = _algorithms(name, value)
    if any(a.startswith("HS") for a in algs):
        raise ConfigError(f"{name}: HS* would make the client secret a signing key; asymmetric only")
    return algs


def _prefixes(name: str, value: Any) -> tuple[str, ...]:
    return tuple(_abs_path(name, item) for item in _str_list(name, value))


def _cookie_name(name: str, value: Any) -> str:
    text = _str(name, value)
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}", text):
        raise ConfigError(f"{name} has value {text!r}: expected a cookie name (letters, digits, _ - .)")
    return text


CLAIM = Type("claim name or dotted path", _claim_path)


class OidcConfig(
    Section, doc="Browser sign-on with OpenID Connect; off while issuer is unset (see docs/sso.md)."
):
    issuer = optional(Type("http(s) URL", _issuer),
        "The provider's issuer, exactly as its ID tokens carry it.", default_doc="unset (sign-on off)", example="https://idp.example.com/realms/ops")
    client_id = optional(STRING, "This gateway's client id at the provider.", example="airflow-gateway")
    client_secret_env = optional(Type("environment variable name", _env_name),
        "Environment variable holding the client secret (never the file itself).",
        example="GATEWAY_OIDC_SECRET")
    client_secret_file = optional(PATH, "Or a file holding the client secret.",
        example="/run/secrets/oidc-client-secret")
    redirect_url = optional(URL, "The callback URL registered at the provider.",
        default_doc="the request's origin + /admin/rest_api/oidc/callback",
        example="https://gateway.example.com/admin/rest_api/oidc/callback")
    post_logout_redirect_url = optional(URL, "Where the provider sends the browser after logout.",
        default_doc="the request's origin + /admin/rest_api/", example="https://gateway.example.com/admin/rest_api/")
    scopes = setting(STRINGS, ["openid", "profile", "email"], "Requested scopes (openid is always added).",
        example=["openid", "profile", "email", "groups", "offline_access"])
    extra_auth_params = setting(STRING_TABLE, {}, "Extra authorization request parameters.",
        example={"access_type": "offline"})
    username_claim = setting(CLAIM, "preferred_username", "Claim naming the principal (else sub).")
    groups_claim = optional(CLAIM, "Claim (dotted path) listing the principal's groups.",
        default_doc="unset (no groups)", example="groups")
    algorithms = setting(Type("list of asymmetric JWT algorithms", _oidc_algorithms), [],
        "ID token algorithms (empty: the provider's asymmetric ones).", example=["RS256"])
    leeway = derived(seconds(300, zero=True), "Clock skew tolerance in seconds.",
        default_doc="jwt.leeway", example=30)
    timeout = setting(seconds(30), 5, "Seconds per request to the provider.")
    discovery_ttl = setting(seconds(), 3600, "Seconds the discovery document is used.")
    jwks_lifespan = setting(seconds(), 300, "Seconds a fetched JWKS is kept.")
    jwks_min_refresh_interval = setting(seconds(), 30, "Least seconds between refetches for unknown key ids.")
    protect = setting(Type("list of path prefixes", _prefixes), ["/"],
        "Proxied path prefixes where a browser without a session is sent to sign in.",
        example=["/home", "/dags"])

    @property
    def enabled(self) -> bool:
        return self.issuer is not None

    def derive(self, config: GatewayConfig, environ: Mapping[str, str]) -> Self:
        return self.replace(leeway=config.jwt.leeway if self.leeway is None else self.leeway)

    def check(self, config: GatewayConfig) -> None:
        sources = (OidcConfig.client_secret_env, OidcConfig.client_secret_file)
        secrets = [s for s in sources if getattr(self, s.key)]
        if self.issuer is None:
            others = [s for s in (OidcConfig.client_id, *secrets) if getattr(self, s.key)]
            if others:
                raise ConfigError(f"{others[0].name} is set but oidc.issuer is not (sign-on would be off)")
            return
        if self.client_id is None or len(secrets) != 1:
            raise ConfigError(
                "oidc: set oidc.client_id and exactly one of oidc.client_secret_env, oidc.client_secret_file"
            )


class SessionsConfig(Section, doc="Browser sessions of the sign-on (see docs/sso.md)."):
    database_url = optional(Type("postgresql:// URL (secret)", _database_url),
        "Shared session store for several gateway instances.",
        default_doc="jobs.database_url, else SQLite in the state directory",
        example="postgresql://gateway@db.example:5432/gateway_sessions", secret=True)
    cookie_name = setting(Type("cookie name", _cookie_name), "airflow_gateway_session", "The session cookie.")
    lifetime = setting(seconds(), 8 * 3600, "Seconds a session lasts after sign-in.")
    idle_timeout = setting(seconds(), 3600, "Seconds a session lasts without a request.")
    cache_ttl = setting(seconds(60), 5, "Seconds a looked-up session is served from memory "
        "(how stale a logout may look on another instance).")
    login_ttl = setting(seconds(3600), 600, "Seconds a started sign-in may take.")

    def derive(self, config: GatewayConfig, environ: Mapping[str, str]) -> Self:
        return self.replace(database_url=self.database_url or config.jobs.database_url)

    def check(self, config: GatewayConfig) -> None:
        if self.idle_timeout <= 60 + self.cache_ttl:
            raise ConfigError("sessions.idle_timeout must exceed 60 s + sessions.cache_ttl")
# fmt: on


class GatewayConfig:
    """The whole, validated configuration, passed explicitly to every layer: one section per
    attribute, in the order of the sample file and the reference.  Built by
    ``gateway.config.loader.load_config``; :meth:`replace` gives a changed copy (tests).
    """

    gateway = section(GatewayProcessConfig)
    server = section(ServerConfig)
    airflow = section(AirflowConfig)
    cli = section(CliConfig)
    rest_api_plugin = section(RestApiPluginConfig)
    proxy = section(ProxyConfig)
    limits = section(LimitsConfig)
    audit = section(AuditConfig)
    metrics = section(MetricsConfig)
    auth = section(AuthConfig)
    jwt = section(JwtConfig)
    policy = section(PolicyConfig)
    deploy = section(DeployConfig)
    jobs = section(JobsConfig)
    rate_limits = section(RateLimitsConfig)
    assertion = section(AssertionConfig)
    oidc = section(OidcConfig)
    sessions = section(SessionsConfig)

    #: where the values came from, lowest precedence first ("defaults", files...).
    sources: tuple[str, ...]

    def __init__(self, sections: Mapping[str, Section] | None = None, sources: tuple[str, ...] = ()) -> None:
        given = dict(sections or {})
        for cls in self.registry().sections:
            value = given.pop(cls.name, None)
            self.__dict__[cls.name] = cls() if value is None else value
        if given:
            raise TypeError(f"{type(self).__name__} has no section {', '.join(sorted(given))}")
        self.__dict__["sources"] = tuple(sources)

    @classmethod
    def registry(cls) -> Registry:
        """The sections and settings of this class (a subclass may add or replace sections)."""
        registry = _REGISTRIES.get(cls)
        if registry is None:
            registry = _REGISTRIES[cls] = _registry(cls)
        return registry

    def replace(self, **sections: Section) -> Self:
        """A copy with some sections replaced: ``config.replace(cli=config.cli.replace(nice=0))``."""
        current = {cls.name: getattr(self, cls.name) for cls in self.registry().sections}
        return type(self)({**current, **sections}, self.sources)

    @property
    def settings(self) -> dict[str, Any]:
        """Every setting's value by name (``"cli.default_timeout"``), computed defaults filled in."""
        return {s.name: getattr(getattr(self, s.section), s.key) for s in self.registry().settings}

    @property
    def daemon_dir(self) -> Path:
        """Where detached daemons' pid records and logs live."""
        return self.gateway.state_dir / "daemons"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: use replace()")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


_REGISTRIES: dict[type[GatewayConfig], Registry] = {}


def _registry(config: type[GatewayConfig]) -> Registry:
    slots: dict[str, SectionSlot[Any]] = {}
    for klass in reversed(config.__mro__):
        slots.update((name, slot) for name, slot in vars(klass).items() if isinstance(slot, SectionSlot))
    sections = tuple(slot.cls for slot in slots.values())
    settings = tuple(s for cls in sections for s in cls.settings)
    return Registry(
        sections=sections,
        settings=settings,
        by_name={s.name: s for s in settings},
        by_alias={alias: s for s in settings for alias in s.aliases},
    )


# The registry of GatewayConfig, under the names the loader, the documents and the tests use.
REGISTRY = GatewayConfig.registry()
#: section name -> what it is about, in the order of the sample file and the reference.
SECTIONS: dict[str, str] = {cls.name: cls.doc for cls in REGISTRY.sections}
SETTINGS = REGISTRY.settings
BY_NAME = REGISTRY.by_name
BY_ALIAS = REGISTRY.by_alias
in_section = REGISTRY.in_section
