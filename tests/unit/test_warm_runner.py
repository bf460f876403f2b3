"""The warm runner's process semantics, with the real warm server and a stand-in ``airflow``.

The stand-in is a Python script run by the server exactly as it runs Airflow's console
script (``runpy`` in a forked child), so these tests need no Airflow: what they check is
what a forked call shares, or must not share, with the warm parent.  The same behaviour
against real Airflow is in tests/e2e/test_cli_runners.py.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli.output import WARM_PROCESS_DIED, Outcome, classify
from gateway.execution import cpugroup
from gateway.execution.subprocess_runner import Admission, CallOptions, SubprocessRunner
from gateway.execution.warm.process import WarmCall
from gateway.execution.warm.warm_runner import WarmLimits, WarmRunner
from tests.support.processes import gone

# Imported once by the warm parent (like Airflow), then run per call as __main__.
MODULE = """
import random, signal, threading
PARENT_RANDOM = random.random()
def start_thread():
    threading.Thread(target=lambda: __import__("time").sleep(600), daemon=True).start()
"""

SCRIPT = """#!{python}
import json, os, random, signal, sys, time
sys.path.insert(0, {here!r})
import standin_module
mode = sys.argv[1]
def _inheritable(fd):
    try:
        return os.get_inheritable(fd)
    except OSError:
        return False
if mode == "facts":
    print(json.dumps({{
        "argv": sys.argv, "cwd": os.getcwd(), "user": os.environ.get("USER"),
        "logname": os.environ.get("LOGNAME"), "pid": os.getpid(), "sid": os.getsid(0),
        "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
        "links": {{f: os.readlink("/proc/self/fd/" + f) for f in os.listdir("/proc/self/fd") if int(f) > 3}},
        "inheritable": [f for f in range(64) if _inheritable(f)],
        "random": random.random(), "parent_random": standin_module.PARENT_RANDOM,
        "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "sigchld_default": signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL,
        "stdin": sys.stdin.read(), "env_secret": os.environ.get("GATEWAY_ONLY_SECRET"),
        "airflow_var": os.environ.get("AIRFLOW__CORE__X"), "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "autogroup": open("/proc/self/autogroup").read() if os.path.exists("/proc/self/autogroup") else None,
        "cgroup": open("/proc/self/cgroup").read(),
    }}))
elif mode == "read":
    print(os.getpid(), open(sys.argv[2]).read())
elif mode == "streams":
    print("out"); print("err", file=sys.stderr); sys.exit(3)
elif mode == "raise":
    raise RuntimeError("boom")
elif mode == "big":
    sys.stdout.write("x" * 100000)
elif mode == "sleep":
    print("started", flush=True); time.sleep(600)
elif mode == "finish":
    print("started", flush=True); time.sleep(float(sys.argv[2])); print("finished"); sys.exit(int(sys.argv[3]))
elif mode == "selfkill":
    print("started", flush=True); time.sleep(float(sys.argv[2])); os.kill(os.getpid(), signal.SIGKILL)
