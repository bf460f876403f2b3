"""The vocabulary of the dialect tables: APIs, parameters and argv templates.

A dialect table (``airflow3.py``, ``airflow2.py``, ``airflow110.py``) is plain data built
from these records; :mod:`gateway.cli.interpreter` is the only code that reads them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Kind(enum.Enum):
    """What a parameter holds; each kind has one validator in :mod:`gateway.cli.values`."""

    DAG_ID = "dag_id"
    TASK_ID = "task_id"
    RUN_ID = "run_id"
    DATE = "date"
    DATE_OR_RUN_ID = "date_or_run_id"
    JSON_OBJECT = "json_object"
    BOOL = "bool"
    INT = "int"
    REGEX = "regex"
    POOL = "pool"
    POOL_SET = "pool_set"
    CONN_ID = "conn_id"
    CONN_URI = "conn_uri"
    CONN_TYPE = "conn_type"
    VAR_KEY = "var_key"
    TEXT = "text"
    FILE_NAME = "file_name"
    SERVER_PATH = "server_path"
    HOST = "host"
    PORT = "port"
    QUEUES = "queues"
    PRINCIPAL = "principal"
    BUNDLE = "bundle"
    DAEMON_ID = "daemon_id"
    STATE = "state"
    UPLOAD = "upload"
    SUBFOLDER = "subfolder"


@dataclass(frozen=True, slots=True)
class Param:
    """One request argument of an API, under the original plugin's name.

    :param aliases: other accepted names (e.g. ``logical_date`` for ``execution_date``).
    """

    name: str
    kind: Kind
    help: str
    required: bool = False
    aliases: tuple[str, ...] = ()


class ApiKind(enum.Enum):
    """How an API is served."""

    CLI = "cli"  # one CLI run per request
    DAEMON = "daemon"  # a detached long-running CLI process
    BUILTIN = "builtin"  # answered by the gateway itself


@dataclass(frozen=True, slots=True)
class Api:
    """The public, dialect-independent face of an API: name, arguments, help."""

    name: str
    summary: str
    params: tuple[Param, ...] = ()
    kind: ApiKind = ApiKind.CLI
    methods: tuple[str, ...] = ("GET", "POST")
    origin: str = "plugin"  # "plugin" (the original API) or "gateway" (added here)

    def param(self, name: str) -> Param | None:
        """The parameter called ``name`` or having it as an alias."""
        for param in self.params:
            if name == param.name or name in param.aliases:
                return param
        return None


# --- argv template tokens -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pos:
    """A positional value: always placed after ``--`` so it can never read as an option."""

    param: str


@dataclass(frozen=True, slots=True)
class Opt:
    """``--flag=value`` when the parameter is given (``=`` keeps a leading dash inert)."""

    flag: str
    param: str


@dataclass(frozen=True, slots=True)
class Flag:
    """A bare ``--flag`` when the boolean parameter is true."""

    flag: str
    param: str


@dataclass(frozen=True, slots=True)
class OptN:
    """``--flag V1 V2 ...`` for an option taking several values (1.10's ``--set KEY VALUE``).

    The values are separate argv elements after the flag, so the interpreter refuses
    any that starts with ``-``.
    """

    flag: str
    params: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FilePath:
    """A file name resolved inside the gateway's files directory: a positional, or
    ``--flag=PATH`` when ``flag`` is set."""

    param: str
    flag: str | None = None


Token = str | Pos | Opt | OptN | Flag | FilePath


@dataclass(frozen=True, slots=True)
class OutcomeRule:
    """Re-classify a finished command whose exit code does not tell the truth.

    Applies when ``pattern`` (a regex) is found in stdout+stderr and the exit code is in
    ``exit_codes``.
    """

    pattern: str
    status: int
    message: str
    exit_codes: tuple[int, ...] = (0, 1)


@dataclass(frozen=True, slots=True)
class Command:
    """One argv template, chosen when its ``when`` parameter is present (``None``: default).

    :param json: ``"flag"`` when the command takes ``--output json`` (its JSON is the last
        stdout line), ``"stdout"`` when the whole stdout is a JSON value.
    :param returns_file: parameter naming a file the command writes, returned as ``data``.
    :param requires: parameters that must be present when this command is chosen.
    """

    argv: tuple[Token, ...]
    when: str | None = None
    requires: tuple[str, ...] = ()
    json: str | None = None
    returns_file: str | None = None


@dataclass(frozen=True, slots=True)
class Translation:
    """How one API runs on one dialect.

    :param dropped: parameters this version no longer has whose loss is harmless,
        mapped to the warning returned in the envelope.
    :param rejected: parameters this version cannot honour, mapped to the reason (400).
    :param requires: parameters that this dialect needs although the API lists them as
        optional.
    :param provider: the Python distribution that must be installed beside Airflow.
    :param outcome: rules for commands whose exit codes lie.
    :param logs_are_output: the command runs tasks, whose output arrives as log lines.
    :param constraints: parameter -> (regex the value must match in full, reason if not),
        for values this version would silently misread.
    """

    commands: tuple[Command, ...]
    dropped: Mapping[str, str] = field(default_factory=dict)
    rejected: Mapping[str, str] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    provider: str | None = None
    outcome: tuple[OutcomeRule, ...] = ()
    logs_are_output: bool = False
    constraints: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The API has no equivalent in this dialect; ``reason`` names what replaced it."""

    reason: str


@dataclass(frozen=True, slots=True)
class Builtin:
    """Answered in-process by the named gateway handler; no CLI run."""

    handler: str


Entry = Translation | Unavailable | Builtin


@dataclass(frozen=True, slots=True)
class Dialect:
    """One Airflow CLI dialect: its name, the versions it covers, and its table.

    :param read_backs: API -> the reader (named in :data:`gateway.dags.readback.READERS`) that
        reads back, after a successful call, a fact this version's CLI does not print.
    """

    name: str
    versions: str
    table: Mapping[str, Entry]
    outcome: tuple[OutcomeRule, ...] = ()
    #: Commands the gateway itself runs (not APIs), by purpose: e.g. ``dags_folder``.
    queries: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: No CLI command writes parsed DAGs to the database (1.10): deploy and refresh do it
    #: in Airflow's own Python (:mod:`gateway.dags.sync110`).
    dags_in_python: bool = False
    read_backs: Mapping[str, str] = field(default_factory=dict)
