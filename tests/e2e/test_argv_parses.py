"""Every golden argv is accepted by the real Airflow's own argparse parser.

This is what catches a flag that does not exist in a version (e.g. ``--subdir`` on 3.x).
The parser is built and run inside the Airflow virtualenv, without executing commands.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.airflow import AirflowHome
from tests.unit.golden import FILES, GOLDEN

_PARSE = """
import contextlib, io, json, sys
try:
    from airflow.cli.cli_parser import get_parser
except ImportError:  # Airflow 1.10
    from airflow.bin.cli import CLIFactory
    get_parser = CLIFactory.get_parser
parser = get_parser()
out = []
for argv in json.load(sys.stdin):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
        out.append(None)
    except SystemExit:
        out.append(err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "exit")
print(json.dumps(out))
"""


def parse_all(airflow: AirflowHome, argvs: list[list[str]]) -> list[str | None]:
    done = subprocess.run(
        [str(airflow.venv / "bin" / "python"), "-c", _PARSE],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        env=airflow.process_env(),
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_golden_argv_parse_on_real_airflow(airflow: AirflowHome, tmp_path: Path) -> None:
    """All golden argv of this dialect parse, except the celery provider's (not installed here)."""
    cases = GOLDEN[airflow.major]
    # `variables import/export` open their file while parsing: point them at a scratch dir.
    (tmp_path / "vars.json").write_text("{}")
    argvs = [[a.replace(FILES, str(tmp_path)) for a in argv] for _, _, argv in cases]
    results = parse_all(airflow, argvs)
    failures = {
        " ".join(argv): error
        for (api, _, argv), error in zip(cases, results, strict=True)
        if error is not None and api not in {"worker", "flower"}
    }
    assert failures == {}
    if airflow.major == "1.10":
        assert results == [None] * len(results)  # 1.10 always has worker and flower; they fail when run
        return
    # Without apache-airflow-providers-celery the celery group does not exist: this is why
    # the gateway refuses worker/flower with a 501 naming the package before running anything.
    celery = [error for (api, _, _), error in zip(cases, results, strict=True) if api in {"worker", "flower"}]
    assert all(error and "celery" in error for error in celery)


def test_old_style_argv_is_rejected_by_real_airflow(airflow: AirflowHome) -> None:
    """Sanity check of the harness: 1.10 spellings and removed flags do fail to parse."""
    if airflow.major == "1.10":  # no JSON output and no reserialize (1.10.15 has some 2.0 group names)
        assert all(parse_all(airflow, [["list_dags", "--output=json"], ["dags", "reserialize"]]))
        return
    bad = [["list_dags"], ["variables", "--get", "k"], ["tasks", "list", "--subdir=/x", "--", "d"]]
    results = parse_all(airflow, bad)
    assert results[0] and results[1]
    if airflow.major == "3":
        assert results[2], "--subdir was removed in Airflow 3"
    else:
        assert results[2] is None