elif mode == "escape":
    import subprocess
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    open(sys.argv[2], "w").write(str(p.pid))
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)
"""


class Observer:
    def __init__(self) -> None:
        self.fallbacks: list[str] = []
        self.restarts: list[str] = []
        self.rss: list[int] = []

    def cli_fallback(self, reason: str) -> None:
        self.fallbacks.append(reason)

    def warm_restart(self, reason: str) -> None:
        self.restarts.append(reason)

    def warm_rss(self, rss_bytes: int) -> None:
        self.rss.append(rss_bytes)


@pytest.fixture
def standin(tmp_path: Path) -> Path:
    (tmp_path / "standin_module.py").write_text(MODULE)
    script = tmp_path / "airflow"
    script.write_text(SCRIPT.format(python=sys.executable, here=str(tmp_path)))
    script.chmod(0o755)
    return script


def make_runner(
    tmp_path: Path,
    standin: Path,
    *,
    limits: WarmLimits | None = None,
    observer: Observer | None = None,
    nice: int = 0,
    cgroup: str | None = None,
) -> WarmRunner:
    env = {"PATH": os.environ["PATH"], "AIRFLOW__CORE__X": "1", "USER": "gateway-os-user"}
    cold = SubprocessRunner(
        env=env,
        cwd=tmp_path / "work",
        max_output_bytes=1000,
        admission=Admission(4),
        nice=nice,
        cgroup=cgroup,
    )
    steps = {"imports": ["standin_module"], "import_packages": [], "memoize": [], "calls": [], "optional": []}
    return WarmRunner(
        cold=cold, python=sys.executable, executable=str(standin), steps=steps, state_dir=tmp_path / "state",
        limits=limits or WarmLimits(), observer=observer,
    )  # fmt: skip


def wait_warm(runner: WarmRunner, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while runner.process is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runner.process is not None, (runner.state_dir / "warm" / "server.log").read_text()


@pytest.fixture(params=[2, 0], ids=["pool", "fork"])
def warm(tmp_path: Path, standin: Path, request: pytest.FixtureRequest) -> Iterator[WarmRunner]:
    """A warm runner whose calls go to pre-forked children ("pool"), or are forked per call."""
    runner = make_runner(tmp_path, standin, limits=WarmLimits(pool_size=request.param))
    runner.start()
    wait_warm(runner)
    yield runner
    runner.close()


def facts(runner: WarmRunner, standin: Path, **options: object) -> dict[str, object]:
    res = runner.run([str(standin), "facts", "--flag", "value with spaces; $(x)"], timeout_s=30,
                     options=CallOptions(**options))  # type: ignore[arg-type]  # fmt: skip
    assert res.returncode == 0 and res.runner == "warm", res.stderr
    return dict(json.loads(res.stdout))


def test_a_call_is_forked_with_exactly_the_planned_argv(
    warm: WarmRunner, standin: Path, tmp_path: Path
) -> None:
    """argv reaches the command as a list; cwd and environment are the cold runner's."""
    got = facts(warm, standin)
    assert got["argv"] == [str(standin), "facts", "--flag", "value with spaces; $(x)"]
    assert got["cwd"] == str(tmp_path / "work")
    assert got["airflow_var"] == "1" and got["env_secret"] is None
    assert got["pid"] != warm.process.pid  # type: ignore[union-attr]


def test_each_call_has_its_own_session_stdin_and_only_its_streams(warm: WarmRunner, standin: Path) -> None:
    """New session, stdin at EOF, no descriptor of the warm parent (its control socket) leaks in.

    Beside the streams the call holds one pipe, close-on-exec: its status pipe, on which it
    reports its own exit code (so that it survives the warm server)."""
    got = facts(warm, standin)
    assert got["sid"] == got["pid"] and got["stdin"] == ""
    assert len(got["fds"]) == 5  # 0-2, the listdir of /proc/self/fd itself, the status pipe
    links = list(dict(got["links"]).values())  # type: ignore[call-overload]
    assert len(links) == 1 and links[0].startswith("pipe:")  # never the control socket
    assert got["inheritable"] == [0, 1, 2]


def test_calls_run_at_the_configured_priority_in_their_own_scheduling_group(
    tmp_path: Path, standin: Path
) -> None:
    """Warm and cold alike: the call's nice value, and its session's autogroup nice (the one
    that counts against the gateway's threads when autogroup scheduling is on)."""
    runner = make_runner(tmp_path, standin, nice=7)
    try:
        cold = runner.cold.run([str(standin), "facts"], timeout_s=30)
        runner.start()
        wait_warm(runner)
        seen = {"cold": json.loads(cold.stdout), "warm": facts(runner, standin)}
        server = runner.process.pid  # type: ignore[union-attr]
        server_nice = os.getpriority(os.PRIO_PROCESS, server)
        group = Path(f"/proc/{server}/autogroup")
        server_group = group.read_text() if group.exists() else None
    finally:
        runner.close()
    # The warm server forks every call: its own work yields too.
    assert server_nice == 7
    assert server_group is None or server_group.rstrip().endswith("nice 7"), server_group
    for name, got in seen.items():
        assert got["nice"] == 7, name
        if got["autogroup"] is not None:  # absent when the kernel has no autogroup support
            assert str(got["autogroup"]).rstrip().endswith("nice 7"), (name, got["autogroup"])


