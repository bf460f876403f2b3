"""Where a warm CLI call's CPU goes: a forked child's phases, measured in Airflow's own Python.

    eval "$(scripts/bootstrap)"; .venv/bin/python benchmarks/warm_profile.py [--airflow 3] [--reps 15]
        [--cprofile dags_state]

The outer part (the gateway's venv) makes an Airflow home (SQLite, the test DAGs, one DAG
run, one variable) and runs this file again in Airflow's interpreter (``--inner``).  The
inner part loads ``gateway/execution/warm/server.py`` as the warm server does, runs the
dialect's warm-up table, then forks one child per call as the server does
(``Server._child``'s steps: ``_after_fork``, ``chdir``, ``sys.argv``, ``_run_script``) and
reports, per command, the median over ``--reps`` children of:

- ``fork``: the parent's CPU for ``os.fork()`` (copying the page tables);
- ``reinit``: the child's CPU for ``_after_fork`` (reseed, engine dispose, log handlers);
- ``start``: from there to Airflow's ``action_cli`` wrapper (runpy of the console script,
  argument parsing, the command module's import if not warm);
- ``log_row``: Airflow's pre-execution callbacks (``default_action_log``: the ``log`` row);
- ``schema``: ``check_and_run_migrations`` (reads the database revision);
- ``log_tpl``: ``synchronize_log_template``;
- ``command``: the command itself (to the post-execution callbacks);
- ``exit``: post-execution callbacks, ``atexit`` handlers;
- ``entry``: the child's CPU before its first line (the return from ``fork``);
- ``teardown``: the child's CPU after ``os._exit`` (unmapping its copy of the parent),
  and ``td_wall`` the wall time from ``os._exit`` to reaped;
- ``child_cpu``: the child's whole CPU (``wait4`` rusage: includes copy-on-write faults);
- ``wall``: fork to reaped.

With ``--pool``, each child is forked and re-initialised ahead of its call, as a
pre-forked child is (``server.py``'s pool), and ``wall`` is then from the argv's arrival.

``--cprofile NAME`` prints the top functions (cumulative) of one more child of that command.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DAG = "gw_example"
RUN_DATE = "2026-10-01T00:00:00+00:00"

COMMANDS = {
    "version": ["version"],
    "variables_get": ["variables", "get", "bench_key"],
    "pool_get": ["pools", "get", "default_pool"],
    "dag_state": ["dags", "state", DAG, RUN_DATE],
    "list_dags": ["dags", "list"],
}
PHASES = ["fork", "entry", "reinit", "start", "log_row", "schema", "log_tpl", "command", "exit", "teardown",
          "child_cpu", "td_wall", "wall"]  # fmt: skip


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _instrument(marks: dict[str, float]) -> None:
    """Timing wrappers around the phases of Airflow's ``action_cli`` (in the child only)."""
    import airflow.utils.cli as cli_utils  # type: ignore[import-not-found]
    import airflow.utils.cli_action_loggers as loggers  # type: ignore[import-not-found]
    import airflow.utils.db as db  # type: ignore[import-not-found]

    def mark(name: str) -> None:
        marks[name] = time.process_time()

    def wrap(owner: Any, attr: str, before: str, after: str) -> None:
        func = getattr(owner, attr)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            mark(before)
            try:
                return func(*args, **kwargs)
            finally:
                mark(after)

        setattr(owner, attr, wrapped)

    wrap(cli_utils, "_check_cli_args", "action", "action")
    wrap(db, "check_and_run_migrations", "schema0", "schema1")
    wrap(db, "synchronize_log_template", "tpl0", "tpl1")
    pre = getattr(loggers, "__pre_exec_callbacks")
    pre.insert(0, lambda **kw: mark("log0"))
    pre.append(lambda **kw: mark("log1"))
    post = getattr(loggers, "__post_exec_callbacks")
    post.insert(0, lambda **kw: mark("post0"))


def _phases(marks: dict[str, float]) -> dict[str, float]:
    def span(a: str, b: str) -> float:
        return (marks[b] - marks[a]) * 1000 if a in marks and b in marks else float("nan")

    return {
        "reinit": span("entry", "reinit"),
        "start": span("reinit", "action"),
        "log_row": span("log0", "log1"),
        "schema": span("schema0", "schema1"),
        "log_tpl": span("tpl0", "tpl1"),
        # Commands without action_cli (no log row, no schema check): all of it is the command.
        "command": span("tpl1", "post0") if "tpl1" in marks else span("action", "end"),
        "exit": span("post0", "end"),
        "entry": marks["entry"] * 1000,
        "end_cpu": marks["end"] * 1000,
    }


