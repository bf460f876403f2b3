"""The one interpreter of the dialect tables: request arguments in, a checked plan out.

Nothing here runs a process.  :meth:`Interpreter.plan` validates every argument against
the catalogue, applies the dialect's renames, drops and rejections, and builds an argv in
which each value is exactly one element: options as ``--flag=value``, positionals after
``--``, so no value can ever be read as an option.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.cli.spec import (
    Api,
    ApiKind,
    Builtin,
    Command,
    Dialect,
    FilePath,
    Flag,
    Kind,
    Opt,
    OptN,
    OutcomeRule,
    Pos,
    Translation,
    Unavailable,
)
from gateway.cli.values import InvalidValue, Upload, Value, validate
from gateway.core.errors import Refused

RESERVED = frozenset({"api"})
OUTPUT_FORMATS = frozenset({"json", "text"})


class PlanError(Refused):
    """The request cannot be planned; ``status`` is the HTTP code, ``message`` is safe to show."""


def command_line(argv: Sequence[str]) -> str:
    """``argv`` as the envelope's ``airflow_cmd`` shows it (``airflow`` for the executable)."""
    return shlex.join(["airflow", *argv[1:]])


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated CLI call, ready for the runner (or the daemon manager)."""

    api: Api
    argv: tuple[str, ...]
    translation: Translation
    command: Command
    values: Mapping[str, Value]
    warnings: tuple[str, ...]
    wants_data: bool
    files: Mapping[str, Path] = field(default_factory=dict)

    @property
    def display(self) -> str:
        """The command line as the envelope's ``airflow_cmd`` shows it."""
        return command_line(self.argv)

    @property
    def outcome_rules(self) -> tuple[OutcomeRule, ...]:
        return self.translation.outcome


@dataclass(frozen=True, slots=True)
class BuiltinCall:
    """An API answered in-process by the gateway."""

    api: Api
    handler: str
    values: Mapping[str, Value]
    warnings: tuple[str, ...] = ()


def _referenced(command: Command) -> set[str]:
    names = {tok.param for tok in command.argv if isinstance(tok, (Pos, Opt, Flag, FilePath))}
    names |= {p for tok in command.argv if isinstance(tok, OptN) for p in tok.params}
    if command.when:
        names.add(command.when)
    return names | set(command.requires)