@pytest.fixture
def idle_cgroup() -> Iterator[Path]:
    """A cgroup of this test's own with ``cpu.idle = 1``, beside the gateway's shared one."""
    shared = cpugroup.prepare("auto")
    if shared.path is None:
        pytest.skip(f"this machine gives no idle cgroup ({shared.reason}); the fallback is cli.nice")
    path = Path(shared.path).parent / f"airflow-gateway-test-{os.getpid()}"
    placement = cpugroup.prepare(str(path))
    assert placement.path == str(path), placement.reason
    try:
        yield path
    finally:
        deadline = time.monotonic() + 30
        while True:  # empty once the runner's processes are gone
            try:
                path.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def test_calls_and_the_warm_server_run_in_the_idle_cgroup(
    tmp_path: Path, standin: Path, idle_cgroup: Path
) -> None:
    """Warm and cold alike, on the real kernel: the call's process is in the cgroup, whose
    ``cpu.idle`` is set, and so is the warm server that forks the calls."""
    runner = make_runner(tmp_path, standin, cgroup=str(idle_cgroup))
    try:
        cold = runner.cold.run([str(standin), "facts"], timeout_s=30)
        runner.start()
        wait_warm(runner)
        seen = {"cold": json.loads(cold.stdout), "warm": facts(runner, standin)}
        server = Path(f"/proc/{runner.process.pid}/cgroup").read_text()  # type: ignore[union-attr]
    finally:
        runner.close()
    assert (idle_cgroup / "cpu.idle").read_text().strip() == "1"
    for name, got in {**seen, "server": {"cgroup": server}}.items():
        assert f"/{idle_cgroup.name}\n" in str(got["cgroup"]), (name, got["cgroup"])


def test_random_state_and_signal_handlers_are_not_shared(warm: WarmRunner, standin: Path) -> None:
    one, two = facts(warm, standin), facts(warm, standin)
    assert one["random"] != two["random"]
    assert one["sigterm_default"] and one["sigchld_default"]


def test_principal_is_the_user_airflow_records(warm: WarmRunner, standin: Path) -> None:
    got = facts(warm, standin, user="alice@example.com")
    assert (got["user"], got["logname"]) == ("alice@example.com", "alice@example.com")
    assert facts(warm, standin)["user"] == "gateway-os-user"


def test_separate_streams_and_the_real_exit_code(warm: WarmRunner, standin: Path) -> None:
    res = warm.run([str(standin), "streams"], timeout_s=30)
    assert (res.returncode, res.stdout, res.stderr, res.runner) == (3, "out\n", "err\n", "warm")


def test_an_uncaught_exception_is_exit_1_with_the_traceback(warm: WarmRunner, standin: Path) -> None:
    res = warm.run([str(standin), "raise"], timeout_s=30)
    assert res.returncode == 1 and "RuntimeError: boom" in res.stderr


def test_output_is_capped_as_on_the_cold_path(warm: WarmRunner, standin: Path) -> None:
    res = warm.run([str(standin), "big"], timeout_s=30)
    assert res.truncated and len(res.stdout) == 1000 and res.returncode == 0


def test_timeout_kills_the_whole_tree(warm: WarmRunner, standin: Path, tmp_path: Path) -> None:
    """A setsid grandchild that ignores SIGTERM dies with the call (issue 13, finding 7)."""
    marker = tmp_path / "escaper.pid"
    res = warm.run([str(standin), "escape", str(marker)], timeout_s=2)
    assert res.timed_out and res.returncode is None and res.runner == "warm"
    assert gone(int(marker.read_text()))
    assert warm.process is not None and warm.process.alive()  # the warm parent survives