def inner(args: argparse.Namespace) -> int:
    code = Path(args.code) / "gateway" / "execution" / "warm"
    server = _load(code / "server.py", "_warm_server")
    steps = _load(code / "steps.py", "_warm_steps").WARM_UP[args.airflow]
    executable = args.executable
    sys.path[0] = os.path.dirname(executable)
    facts = server.warm_up(steps)
    print(
        f"warm-up {facts['warm_s']:.2f} s, parent RSS {_rss_mib(os.getpid()):.0f} MiB, "
        f"database warmed: {facts.get('database_warmed')}",
        file=sys.stderr,
    )
    results: dict[str, dict[str, list[float]]] = {}
    plan = [(name, rep) for rep in range(args.reps + 1) for name in args.commands]
    for name, rep in plan:
        row = _one(server, executable, COMMANDS[name], pool=args.pool)
        if rep == 0:
            continue  # the first child of each command: first-use costs in the parent's caches
        for key, value in row.items():
            results.setdefault(name, {}).setdefault(key, []).append(value)
    print(
        json.dumps({name: {k: statistics.median(v) for k, v in row.items()} for name, row in results.items()})
    )
    if args.cprofile:
        _one(server, executable, COMMANDS[args.cprofile], profile=True)
    return 0


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _one(
    server: Any, executable: str, argv: list[str], *, profile: bool = False, pool: bool = False
) -> dict[str, float]:
    import resource

    report_r, report_w = os.pipe()
    go_r, go_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        os.close(go_w)
        marks = {"entry": time.process_time()}
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            server._after_fork("bench")
            marks["reinit"] = time.process_time()
            if pool:
                getattr(server, "_first_connect", lambda: None)()  # as a pooled child does
                os.read(go_r, 1)  # the argv arrives
            _instrument(marks)
            sys.argv = [executable, *argv]
            if profile:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.enable()
                code = server._run_script(executable)
                prof.disable()
                stats = pstats.Stats(prof, stream=sys.stderr)
                stats.sort_stats("cumulative").print_stats(45)
                stats.sort_stats("tottime").print_stats(25)
            else:
                code = server._run_script(executable)
            marks["end"] = time.process_time()
            os.write(report_w, json.dumps({**_phases(marks), "end_wall": time.perf_counter()}).encode())
        finally:
            os._exit(code)
    after = resource.getrusage(resource.RUSAGE_SELF)
    os.close(report_w)
    os.close(go_r)
    if pool:
        time.sleep(0.3)  # re-initialised by the time the call comes
        started = time.perf_counter()
        os.write(go_w, b"x")
    os.close(go_w)
    data = b""
    while chunk := os.read(report_r, 65536):
        data += chunk
    os.close(report_r)
    _, status, usage = os.wait4(pid, 0)
    reaped = time.perf_counter()
    wall = (reaped - started) * 1000
    if os.WEXITSTATUS(status) != 0:
        raise SystemExit(f"{argv} failed in the child (exit {os.WEXITSTATUS(status)})")
    row: dict[str, float] = json.loads(data) if data else {}
    row["fork"] = ((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)) * 1000
    row["child_cpu"] = (usage.ru_utime + usage.ru_stime) * 1000
    row["wall"] = wall
    row["teardown"] = row["child_cpu"] - row.pop("end_cpu", float("nan"))
    row["td_wall"] = (reaped - row.pop("end_wall", float("nan"))) * 1000
    return row


def outer(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.support.airflow import make_airflow_home

    with tempfile.TemporaryDirectory() as tmp:
        airflow = make_airflow_home(args.airflow, Path(tmp) / "home")
        airflow.cli("variables", "set", "bench_key", "bench_value")
        date_flag = "--logical-date" if args.airflow == "3" else "--exec-date"
        airflow.cli("dags", "trigger", DAG, "--run-id", "bench_run", date_flag, RUN_DATE)
        python = Path(airflow.executable).read_text().splitlines()[0][2:].strip()
        argv = [python, __file__, "--inner", "--airflow", args.airflow,
                "--executable", str(airflow.executable), "--reps", str(args.reps),
                "--commands", *args.commands]  # fmt: skip
        if args.cprofile:
            argv += ["--cprofile", args.cprofile]
        if args.pool:
            argv += ["--pool"]
        argv += ["--code", args.code]
        print(f"load average before: {os.getloadavg()}", file=sys.stderr)
        done = subprocess.run(
            argv, env=airflow.process_env(), cwd=tmp, capture_output=True, text=True, check=False
        )
        sys.stderr.write(done.stderr)
        if done.returncode != 0:
            return done.returncode
        medians = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"load average after: {os.getloadavg()}", file=sys.stderr)
        print(f"Airflow {args.airflow}, median of {args.reps} forked children per command, CPU ms per phase")
        print(f"{'command':<14}" + "".join(f"{p:>10}" for p in PHASES))
        for name, row in medians.items():
            print(f"{name:<14}" + "".join(f"{row.get(p, float('nan')):10.1f}" for p in PHASES))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--executable", help=argparse.SUPPRESS)
    parser.add_argument("--airflow", choices=["3", "2"], default="3")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--commands", nargs="+", default=list(COMMANDS), choices=list(COMMANDS))
    parser.add_argument("--cprofile", choices=list(COMMANDS))
    parser.add_argument("--pool", action="store_true", help="fork and re-initialise before the argv arrives")
    parser.add_argument(
        "--code",
        default=str(ROOT),
        help="the gateway checkout whose warm server is profiled (e.g. main's, for a before/after)",
    )
    args = parser.parse_args()
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    sys.exit(main())
