"""The warm CLI server: runs in Airflow's own Python and forks one child per CLI call.

Started by :class:`gateway.execution.warm.process.WarmProcess` as
``<airflow's python> server.py CONTROL_FD EXECUTABLE WARM_UP_JSON``.  It imports Airflow
once (configuration, models, the CLI parser and command modules, as the dialect's warm-up
table says), then serves requests on the inherited control socket (``SOCK_SEQPACKET``,
private to the gateway worker that started it).  A request is one JSON message with three
file descriptors attached (stdout, stderr, status); nothing but the Airflow console script
with an argv list can be asked of it.  On the status pipe the server writes ``pid N`` and,
once it has reaped the child, ``exit CODE``; the child itself writes ``done CODE`` just
before it exits (its output pipes closed), so that its exit code survives the server and
the gateway need not wait for the exit itself (unmapping a copy of the server).

**The pool.**  The server keeps up to ``POOL_SIZE`` children forked *ahead* of any call,
each already in a session of its own, re-initialised (random reseeded, inherited database
pools disposed and the dialect's first connection made, log files closed) and blocked on
a private socketpair until the server hands it one call: the same message and three file
descriptors.  A pooled child serves exactly one call, as a child forked for it would; it
writes the ``pid N`` line itself, and the server forks its replacement.  The pool is emptied (its
children exit at their socket's EOF) after ``POOL_IDLE_S`` seconds without a call, and
refilled by the next call.  A pooled child has read nothing that a freshly forked one
would not have read already: configuration, plugins and the install are the server's own
(what the gateway fingerprints before each call: a change retires the server and its
pool), and DAG files are parsed by the call itself, at call time.

Standard library only, Python 3.8-compatible (Airflow 1.10 runs on 3.8), and no import of
the gateway: this file runs in a different interpreter.
"""

from __future__ import annotations

import array
import atexit
import datetime
import gc
import importlib
import importlib.util
import json
import logging
import os
import pkgutil
import random
import runpy
import select
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any

MAX_MESSAGE = 1024 * 1024