def test_cancel_streams_then_kills(warm: WarmRunner, standin: Path) -> None:
    cancel = threading.Event()
    seen: list[bytes] = []

    def on_output(stream: str, data: bytes) -> None:
        seen.append(data)
        cancel.set()

    res = warm.run(
        [str(standin), "sleep"], timeout_s=60, options=CallOptions(on_output=on_output, cancel=cancel)
    )
    assert res.cancelled and seen == [b"started\n"]


def test_other_commands_and_cold_commands_run_cold(warm: WarmRunner, standin: Path) -> None:
    res = warm.run([sys.executable, "-c", "print('syntax check')"], timeout_s=30)
    assert (res.runner, res.stdout) == ("cold", "syntax check\n")
    res = warm.run([str(standin), "db", "migrate"], timeout_s=30)
    assert res.runner == "cold"


def test_calls_run_cold_until_warm_then_warm(tmp_path: Path, standin: Path) -> None:
    observer = Observer()
    runner = make_runner(tmp_path, standin, observer=observer)
    try:
        first = runner.run([str(standin), "streams"], timeout_s=30)  # not started: cold, and starts warming
        assert first.runner == "cold" and first.returncode == 3
        assert observer.fallbacks[:1] in (["warming_up"], ["unavailable"])
        wait_warm(runner)
        assert runner.run([str(standin), "streams"], timeout_s=30).runner == "warm"
    finally:
        runner.close()


@pytest.mark.parametrize(
    ("limits", "reason"),
    [(WarmLimits(max_calls=2), "max_calls"), (WarmLimits(max_age_s=0.5), "max_age")],
    ids=["max_calls", "max_age"],
)
def test_a_due_warm_process_serves_until_its_successor_is_warm(
    tmp_path: Path, standin: Path, limits: WarmLimits, reason: str
) -> None:
    """Routine replacement costs no cold call: the old process serves while the new one warms."""
    observer = Observer()
    runner = make_runner(tmp_path, standin, limits=limits, observer=observer)
    runner.start()
    try:
        wait_warm(runner)
        old = runner.process
        assert old is not None
        time.sleep(0.6)  # past max_age (the max_calls case counts calls instead)
        runners = [runner.run([str(standin), "streams"], timeout_s=30).runner for _ in range(3)]
        assert runners == ["warm", "warm", "warm"] and observer.fallbacks == []
        assert observer.restarts[:1] == [reason]
        deadline = time.monotonic() + 60
        while runner.process is old and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runner.process is not None and runner.process is not old
        assert gone(old.pid or 0)  # closed once its calls ended
        assert runner.run([str(standin), "streams"], timeout_s=30).runner == "warm"
    finally:
        runner.close()


def test_a_due_warm_process_that_turns_stale_is_retired_at_once(tmp_path: Path, standin: Path) -> None:
    """Due, then its files change: it stops serving (the change is seen), calls run cold."""
    runner = make_runner(tmp_path, standin, limits=WarmLimits(max_calls=1))
    runner.start()
    try:
        wait_warm(runner)
        process = runner.process
        assert process is not None and process.facts is not None
        module = tmp_path / "standin_module.py"
        object.__setattr__(process.facts, "watch", (str(module),))
        runner._fingerprint = type(runner._fingerprint).take((str(module),), (), runner.cold.env)
        assert runner.run([str(standin), "streams"], timeout_s=30).runner == "warm"  # now due
        module.write_text(MODULE + "\nPARENT_RANDOM = 'edited'\n")
        res = runner.run([str(standin), "facts"], timeout_s=30)
        assert res.runner == "cold" and json.loads(res.stdout)["parent_random"] == "edited"
    finally:
        runner.close()


