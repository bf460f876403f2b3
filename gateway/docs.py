"""Documentation generated from the dialect tables, so the README cannot drift from them.

``python -m gateway.docs`` prints the API table; ``--check README.md`` exits 1 when the
README's generated block differs (a unit test runs the same check).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.cli.apis import CATALOGUE
from gateway.cli.dialects import DIALECTS
from gateway.cli.spec import Api, Builtin, Command, FilePath, Flag, Opt, OptN, Pos, Translation, Unavailable

BEGIN = "<!-- BEGIN GENERATED API TABLE (python -m gateway.docs) -->"
END = "<!-- END GENERATED API TABLE -->"


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
    prefix = f"`{command.when}`: " if command.when else ""
    return f"{prefix}`{text}`"


def _cell(api: Api, dialect: str) -> str:
    entry = DIALECTS[dialect].table[api.name]
    if isinstance(entry, Builtin):
        return "answered by the gateway"
    if isinstance(entry, Unavailable):
        return f"not available: {entry.reason}"
    assert isinstance(entry, Translation)  # noqa: S101
    parts = [_command(c) for c in entry.commands]
    if entry.provider:
        parts.append(f"needs `{entry.provider}`")
    if entry.dropped:
        parts.append("ignored with a warning: " + ", ".join(f"`{n}`" for n in entry.dropped))
    if entry.rejected:
        parts.append("400 if given: " + ", ".join(f"`{n}`" for n in entry.rejected))
    return "<br>".join(parts)


def _arguments(api: Api) -> str:
    if not api.params:
        return "none"
    names = []
    for p in api.params:
        name = f"**{p.name}**" if p.required else p.name
        if p.aliases:
            name += f" (or {', '.join(p.aliases)})"
        names.append(f"{name}: {p.kind.value}")
    return "<br>".join(names)


def api_table() -> str:
    """The markdown table of every API with its arguments and argv per dialect."""
    dialects = sorted(DIALECTS, reverse=True)
    head = "| API | arguments (**required**) | " + " | ".join(f"Airflow {DIALECTS[d].versions}" for d in dialects)
    rows = [head + " |", "|" + " --- |" * (2 + len(dialects))]
    for api in CATALOGUE.values():
        origin = "" if api.origin == "plugin" else " (new)"
        cells = [f"`{api.name}`{origin}<br>{api.summary}", _arguments(api), *(_cell(api, d) for d in dialects)]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def generated_block() -> str:
    return f"{BEGIN}\n{api_table()}{END}"


def readme_is_current(readme: Path) -> bool:
    """True when the README's generated block equals what the tables produce now."""
    return generated_block() in readme.read_text(encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--check"]:
        path = Path(args[1] if len(args) > 1 else "README.md")
        if readme_is_current(path):
            return 0
        print(f"{path}: the API table is stale; regenerate with python -m gateway.docs --write", file=sys.stderr)
        return 1
    if args[:1] == ["--write"]:
        path = Path(args[1] if len(args) > 1 else "README.md")
        text = path.read_text(encoding="utf-8")
        start, end = text.index(BEGIN), text.index(END) + len(END)
        path.write_text(text[:start] + generated_block() + text[end:], encoding="utf-8")
        return 0
    sys.stdout.write(api_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