def _load_proctree() -> Any:
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "proctree.py")
    spec = importlib.util.spec_from_file_location("_gateway_proctree", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _resolve(path: str) -> tuple[Any, str, Any]:
    """``"pkg.module:Attr.attr"`` -> (owner object, last attribute name, value)."""
    module_name, _, qualname = path.partition(":")
    owner = importlib.import_module(module_name)
    parts = qualname.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    return owner, parts[-1], getattr(owner, parts[-1])


def _memoize(path: str) -> None:
    """Replace a function by one that computes each distinct call once.

    Calls are told apart by their bound arguments, defaults applied: ``f()`` and
    ``f(verify=True)`` are one call when ``verify`` defaults to True.
    """
    import inspect

    owner, name, func = _resolve(path)
    cache: dict[Any, Any] = {}
    try:
        signature: inspect.Signature | None = inspect.signature(func)
    except (TypeError, ValueError):
        signature = None

    def memoized(*args: Any, **kwargs: Any) -> Any:
        if signature is not None:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            key: Any = tuple(bound.arguments.items())
        else:
            key = (args, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = func(*args, **kwargs)
        return cache[key]

    setattr(owner, name, memoized)


def _call(path: str) -> None:
    _resolve(path)[2]()


def _build_scripts_once(path: str) -> None:
    """Replace ``f(config=None) -> ScriptDirectory`` with one that loads each directory once.

    Making the directory object is cheap; loading its revision map (every migration file)
    is not, and the object keeps it: the first one made for a directory is returned again.
    """
    owner, name, func = _resolve(path)
    loaded: dict[str, Any] = {}

    def script_directory(config: Any = None) -> Any:
        script = func(config)
        if script.dir not in loaded:
            script.get_heads()
            loaded[script.dir] = script
        return loaded[script.dir]

    setattr(owner, name, script_directory)
    script_directory()


def warm_up(steps: dict[str, list[str]]) -> dict[str, Any]:
    """Run the dialect's warm-up table; returns facts for the gateway (what to watch)."""
    started = time.monotonic()
    for name in steps.get("imports", []):
        importlib.import_module(name)
    for package in steps.get("import_packages", []):
        try:
            root = importlib.import_module(package)
        except ImportError:
            continue
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            try:
                importlib.import_module(info.name)
            except Exception:  # noqa: S112 - an optional command module; the child imports it if needed
                continue
    for path in steps.get("memoize", []):
        try:
            _memoize(path)
        except (ImportError, AttributeError):
            if path not in steps.get("optional", []):
                raise
    for key, step in (("calls", _call), ("alembic_scripts", _build_scripts_once)):
        for path in steps.get(key, []):
            try:
                step(path)
            except (ImportError, AttributeError):
                if path not in steps.get("optional", []):
                    raise
    facts: dict[str, Any] = {}
    if steps.get("database"):
        _guard_connections()
        facts["database_warmed"] = _warm_database(steps["database"])
    facts["warm_s"] = round(time.monotonic() - started, 3)
    facts.update(_watch_list(steps.get("package", [])))
    gc.collect()
    if hasattr(gc, "freeze"):
        gc.freeze()  # forked children then never scan (and so copy) the warm parent's objects
    return facts


def _guard_connections() -> None:
    """Never let a process use a pooled database connection that another process opened.

    Every connection is tagged with the pid that opened it; a checkout in another process
    (a forked child) discards it and opens its own (SQLAlchemy's recipe for pools across
    ``fork``).  The warm parent closes its connections before it forks anyway
    (:func:`_warm_database`), and children dispose of their inherited pools
    (:func:`_dispose_engines`): this is the last line, not the first.
    """
    from sqlalchemy import event, exc  # type: ignore[import-not-found]

    engine = getattr(sys.modules.get("airflow.settings"), "engine", None)
    if engine is None:
        return

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        record.info["gateway_pid"] = os.getpid()

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if record.info.get("gateway_pid", os.getpid()) != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None  # never touched again here
            raise exc.DisconnectionError("a connection opened by another process")

    event.listen(engine, "connect", on_connect)  # the engine's pool, and those that replace it
    event.listen(engine, "checkout", on_checkout)


def _session_warmers() -> dict[str, Any]:
    """What an Airflow 2/3 CLI child runs first, run once here (on names that exist nowhere).

    Each is Airflow's own function, so SQLAlchemy caches exactly the statements (and builds
    the mapper structures) that the children then find compiled.  Nothing is committed:
    the session's ``commit`` is its ``rollback``.
    """

    def schema_check(session: Any) -> None:
        from airflow.utils.db import check_and_run_migrations  # type: ignore[import-not-found]

        check_and_run_migrations()  # reads the database's revision; prompts only on a tty

    def log_template(session: Any) -> None:
        from airflow.utils.db import synchronize_log_template

        synchronize_log_template(session=session)

    def action_log(session: Any) -> None:
        import inspect

        from airflow.utils import cli_action_loggers  # type: ignore[import-not-found]

        func = cli_action_loggers.default_action_log
        if "session" not in inspect.signature(func).parameters:  # Airflow 2: the inner function has it
            func = cli_action_loggers._default_action_log_internal
        # A bulk insert's statement depends on which values are None: the shapes of the
        # commands without a DAG, with a DAG, with a DAG and a date, and with a task too.
        now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 - Python 3.8 (Airflow 1.10)
        shapes = ((None, None, None), (None, "w", None), (None, "w", now), ("w", "w", now))
        for task_id, dag_id, date in shapes:
            func(sub_command="warm_up", user="warm-up", task_id=task_id, dag_id=dag_id,
                 logical_date=date, execution_date=date, host_name="warm-up",
                 full_command=["airflow", "warm-up"], session=session)  # fmt: skip

    def variable(session: Any) -> None:
        from airflow.secrets.metastore import MetastoreBackend  # type: ignore[import-not-found]

        MetastoreBackend().get_variable(key="gateway_warm_up", session=session)

    def pool(session: Any) -> None:
        from airflow.models.pool import Pool  # type: ignore[import-not-found]

        Pool.get_pool("gateway_warm_up", session=session)

    def dag_run(session: Any) -> None:
        from airflow.models.dag import DagModel  # type: ignore[import-not-found]

        DagModel.get_dagmodel("gateway_warm_up", session=session)
        try:
            from airflow.cli.utils import (  # type: ignore[import-not-found]
                fetch_dag_run_from_run_id_or_logical_date_string,
            )
        except ImportError:  # Airflow 2: dags state selects the run by dag_id and execution_date
            from airflow.models.dagrun import DagRun  # type: ignore[import-not-found]
            from airflow.utils import timezone
            from sqlalchemy import select

            stmt = select(DagRun).filter_by(dag_id="gateway_warm_up", execution_date=timezone.utcnow())
            session.scalar(stmt)
            return
        fetch_dag_run_from_run_id_or_logical_date_string(
            dag_id="gateway_warm_up", value="2000-01-01T00:00:00+00:00", session=session
        )

    return {
        "schema_check": schema_check, "log_template": log_template, "action_log": action_log,
        "variable": variable, "pool": pool, "dag_run": dag_run,
    }  # fmt: skip


def _warm_database(names: list[str]) -> list[str]:
    """Run the named warmers with one session each, then close every connection; returns those that ran.

    The connections are the parent's own and are closed (the engine disposed) before
    anything forks: no connection or transaction crosses the fork.  A warmer that fails
    (the database is down, a release without that function) is skipped: the children
    then compile what it would have, as before.
    """
    settings = sys.modules.get("airflow.settings")
    engine = getattr(settings, "engine", None)
    session_factory = getattr(settings, "Session", None)
    if engine is None or session_factory is None:
        return []
    warmers = _session_warmers()
    done: list[str] = []
    try:
        for name in names:
            session = session_factory()
            session.commit = session.rollback  # nothing a warm-up runs is ever written
            try:
                warmers[name](session)
                done.append(name)
            except Exception as exc:  # noqa: BLE001 - best effort; the children do it as before
                print(f"warm-up: {name} skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
            finally:
                session.rollback()
                session.close()
                del session.commit
    finally:
        remove = getattr(session_factory, "remove", None)
        if remove is not None:
            remove()
        engine.dispose()  # every pooled connection closed, here, before any fork
    return done


def _watch_list(packages: list[str]) -> dict[str, Any]:
    """Files whose change makes this warm process stale: config, plugins, the install."""
    watch: list[str] = []
    trees: list[str] = []
    if not packages:
        return {"watch": watch, "trees": trees, "airflow_version": ""}
    try:
        from airflow import configuration  # type: ignore[import-not-found]

        cfg = getattr(configuration, "AIRFLOW_CONFIG", None)
        if cfg:
            watch.append(cfg)
        plugins = configuration.conf.get("core", "plugins_folder")
        if plugins:
            trees.append(plugins)
    except Exception:  # noqa: S110 - a broken config still runs; the child reports it
        pass
    package = importlib.import_module(packages[0])
    package_dir = os.path.dirname(os.path.abspath(package.__file__ or ""))
    watch += [package_dir, os.path.dirname(package_dir)]
    return {"watch": watch, "trees": trees, "airflow_version": getattr(package, "__version__", "")}


def _recv(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    fds = array.array("i")
    data, ancdata, _flags, _addr = sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(16 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    if not data:
        return None, list(fds)
    message: dict[str, Any] = json.loads(data.decode("utf-8"))
    return message, list(fds)


def _write(fd: int, line: str) -> None:
    try:
        os.write(fd, (line + "\n").encode("ascii"))
    except OSError:
        pass


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Server:
    """Serve run requests until the gateway closes the control socket."""

    def __init__(
        self, sock: socket.socket, executable: str, cwd: str, pool_size: int = 0, pool_idle_s: float = 60.0
    ) -> None:
        self.sock = sock
        self.executable = executable
        self.cwd = cwd
        self.calls: dict[int, int] = {}  # child pid -> status fd
        self.pool: list[tuple[int, socket.socket]] = []  # pre-forked children waiting for a call
        self.pool_size = pool_size
        self.pool_idle_s = pool_idle_s
        self.last_call = time.monotonic()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        while True:
            idle = time.monotonic() - self.last_call
            if self.pool and idle >= self.pool_idle_s:
                self._drain_pool()
            timeout = max(min(5.0, self.pool_idle_s - idle), 0.05) if self.pool else 5.0
            try:
                ready, _, _ = select.select([self.sock.fileno(), self.wake_r], [], [], timeout)
            except InterruptedError:
                ready = []
            self._reap()
            if self.wake_r in ready:
                try:
                    os.read(self.wake_r, 4096)
                except BlockingIOError:
                    pass
            if self.sock.fileno() in ready:
                message, fds = _recv(self.sock)
                if message is None:
                    for fd in fds:
                        os.close(fd)
                    self._drain_pool()
                    return  # the gateway worker is gone or retired us
                self.last_call = time.monotonic()
                self._start(message, fds)
                self._fill_pool()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for entry in [e for e in self.pool if e[0] == pid]:  # a pooled child that died waiting
                self.pool.remove(entry)
                entry[1].close()
            fd = self.calls.pop(pid, None)
            if fd is not None:
                _write(fd, f"exit {_exit_code(status)}")
                os.close(fd)

    def _start(self, message: dict[str, Any], fds: list[int]) -> None:
        if len(fds) != 3 or not isinstance(message.get("argv"), list):
            for fd in fds:
                os.close(fd)
            return
        out, err, status = fds
        argv = [str(arg) for arg in message["argv"]]
        user = message.get("user")
        user = user if isinstance(user, str) else None
        nice = message.get("nice")
        nice = nice if isinstance(nice, int) else 0
        pid = self._hand_to_pool(message, fds)
        if pid is not None:
            # The pooled child writes the ``pid`` line itself, before anything else: written
            # here, it could come after the child's own ``done`` line.
            self.calls[pid] = status
            os.close(out)
            os.close(err)
            return
        if threading.active_count() != 1:
            # Forking with other threads alive can copy a held lock: refuse, the gateway runs it cold.
            _write(status, "refused threads")
        else:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                self._child(argv, user, nice, out, err, status)
            self.calls[pid] = status
            _write(status, f"pid {pid}")
            os.close(out)
            os.close(err)
            return
        for fd in fds:
            os.close(fd)

    # -- the pool ----------------------------------------------------------------------

    def _hand_to_pool(self, message: dict[str, Any], fds: list[int]) -> int | None:
        """Give the call to a pre-forked child; its pid, or None (no child took it)."""
        while self.pool:
            pid, sock = self.pool.pop(0)  # the oldest first: the others stay younger
            try:
                sock.sendmsg([json.dumps(message).encode("utf-8")], [_rights(fds)])
            except OSError:  # it died waiting: the call goes to the next one, or to a fork
                continue
            finally:
                sock.close()
            return pid
        return None

    def _fill_pool(self) -> None:
        """Fork children until the pool is full (not with other threads alive: as for a call)."""
        while len(self.pool) < self.pool_size and threading.active_count() == 1:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                ours.close()
                self._pooled_child(theirs)
            theirs.close()
            self.pool.append((pid, ours))

    def _drain_pool(self) -> None:
        """Empty the pool: each child exits at its socket's EOF (reaped by :meth:`_reap`)."""
        for _pid, sock in self.pool:
            sock.close()
        self.pool = []

    def _pooled_child(self, sock: socket.socket) -> None:
        """A child forked ahead of its call: prepare, wait for one call, run it, exit."""
        code = 1
        status = -1
        try:
            self._detach([sock.fileno()])
            _after_fork(None)
            _first_connect()
            os.chdir(self.cwd)
            message, fds = _recv(sock)
            sock.close()
            if message is None or len(fds) != 3:
                for fd in fds:
                    os.close(fd)
                code = 0
                return  # drained (or the server died) before any call came
            out, err, status = fds
            _write(status, f"pid {os.getpid()}")
            argv = [str(arg) for arg in message["argv"]]
            user = message.get("user")
            nice = message.get("nice")
            PROCTREE.lower_priority(nice if isinstance(nice, int) else 0)
            if isinstance(user, str) and user:
                os.environ["LOGNAME"] = os.environ["USER"] = user
            self._streams(out, err, status)
            sys.argv = [self.executable] + argv[1:]
            code = _run_script(self.executable)
        except BaseException:  # noqa: B036 - the child must always reach os._exit
            traceback.print_exc()
        finally:
            _finish(status, code)

    # -- a call's child ----------------------------------------------------------------

    def _detach(self, keep: list[int]) -> None:
        """A forked child's own session, signals and stdin; the server's descriptors closed."""
        os.setsid()
        PROCTREE.become_subreaper()
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        # Other calls' status pipes: held here, they would not reach EOF when the server dies.
        # Pooled children's sockets: held here, they would not see the drain's EOF.
        others = set(self.calls.values()) | {sock.fileno() for _pid, sock in self.pool}
        for fd in ({devnull, self.sock.fileno(), self.wake_r, self.wake_w} | others) - set(keep):
            if fd > 2:
                os.close(fd)

    def _streams(self, out: int, err: int, status: int) -> None:
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (out, err):
            if fd > 2:
                os.close(fd)
        # Its own status pipe is kept (not for what it runs) to report its exit code
        # itself: the gateway learns it even if the server dies before reaping it.
        os.set_inheritable(status, False)

    def _child(self, argv: list[str], user: str | None, nice: int, out: int, err: int, status: int) -> None:
        code = 1
        try:
            self._detach([out, err, status])
            PROCTREE.lower_priority(nice)
            self._streams(out, err, status)
            _after_fork(user)
            os.chdir(self.cwd)
            sys.argv = [self.executable] + argv[1:]
            code = _run_script(self.executable)
        except BaseException:  # noqa: B036 - the child must always reach os._exit
            traceback.print_exc()
        finally:
            _finish(status, code)


def _finish(status: int, code: int) -> None:
    """Flush and close the call's output, report its exit code, exit (never returns)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        if status >= 0:
            # The output's EOF and the exit code reach the gateway now, not after the kernel
            # has unmapped this copy of the server (milliseconds of a call's wall time).
            for fd in (1, 2):
                try:
                    os.close(fd)
                except OSError:
                    pass
            _write(status, f"done {code & 0xFF}")
    finally:
        os._exit(code)


def _rights(fds: list[int]) -> tuple[int, int, bytes]:
    return (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())


def _first_connect() -> None:
    """A pooled child's own first database connection, made ahead of its call.

    SQLAlchemy initialises the dialect (server version, capabilities) on an engine's first
    connection; the child does it while it waits instead of on the call's time.  The
    connection goes back to the child's own (new) pool.  Best effort: a database that is
    down fails the call itself, as it would in a cold process.
    """
    settings = sys.modules.get("airflow.settings")
    engine = getattr(settings, "engine", None)
    if engine is None or not hasattr(engine, "connect"):
        return
    try:
        engine.connect().close()
    except Exception:  # noqa: S110 - the call reports it, as a cold process would
        pass


def _after_fork(user: str | None) -> None:
    """What a forked child must not share with the warm parent."""
    if user:
        os.environ["LOGNAME"] = os.environ["USER"] = user
    random.seed()
    _dispose_engines()
    for logger in [logging.getLogger()] + [
        item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)
    ]:
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.close()  # reopened on the next record, by this process


def _dispose_engines() -> None:
    """Drop pooled database connections inherited from the parent (it should have none)."""
    settings = sys.modules.get("airflow.settings")
    for name in ("engine", "async_engine"):
        engine = getattr(settings, name, None)
        engine = getattr(engine, "sync_engine", engine)
        if engine is None or not hasattr(engine, "dispose"):
            continue
        try:
            engine.dispose(close=False)
        except TypeError:  # SQLAlchemy < 1.4.33 (Airflow 1.10): a new pool, old sockets left alone
            engine.pool = engine.pool.recreate()


def _run_script(executable: str) -> int:
    """Run the ``airflow`` console script as a cold process would; returns the exit code."""
    try:
        runpy.run_path(executable, run_name="__main__")
        code = 0
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    except BaseException:  # noqa: B036 - what an uncaught exception does in a cold process
        sys.excepthook(*sys.exc_info())
        code = 1
    try:
        atexit._run_exitfuncs()
    except BaseException:  # noqa: B036, S110 - as the interpreter's own exit, never fatal
        pass
    return code


def main(args: list[str]) -> int:
    fd, executable, cwd, steps = int(args[0]), args[1], args[2], json.loads(args[3])
    # The server's own work (each fork copies its page tables) yields to the gateway too: it is
    # in a session, and so an autogroup, of its own (see proctree.lower_priority).  Its calls
    # inherit its cgroup.
    PROCTREE.lower_priority(int(args[4]) if len(args) > 4 else 0, args[5] if len(args) > 5 else "")
    # No PR_SET_PDEATHSIG: it fires when the *thread* that started us ends (the gateway
    # starts us from a short-lived thread).  The control socket's EOF is the signal: the
    # gateway worker alone holds the other end (close-on-exec), so it closes when it exits.
    sock = socket.socket(fileno=fd)
    # What the console script would have on sys.path: its own directory, not ours.
    sys.path[0] = os.path.dirname(executable)
    os.chdir(cwd)
    try:
        facts = warm_up(steps)
        facts.update(ready=True, pid=os.getpid(), python=sys.version.split()[0])
    except BaseException as exc:  # noqa: B036 - report any warm-up failure, then exit
        traceback.print_exc()
        sock.sendall(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}).encode())
        return 1
    facts["threads"] = threading.active_count()
    sock.sendall(json.dumps(facts).encode("utf-8"))
    pool_size = int(args[6]) if len(args) > 6 else 0
    pool_idle_s = float(args[7]) if len(args) > 7 else 60.0
    server = Server(sock, executable, cwd, pool_size, pool_idle_s)
    server._fill_pool()
    server.serve()
    return 0


PROCTREE = _load_proctree()

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