def test_a_dead_warm_process_is_replaced_and_the_call_runs_cold(warm: WarmRunner, standin: Path) -> None:
    process = warm.process
    assert process is not None and process.pid is not None
    os.kill(process.pid, 9)
    assert gone(process.pid)
    res = warm.run([str(standin), "streams"], timeout_s=30)
    assert res.runner == "cold" and res.returncode == 3
    wait_warm(warm)
    assert warm.run([str(standin), "streams"], timeout_s=30).runner == "warm"


def test_an_edited_watched_file_replaces_the_warm_process(tmp_path: Path, standin: Path) -> None:
    """What the parent imported changes: the next call runs cold (fresh), and a new parent warms up."""
    observer = Observer()
    runner = make_runner(tmp_path, standin, observer=observer)
    runner.start()
    try:
        wait_warm(runner)
        process = runner.process
        assert process is not None and process.facts is not None
        # The stand-in reports no config file; watch the module the parent imported instead.
        module = tmp_path / "standin_module.py"
        object.__setattr__(process.facts, "watch", (str(module),))
        runner._fingerprint = type(runner._fingerprint).take((str(module),), (), runner.cold.env)
        module.write_text(MODULE + "\nPARENT_RANDOM = 'edited'\n")
        res = runner.run([str(standin), "facts"], timeout_s=30)
        assert res.runner == "cold" and json.loads(res.stdout)["parent_random"] == "edited"
        assert observer.restarts == ["install"]
    finally:
        runner.close()


def test_no_python_means_cold_and_never_fails(tmp_path: Path, standin: Path) -> None:
    runner = make_runner(tmp_path, standin)
    runner.python = None
    runner.start()
    assert runner.run([str(standin), "streams"], timeout_s=30).runner == "cold"


def test_warm_up_failure_falls_back_to_cold(tmp_path: Path, standin: Path) -> None:
    observer = Observer()
    runner = make_runner(tmp_path, standin, observer=observer)
    runner.steps = {"imports": ["no_such_module_for_the_warm_server"]}
    runner.start()
    deadline = time.monotonic() + 30
    while runner._next_try == 0.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner._next_try > 0.0 and runner.process is None
    assert runner.run([str(standin), "streams"], timeout_s=30).runner == "cold"
    assert "no_such_module" in (tmp_path / "state" / "warm" / "server.log").read_text()


class _Script:
    """Stands in for alembic's ScriptDirectory: cheap to make, costly to load (counted)."""

    loads = 0

    def __init__(self, directory: str) -> None:
        self.dir = directory

    def get_heads(self) -> list[str]:
        _Script.loads += 1
        return ["head"]


class _Config:
    def __init__(self, location: str) -> None:
        self.location = location


def test_alembic_script_directories_are_loaded_once_per_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each call's migration check gets the directory the warm parent loaded (not the files again)."""
    import types

    from gateway.execution.warm import server

    module = types.ModuleType("standin_alembic_db")
    module._get_script_object = lambda config=None: _Script(config.location if config else "/migrations")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "standin_alembic_db", module)
    _Script.loads = 0
    server._build_scripts_once("standin_alembic_db:_get_script_object")
    assert _Script.loads == 1  # at warm-up
    first = module._get_script_object()
    assert module._get_script_object(_Config("/migrations")) is first
    assert _Script.loads == 1
    other = module._get_script_object(_Config("/other"))
    assert other is not first and other.dir == "/other" and _Script.loads == 2


def test_a_release_without_the_script_function_warms_up_without_that_step() -> None:
    from gateway.execution.warm import server

    steps = {"alembic_scripts": ["json:_no_such_function"], "optional": ["json:_no_such_function"]}
    try:
        assert "warm_s" in server.warm_up(steps)
    finally:
        gc.unfreeze()  # warm_up freezes the GC, for the children of a warm parent
    with pytest.raises(AttributeError):
        server.warm_up({"alembic_scripts": ["json:_no_such_function"]})


