"""Make sense of what a CLI call printed: noise filtering, JSON extraction, honest status."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from gateway.cli.spec import OutcomeRule
from gateway.execution.subprocess_runner import CliResult

# Loading/log noise, by Airflow generation:
#  1.x/2.x: "[2026-11-25T02:27:34.777+0000] {dagbag.py:588} INFO - Filling up the DagBag ..."
#  3.x:     "2026-11-25T02:27:31.522394Z [info     ] Filling up the DagBag ... loc=dagbag.py:460"
_LOG_2X = re.compile(r"^\[\d{4}-\d\d-\d\d[ T][^\]]*\] \{[^}]*\} (DEBUG|INFO) - ")
_LOG_3X = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z? \[(debug|info)\s*\] ")
# Warnings Airflow prints on every call, to stdout in 3.x and stderr in 2.x.
_WARNING_3X = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z? \[warning\s*\] .*\[py\.warnings\]")
_PY_WARNING = re.compile(r"^/\S+\.py:\d+ \w*Warning: ")
# Airflow 1.10.15 tells, on every call, the 2.0 name of the command (to stderr).
_DEPRECATED_110 = re.compile(
    r"^The .*(command is|options to '\w+' have been) deprecated and removed in Airflow 2\.0"
)
_GRAPHVIZ_TAIL = ("You might need to install the graphviz package", "Run `pip install graphviz`")
_TRACEBACK_START = "Traceback (most recent call last):"


# Start-up chatter printed before any command runs; dropped even where logs are output.
_LOADING = re.compile(
    r"Filling up the DagBag|DAG bundles loaded|Added new DAG bundle|setup plugin|Using executor|"
    r"Loaded executor|Loaded API auth backend|Dags? processed|Creating ORM DAG|Sync \d+ DAGs"
)


def filter_loading_messages(text: str, *, logs_are_output: bool = False) -> str:
    """Drop Airflow's loading messages and per-call warnings, keep everything else.

    :param logs_are_output: for commands that run tasks (``test``, ``run``, ``backfill``)
        the INFO log lines carry the task's own output, so only start-up chatter goes.
    """
    kept: list[str] = []
    skip_graphviz = False
    for line in text.splitlines():
        is_log = bool(_LOG_2X.match(line) or _LOG_3X.match(line))
        if is_log and (not logs_are_output or _LOADING.search(line)):
            continue
        if _PY_WARNING.match(line) or _DEPRECATED_110.match(line):
            continue
        if _WARNING_3X.match(line) or (skip_graphviz and line.strip().startswith(_GRAPHVIZ_TAIL)):
            skip_graphviz = True
            continue
        if "Could not import graphviz" in line:
            skip_graphviz = True
            continue
        skip_graphviz = False
        kept.append(line)
    return "\n".join(kept) + ("\n" if kept else "")


def condense_tracebacks(text: str) -> str:
    """Replace each Python traceback by its final exception line.

    Airflow reports most failures as an uncaught exception; the frames add internal paths
    and nothing a caller can act on, and the gateway promises no tracebacks in answers.
    """
    if _TRACEBACK_START not in text:
        return text
    out: list[str] = []
    in_tb = False
    for line in text.splitlines():
        if line.startswith(_TRACEBACK_START):
            in_tb = True
            continue
        if in_tb:
            if line.startswith((" ", "\t")) or not line.strip():
                continue
            if line.startswith(("The above exception", "During handling of the above")):
                continue
            # The first unindented line after the frames is the exception, whatever its
            # name (DagRunAlreadyExists, SystemExit...): kept whole, message included.
            out.append(line)
            in_tb = False
            continue
        out.append(line)
    return "\n".join(out) + ("\n" if out else "")


def last_json_line(text: str) -> Any:
    """Airflow prints ``-o json`` output as one line, the last on stdout (after any logs)."""
    for line in reversed(text.splitlines()):
        stripped = line.strip()
        if stripped:
            return json.loads(stripped)
    raise ValueError("no output")


WARM_PROCESS_DIED = (
    "the warm CLI process died during the call, so the command's exit code is unknown: it may have"
    " done its work (check before retrying); the next call runs in a new process"
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The HTTP status of a finished command, and what to tell the caller about it."""

    status: int
    message: str | None = None
    warning: str | None = None


def classify(result: CliResult, rules: tuple[OutcomeRule, ...]) -> Outcome:
    """Turn an exit code (and known lies) into an honest HTTP status.

    Rules see the raw, unfiltered output: the evidence is often in log lines.
    """
    if result.timed_out:
        return Outcome(504, "the command did not finish in time and was killed")
    if result.lost:
        return Outcome(502, WARM_PROCESS_DIED)
    combined = result.stdout + "\n" + result.stderr
    for rule in rules:
        if result.returncode in rule.exit_codes and re.search(rule.pattern, combined):
            if rule.status < 400:
                return Outcome(rule.status, warning=rule.message)
            return Outcome(rule.status, rule.message)
    if result.returncode == 0:
        return Outcome(200)
    if result.returncode == 2:
        return Outcome(400, "Airflow rejected the command line (usage error)")
    return Outcome(500, f"the command failed with exit code {result.returncode}")