class Interpreter:
    """Plans API calls for one dialect.

    :param dialect: the table for the detected Airflow.
    :param catalogue: the public API catalogue.
    :param executable: the ``airflow`` executable that starts every argv.
    :param files_dir: where ``import``/``export`` file names are resolved.
    :param distributions: Python distributions installed beside Airflow (provider checks).
    """

    def __init__(
        self,
        dialect: Dialect,
        catalogue: Mapping[str, Api],
        *,
        executable: str,
        files_dir: Path,
        distributions: frozenset[str] = frozenset(),
    ) -> None:
        self.dialect = dialect
        self.catalogue = catalogue
        self.executable = executable
        self.files_dir = files_dir
        self.distributions = frozenset(d.lower() for d in distributions)
        check_table(dialect, catalogue)

    @property
    def api_names(self) -> list[str]:
        return sorted(self.catalogue)

    def available(self, name: str) -> bool:
        entry = self.dialect.table.get(name)
        if isinstance(entry, Translation) and entry.provider:
            return entry.provider in self.distributions
        return entry is not None and not isinstance(entry, Unavailable)

    def query(self, purpose: str) -> tuple[str, ...]:
        """The argv of a command the gateway runs for itself (the dialect's ``queries``).

        :raises PlanError: 500, when this dialect has no such command.
        """
        words = self.dialect.queries.get(purpose)
        if words is None:
            raise PlanError(f"Airflow {self.dialect.versions} has no command for '{purpose}'", status=500)
        return (self.executable, *words)

    def plan(
        self,
        api_name: str | None,
        args: Mapping[str, Sequence[str]],
        uploads: Mapping[str, Sequence[Upload]] | None = None,
        given: Mapping[str, Value] | None = None,
    ) -> Plan | BuiltinCall:
        """Validate a request and build its plan.

        :param args: every request argument (query and form) but ``api``, as lists of values.
        :param uploads: files of a multipart body, by field name (only ``Kind.UPLOAD`` takes them).
        :param given: values already validated by the caller, by parameter name (the
            compatibility mode's multi-field forms, kept apart so that no join and re-split
            can move a value into another field).
        :raises PlanError: with a message naming the offending API or argument.
        """
        if not api_name:
            raise PlanError(f"missing argument 'api'; valid APIs: {', '.join(self.api_names)}")
        api = self.catalogue.get(api_name)
        entry = self.dialect.table.get(api_name)
        if api is None or entry is None:
            raise PlanError(f"unknown api {_quote(api_name)}; valid APIs: {', '.join(self.api_names)}")
        if isinstance(entry, Unavailable):
            raise PlanError(
                f"api '{api.name}' is not available on Airflow {self.dialect.versions}: {entry.reason}"
            )
        values = self._values(api, args)
        for name, value in (given or {}).items():
            if name in values:
                raise PlanError(f"argument '{name}' is given more than once")
            values[name] = value
        self._uploads(api, uploads or {}, values)
        if isinstance(entry, Builtin):
            self._require(api, values, ())
            return BuiltinCall(api=api, handler=entry.handler, values=values)
        return self._plan_cli(api, entry, values)

    def _values(self, api: Api, args: Mapping[str, Sequence[str]]) -> dict[str, Value]:
        values: dict[str, Value] = {}
        unknown = sorted(name for name in args if name not in RESERVED and api.param(name) is None)
        if unknown:
            accepted = ", ".join(p.name for p in api.params) or "none"
            raise PlanError(
                f"unknown argument(s) {', '.join(_quote(n) for n in unknown)} for api '{api.name}'; "
                f"accepted: {accepted}"
            )
        for name, raw_values in args.items():
            if name in RESERVED:
                continue
            param = api.param(name)
            assert param is not None  # noqa: S101 - checked above
            if param.name in values:
                raise PlanError(f"argument '{param.name}' is given more than once (also as an alias)")
            if len(raw_values) != 1:
                raise PlanError(f"argument '{param.name}' is given more than once")
            raw = raw_values[0]
            if raw == "" and param.kind is not Kind.BOOL:
                continue  # an empty form field means "not given"
            try:
                values[param.name] = validate(param.kind, raw)
            except InvalidValue as exc:
                raise PlanError(f"argument '{param.name}': {exc}") from None
        output = values.get("output")
        if output is not None and output not in OUTPUT_FORMATS:
            raise PlanError("argument 'output': expected 'json' or 'text'")
        return values

    def _uploads(self, api: Api, uploads: Mapping[str, Sequence[Upload]], values: dict[str, Value]) -> None:
        for name, files in uploads.items():
            param = api.param(name)
            if param is None:
                accepted = ", ".join(p.name for p in api.params) or "none"
                raise PlanError(
                    f"unknown file argument {_quote(name)} for api '{api.name}'; accepted: {accepted}"
                )
            if param.kind is not Kind.UPLOAD:
                raise PlanError(f"argument '{param.name}' must be a form field, not a file")
            if param.name in values or len(files) != 1:
                raise PlanError(f"argument '{param.name}' is given more than once")
            values[param.name] = files[0]

    def _require(self, api: Api, values: Mapping[str, Value], extra: Sequence[str]) -> None:
        needed = [p.name for p in api.params if p.required] + list(extra)
        missing = [name for name in dict.fromkeys(needed) if name not in values]
        if missing:
            raise PlanError(f"missing required argument(s) for api '{api.name}': {', '.join(missing)}")

    def _plan_cli(self, api: Api, tr: Translation, values: dict[str, Value]) -> Plan:
        given = {name for name, value in values.items() if value is not False}
        rejected = [name for name in tr.rejected if name in given]
        if rejected:
            raise PlanError(
                "; ".join(
                    f"argument '{n}' is not supported on Airflow {self.dialect.versions}: {tr.rejected[n]}"
                    for n in rejected
                )
            )
        if tr.provider and tr.provider not in self.distributions:
            raise PlanError(
                f"api '{api.name}' needs the Python package '{tr.provider}' installed beside Airflow "
                f"(pip install {tr.provider}); it is not installed",
                status=501,
            )
        for name, (pattern, reason) in tr.constraints.items():
            value = values.get(name)
            if isinstance(value, str) and not re.fullmatch(pattern, value):
                raise PlanError(f"argument '{name}' on Airflow {self.dialect.versions}: {reason}")
        command = self._choose(api, tr, given)
        self._require(api, values, (*tr.requires, *command.requires))
        warnings = [tr.dropped[name] for name in tr.dropped if name in given]
        used = _referenced(command) | set(tr.dropped) | {"output"}
        if command.json == "stdout":
            used.add("json")
        unused = sorted(name for name in given if name not in used)
        if unused:
            warnings.append(f"ignored argument(s) not used by this call: {', '.join(unused)}")
        wants_data = values.get("output") == "json" or (
            command.json == "stdout" and values.get("json") is True
        )
        if values.get("output") == "json" and command.json is None and command.returns_file is None:
            warnings.append("JSON output is not available for this command; the text output is returned")
        argv, files = self._argv(command, values, wants_data)
        return Plan(
            api=api,
            argv=argv,
            translation=tr,
            command=command,
            values=values,
            warnings=tuple(warnings),
            wants_data=wants_data or command.returns_file is not None,
            files=files,
        )

    @staticmethod
    def _choose(api: Api, tr: Translation, given: set[str]) -> Command:
        modes = [c for c in tr.commands if c.when is not None and c.when in given]
        if len(modes) > 1:
            names = ", ".join(str(c.when) for c in modes)
            raise PlanError(f"api '{api.name}' does one thing per call; choose one of: {names}")
        if modes:
            return modes[0]
        default = [c for c in tr.commands if c.when is None]
        if default:
            return default[0]
        choices = ", ".join(str(c.when) for c in tr.commands)
        raise PlanError(f"api '{api.name}' needs one of: {choices}")

    def _argv(
        self, command: Command, values: Mapping[str, Value], wants_data: bool
    ) -> tuple[tuple[str, ...], dict[str, Path]]:
        options: list[str] = []
        positionals: list[str] = []
        files: dict[str, Path] = {}
        for token in command.argv:
            if isinstance(token, str):
                options.append(token)  # sub-command names and fixed flags, in template order
            elif isinstance(token, Opt):
                value = values.get(token.param)
                if value is not None and value is not False:
                    options.append(f"{token.flag}={_text(value)}")
            elif isinstance(token, Flag):
                if values.get(token.param) is True:
                    options.append(token.flag)
            elif isinstance(token, OptN):
                if values.get(token.params[0]) is not None:
                    parts: list[str] = []
                    for name in token.params:
                        value = values.get(name)
                        parts.extend(
                            value if isinstance(value, tuple) else [_text(value)] if value is not None else []
                        )
                    if any(part.startswith("-") for part in parts):
                        raise PlanError(
                            f"on Airflow {self.dialect.versions} the values of {token.flag}"
                            " cannot start with '-'"
                        )
                    options.extend([token.flag, *parts])
            elif isinstance(token, Pos):
                value = values.get(token.param)
                if isinstance(value, tuple):
                    positionals.extend(value)
                elif value is not None:
                    positionals.append(_text(value))
            elif isinstance(token, FilePath):
                file_name = values.get(token.param)
                if isinstance(file_name, str):
                    path = (self.files_dir / file_name).resolve()
                    if path.parent != self.files_dir.resolve():
                        raise PlanError(f"argument '{token.param}': must be a plain file name")
                    files[token.param] = path
                    if token.flag:
                        options.append(f"{token.flag}={path}")
                    else:
                        positionals.append(str(path))
        if wants_data and command.json == "flag":
            options.append("--output=json")
        argv = [self.executable, *options]
        if positionals:
            argv += ["--", *positionals]
        return tuple(argv), files