def _kill_server_on_first_output(runner: WarmRunner) -> CallOptions:
    """Options whose output callback SIGKILLs the warm server the moment the call's child prints."""
    process = runner.process
    assert process is not None and process.pid is not None
    pid = process.pid

    def on_output(stream: str, data: bytes) -> None:
        if b"started" in data:
            os.kill(pid, 9)

    return CallOptions(on_output=on_output)


def test_a_warm_process_dying_during_a_call_answers_the_calls_own_exit_code(
    warm: WarmRunner, standin: Path
) -> None:
    """The call's own exit code, as soon as it ends (not a 504 "did not finish in time")."""
    old = warm.process
    res = warm.run(
        [str(standin), "finish", "1", "3"], timeout_s=20, options=_kill_server_on_first_output(warm)
    )
    assert (res.returncode, res.timed_out, res.lost, res.runner) == (3, False, False, "warm"), res
    assert res.stdout == "started\nfinished\n" and res.duration_s < 10
    assert classify(res, ()).status == 500  # what exit code 3 is, warm or cold
    nxt = warm.run([str(standin), "streams"], timeout_s=30)  # the next call works: cold, then warm
    assert nxt.returncode == 3 and nxt.runner == "cold"
    wait_warm(warm)
    assert warm.process is not old and warm.run([str(standin), "streams"], timeout_s=30).runner == "warm"


def test_a_dying_warm_process_is_noticed_with_other_calls_in_flight(warm: WarmRunner, standin: Path) -> None:
    """A call forked later held this call's status pipe: its EOF came only at the timeout."""
    first = warm.process
    assert first is not None and first.pid is not None
    cancel = threading.Event()
    other = threading.Thread(
        target=warm.run,
        args=([str(standin), "sleep"],),
        kwargs={"timeout_s": 60, "options": CallOptions(cancel=cancel)},
    )
    try:

        def start_other_then_kill(stream: str, data: bytes) -> None:
            if b"started" in data:
                other.start()
                children = Path(f"/proc/{first.pid}/task/{first.pid}/children")
                deadline = time.monotonic() + 10
                while len(children.read_text().split()) < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)  # until the other call is forked (and holds what it inherited)
                os.kill(first.pid or 0, 9)

        res = warm.run([str(standin), "finish", "1.5", "4"], timeout_s=20,
                       options=CallOptions(on_output=start_other_then_kill))  # fmt: skip
        assert (res.returncode, res.timed_out, res.lost) == (4, False, False), res
        assert res.duration_s < 10
    finally:
        cancel.set()
        other.join(30)


def test_an_exit_code_lost_with_the_warm_process_is_a_clear_502(warm: WarmRunner, standin: Path) -> None:
    """The server died, then the child was killed before it could report: the outcome is unknown."""
    res = warm.run([str(standin), "selfkill", "1"], timeout_s=20, options=_kill_server_on_first_output(warm))
    assert (res.returncode, res.timed_out, res.lost, res.runner) == (None, False, True, "warm"), res
    assert res.duration_s < 10
    assert classify(res, ()) == Outcome(502, WARM_PROCESS_DIED)
    assert "warm CLI process died" in WARM_PROCESS_DIED
    assert warm.run([str(standin), "streams"], timeout_s=30).returncode == 3


def test_exit_lines_that_came_with_the_pid_line_are_read() -> None:
    """A fast call's ``done``/``exit`` lines can arrive in the same read as ``pid``: not lost."""
    fds = [end for _ in range(3) for end in os.pipe()]
    for fd in fds[1::2]:
        os.close(fd)  # every writer gone: the next read is EOF
    call = WarmCall(12345, fds[0], fds[2], fds[4], b"done 1\nexit 1\n")
    try:
        assert call.wait(1) and (call.returncode, call.lost, call.server_died) == (1, False, False)
    finally:
        call.close()


