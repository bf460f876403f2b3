"""The API reference, generated from the catalogue and the dialect tables so it cannot drift.

``python -m gateway.cli.reference`` prints it; ``--write [PATH]`` rewrites the generated block of
``docs/api-reference.md`` (or PATH); ``--check [PATH]`` exits 1 when that block is stale
(a unit test runs the same check).  The text around the block is written by hand.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.cli.apis import CATALOGUE
from gateway.cli.dialects import DIALECTS
from gateway.cli.spec import (
    Api,
    ApiKind,
    Builtin,
    Command,
    FilePath,
    Flag,
    Opt,
    OptN,
    Pos,
    Translation,
    Unavailable,
)

BEGIN = "<!-- BEGIN GENERATED API REFERENCE (python -m gateway.cli.reference --write) -->"
END = "<!-- END GENERATED API REFERENCE -->"
DEFAULT_PATH = Path("docs/api-reference.md")
_KINDS = {
    ApiKind.CLI: "runs one Airflow CLI command per call (`mode=job` runs it as a job)",
    ApiKind.DAEMON: "starts a detached daemon (see [Daemons](#daemons))",
    ApiKind.BUILTIN: "answered by the gateway itself",
}


def _command(command: Command) -> str:
    options: list[str] = []
    positionals: list[str] = []
    for token in command.argv:
        if isinstance(token, str):
            options.append(token)
        elif isinstance(token, Opt):
            options.append(f"[{token.flag}={token.param.upper()}]")
        elif isinstance(token, Flag):
            options.append(f"[{token.flag}]")
        elif isinstance(token, OptN):
            options.append(f"[{token.flag} {' '.join(p.upper() for p in token.params)}]")
        elif isinstance(token, FilePath) and token.flag:
            options.append(f"[{token.flag}={token.param.upper()}]")
        elif isinstance(token, (Pos, FilePath)):
            positionals.append(token.param.upper())
    if command.json == "flag":
        options.append("[--output=json]")
    text = " ".join(["airflow", *options, *(["--", *positionals] if positionals else [])])
    prefix = f"with `{command.when}`: " if command.when else ""
    return f"{prefix}`{text}`"


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _grouped(label: str, reasons: Mapping[str, str]) -> list[str]:
    """``label``: names sharing one reason on one line each (backfill rejects six for one reason)."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in reasons.items():
        by_reason.setdefault(reason, []).append(name)
    return [f"{label} {_names(names)}: {reason}" for reason, names in by_reason.items()]


def _dialect_lines(api: Api, dialect: str) -> list[str]:
    """What ``api`` runs on ``dialect``: its command(s), then the dialect's notes."""
    entry = DIALECTS[dialect].table[api.name]
    if isinstance(entry, Builtin):
        return ["answered by the gateway"]
    if isinstance(entry, Unavailable):
        return [f"not available: {entry.reason}"]
    assert isinstance(entry, Translation)  # noqa: S101
    lines = [_command(c) for c in entry.commands]
    if len(entry.commands) > 1 and entry.commands[-1].when is None:
        lines[-1] = "otherwise: " + lines[-1]
    if entry.requires:
        lines.append(f"required here: {_names(entry.requires)}")
    if entry.provider:
        lines.append(f"needs `{entry.provider}` installed beside Airflow (501 otherwise)")
    lines += _grouped("ignored with a warning:", entry.dropped)
    lines += _grouped("400 if given:", entry.rejected)
    lines += [f"`{name}` restricted: {reason}" for name, (_, reason) in entry.constraints.items()]
    return lines


def _arguments(api: Api) -> list[str]:
    if not api.params:
        return ["Arguments: none."]
    lines = ["Arguments:", ""]
    for p in api.params:
        need = "**required**" if p.required else "optional"
        also = f"; also `{'`, `'.join(p.aliases)}`" if p.aliases else ""
        lines.append(f"- `{p.name}` ({need}, {p.kind.value}{also}): {p.help}")
    return lines


def _section(api: Api, dialects: Sequence[str]) -> str:
    origin = "an API of the original plugin" if api.origin == "plugin" else "new in the gateway"
    methods = " or ".join(api.methods)
    lines = [f"### `{api.name}`", "", f"{api.summary}.", ""]
    lines += [f"{methods}; {origin}; {_KINDS[api.kind]}.", ""]
    lines += [*_arguments(api), "", "Airflow command:", ""]
    for dialect in dialects:
        label = f"- Airflow {DIALECTS[dialect].versions}:"
        parts = _dialect_lines(api, dialect)
        if len(parts) == 1:
            lines.append(f"{label} {parts[0]}")
        else:
            lines += [label, *(f"  - {part}" for part in parts)]
    return "\n".join(lines) + "\n"


def api_reference() -> str:
    """The markdown reference: an index, then one section per API of the catalogue."""
    dialects = sorted(DIALECTS, reverse=True)  # "3", "2", "110": newest first
    links = ", ".join(f"[`{name}`](#{name})" for name in CATALOGUE)
    index = textwrap.fill(f"APIs: {links}.", width=110, break_long_words=False, break_on_hyphens=False)
    sections = [_section(api, dialects) for api in CATALOGUE.values()]
    return f"{index}\n\n" + "\n".join(sections)


def generated_block() -> str:
    return f"{BEGIN}\n{api_reference()}{END}"


def is_current(path: Path) -> bool:
    """True when the generated block of ``path`` equals what the tables produce now."""
    return generated_block() in path.read_text(encoding="utf-8")


def write(path: Path) -> None:
    """Replace the generated block of ``path``, keeping the hand-written text around it."""
    text = path.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    path.write_text(text[:start] + generated_block() + text[end:], encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--check"], ["--write"]):
        path = Path(args[1]) if len(args) > 1 else DEFAULT_PATH
        if args[0] == "--write":
            write(path)
            return 0
        if is_current(path):
            return 0
        print(
            f"{path} is stale; regenerate it with: python -m gateway.cli.reference --write", file=sys.stderr
        )
        return 1
    sys.stdout.write(api_reference())
    return 0


if __name__ == "__main__":
    sys.exit(main())