def _text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _quote(name: str) -> str:
    shown = name if len(name) <= 60 else name[:57] + "..."
    return repr(shown)


def check_table(dialect: Dialect, catalogue: Mapping[str, Api]) -> None:
    """Fail at start-up if a table names an API or parameter the catalogue does not have.

    :raises ValueError: naming the dialect, API and parameter.
    """
    for name, entry in dialect.table.items():
        api = catalogue.get(name)
        if api is None:
            raise ValueError(f"dialect {dialect.name}: api {name!r} is not in the catalogue")
        if not isinstance(entry, Translation):
            continue
        if api.kind is ApiKind.BUILTIN:
            raise ValueError(f"dialect {dialect.name}: builtin api {name!r} has a CLI translation")
        known = {p.name for p in api.params}
        named = set(entry.dropped) | set(entry.rejected) | set(entry.requires) | set(entry.constraints)
        for command in entry.commands:
            named |= _referenced(command)
            if command.returns_file:
                named.add(command.returns_file)
        stray = sorted(named - known)
        if stray:
            raise ValueError(f"dialect {dialect.name}: api {name!r} names unknown parameter(s) {stray}")
        overlap = set(entry.dropped) & set(entry.rejected)
        if overlap:
            raise ValueError(f"dialect {dialect.name}: api {name!r} both drops and rejects {sorted(overlap)}")