def _server_children(runner: WarmRunner) -> set[int]:
    pid = runner.process.pid if runner.process is not None else None
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def _pool(runner: WarmRunner, size: int, within_s: float = 10.0) -> set[int]:
    """The warm server's children once there are ``size`` (its pool, when no call runs)."""
    deadline = time.monotonic() + within_s
    while len(children := _server_children(runner)) != size and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(children) == size, children
    return children


@pytest.fixture
def pooled(tmp_path: Path, standin: Path) -> Iterator[WarmRunner]:
    runner = make_runner(tmp_path, standin, limits=WarmLimits(pool_size=2, pool_idle_s=300))
    runner.start()
    wait_warm(runner)
    yield runner
    runner.close()


def test_a_call_goes_to_a_child_forked_before_it_and_that_child_serves_it_alone(
    pooled: WarmRunner, standin: Path
) -> None:
    ahead = _pool(pooled, 2)
    first = facts(pooled, standin)
    second = facts(pooled, standin)
    assert {first["pid"], second["pid"]} == ahead  # both forked before their call, one each
    assert gone(int(first["pid"])) and gone(int(second["pid"]))  # type: ignore[call-overload]
    refilled = _pool(pooled, 2)
    assert not refilled & ahead  # replaced by new children, forked after the calls


def test_a_child_forked_before_a_file_changed_reads_it_at_call_time(
    pooled: WarmRunner, standin: Path, tmp_path: Path
) -> None:
    """What a call reads when it runs (DAG files) is read then, not when its child was forked."""
    dag = tmp_path / "dag_file.py"
    dag.write_text("before")
    ahead = _pool(pooled, 2)
    dag.write_text("after")
    res = pooled.run([str(standin), "read", str(dag)], timeout_s=30)
    pid, _, text = res.stdout.partition(" ")
    assert (res.runner, text) == ("warm", "after\n")
    assert int(pid) in ahead  # one of the children forked before the change


def test_a_stale_warm_process_takes_its_pool_with_it(tmp_path: Path, standin: Path) -> None:
    """A watched file changes: no child forked before the change runs a call; all of them exit."""
    observer = Observer()
    runner = make_runner(tmp_path, standin, observer=observer, limits=WarmLimits(pool_size=2))
    runner.start()
    try:
        wait_warm(runner)
        process = runner.process
        assert process is not None and process.facts is not None
        ahead = _pool(runner, 2)
        module = tmp_path / "standin_module.py"
        object.__setattr__(process.facts, "watch", (str(module),))
        runner._fingerprint = type(runner._fingerprint).take((str(module),), (), runner.cold.env)
        module.write_text(MODULE + "\nPARENT_RANDOM = 'edited'\n")
        res = runner.run([str(standin), "facts"], timeout_s=30)
        assert res.runner == "cold" and json.loads(res.stdout)["parent_random"] == "edited"
        assert all(gone(pid) for pid in ahead) and gone(process.pid or 0)
        wait_warm(runner)
        got = facts(runner, standin)
        assert got["parent_random"] == "edited" and got["pid"] not in ahead
    finally:
        runner.close()


def test_the_pool_empties_when_idle_and_the_next_call_refills_it(tmp_path: Path, standin: Path) -> None:
    runner = make_runner(tmp_path, standin, limits=WarmLimits(pool_size=2, pool_idle_s=1.0))
    runner.start()
    try:
        wait_warm(runner)
        ahead = _pool(runner, 2)
        assert all(gone(pid) for pid in ahead)  # idle for a second: emptied
        assert _server_children(runner) == set()
        got = facts(runner, standin)  # forked for the call, as with no pool
        assert got["pid"] not in ahead
        assert len(_pool(runner, 2)) == 2
    finally:
        runner.close()


def test_a_pooled_child_that_died_waiting_is_skipped(pooled: WarmRunner, standin: Path) -> None:
    ahead = sorted(_pool(pooled, 2))
    for pid in ahead:
        os.kill(pid, 9)
    assert all(gone(pid) for pid in ahead)
    got = facts(pooled, standin)
    assert got["pid"] not in ahead
