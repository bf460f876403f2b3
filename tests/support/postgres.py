"""A real, private PostgreSQL cluster for tests (Debian's ``postgresql`` package).

``start_postgres(base_dir)`` runs ``initdb`` and ``pg_ctl`` from the newest
``/usr/lib/postgresql/*/bin`` (or ``$AIRFLOW_GATEWAY_TEST_PG_BINDIR``), listening on a
free port of 127.0.0.1 and on a private Unix socket directory, with trust
authentication for one superuser (``gateway``). ``stop()`` stops the server and removes
the whole cluster directory.

PostgreSQL refuses to run as root. When the tests run as root, the server runs as the
``postgres`` user that Debian's package creates (``$AIRFLOW_GATEWAY_TEST_PG_USER`` to
choose another); its files live in a directory that user owns. If ``base_dir`` cannot be
traversed by that user (pytest's temporary directories are mode 0700), the cluster goes
to a fresh directory under the system temporary directory instead. Non-root runs use the
current user and ``base_dir`` as is. ``scripts/bootstrap.d/40-postgresql.sh`` installs
the package where it is missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

SUPERUSER = "gateway"
DEFAULT_DB = "gateway"
# A Unix socket path (dir + "/.s.PGSQL.NNNNN") must fit in sockaddr_un (107 bytes).
_MAX_SOCKET_DIR = 80
# Tuned for throw-away test data: durability off, room for many Airflow connections.
_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "300",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
}


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries or a user to run them are missing."""


def find_bindir() -> Path:
    """The directory holding ``initdb``/``pg_ctl``: the newest Debian one by default."""
    override = os.environ.get("AIRFLOW_GATEWAY_TEST_PG_BINDIR")
    candidates = [Path(override)] if override else []
    if not override:
        found = Path("/usr/lib/postgresql").glob("*/bin")
        candidates = sorted(found, key=lambda p: _version_key(p.parent.name), reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin: "
        "run scripts/bootstrap (scripts/bootstrap.d/40-postgresql.sh installs Debian's postgresql)"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("AIRFLOW_GATEWAY_TEST_PG_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root and there is no user {name!r} to run PostgreSQL as "
            "(Debian's postgresql package creates 'postgres'; or set AIRFLOW_GATEWAY_TEST_PG_USER)"
        ) from None


def _traversable(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` can reach ``path`` (search permission on every ancestor)."""
    groups = {user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)}
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """A running private cluster; use as a context manager or call ``stop()``."""

    def __init__(self, bindir: Path, root: Path, user: pwd.struct_passwd | None) -> None:
        self.bindir = bindir
        self.root = root
        self.data_dir = root / "data"
        self.log_file = root / "postgresql.log"
        self.socket_dir = root / "sock"
        self.user = user
        self.port = 0
        self.superuser = SUPERUSER
        self.dbname = DEFAULT_DB
        self._running = False

    # -- addresses ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        """SQLAlchemy-style URL of the default database (TCP on 127.0.0.1)."""
        return self.url_for(self.dbname)

    @property
    def dsn(self) -> str:
        """libpq keyword/value form of the default database (TCP on 127.0.0.1)."""
        return f"host=127.0.0.1 port={self.port} user={self.superuser} dbname={self.dbname}"

    def url_for(self, dbname: str, driver: str = "postgresql") -> str:
        """URL of ``dbname``; ``driver`` e.g. ``postgresql+psycopg2`` for SQLAlchemy."""
        return f"{driver}://{quote(self.superuser)}@127.0.0.1:{self.port}/{quote(dbname)}"

    # -- lifecycle ---------------------------------------------------------------------
    def _run(self, *argv: str, timeout: float = 120.0, as_server: bool = True) -> str:
        """Run a PostgreSQL program (as the server user for server-side ones)."""
        user = self.user if as_server else None
        done = subprocess.run(
            list(argv),
            cwd=self.root,
            env={"PATH": os.defpath, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC"},
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-4000:] if self.log_file.exists() else ""
            output = f"{done.stdout}\n{done.stderr}\n{log}"
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{output}")
        return done.stdout

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60", *args)

    def _initdb(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.superuser,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-instructions",
        )
        self.socket_dir.mkdir(mode=0o700)
        if self.user:
            os.chown(self.socket_dir, self.user.pw_uid, self.user.pw_gid)

    def _configure(self, port: int) -> None:
        # A conf file of our own, included last, so a retry on another port overrides cleanly.
        settings = {**_SETTINGS, "port": str(port), "unix_socket_directories": f"'{self.socket_dir}'"}
        text = "".join(f"{key} = {value}\n" for key, value in settings.items())
        (self.data_dir / "gateway-test.conf").write_text(text)
        conf = self.data_dir / "postgresql.conf"
        if "gateway-test.conf" not in conf.read_text():
            with conf.open("a") as handle:
                handle.write("include = 'gateway-test.conf'\n")

    def start(self) -> PostgresServer:
        """initdb, then start on a free port (retried: a port can be taken meanwhile)."""
        self._initdb()
        last: Exception | None = None
        for _ in range(3):
            port = free_port()
            self._configure(port)
            try:
                self._pg_ctl("-l", str(self.log_file), "start")
            except RuntimeError as exc:
                last = exc
                continue
            self.port = port
            self._running = True
            self._create(self.dbname)
            return self
        raise RuntimeError(f"PostgreSQL did not start on a free port: {last}")

    def restart(self, down_s: float = 0.0) -> None:
        """Stop (fast shutdown: clients are disconnected), stay down ``down_s``, start again."""
        self._pg_ctl("-m", "fast", "stop")
        time.sleep(down_s)
        self._pg_ctl("-l", str(self.log_file), "start")

    def psql(self, sql: str, dbname: str | None = None) -> str:
        """Run ``sql`` through ``psql`` over the private socket; return its unaligned output."""
        return self._run(
            str(self.bindir / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            self.superuser,
            "-d",
            dbname or self.dbname,
            "-c",
            sql,
            as_server=False,
        )

    def _create(self, name: str) -> None:
        self._run(
            str(self.bindir / "createdb"),
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            self.superuser,
            name,
            as_server=False,
        )

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its URL."""
        self._create(name)
        return self.url_for(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove the cluster directory; idempotent."""
        if self._running:
            self._running = False
            try:
                self._pg_ctl("-m", "fast", "stop")
            except RuntimeError:
                # Remove the files anyway: a postmaster whose lock file is gone shuts itself down.
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _cluster_root(base_dir: Path, user: pwd.struct_passwd | None) -> Path:
    base_dir.mkdir(parents=True, exist_ok=True)
    parent = base_dir
    if user is not None and not _traversable(base_dir.resolve(), user):
        parent = Path(tempfile.gettempdir())
    root = Path(tempfile.mkdtemp(prefix="pg-", dir=parent))
    if len(str(root / "sock")) > _MAX_SOCKET_DIR:
        shutil.rmtree(root)
        root = Path(tempfile.mkdtemp(prefix="pg-", dir=tempfile.gettempdir()))
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    return root


def start_postgres(base_dir: Path) -> PostgresServer:
    """Start a private PostgreSQL cluster (a directory under ``base_dir`` where possible)."""
    bindir = find_bindir()
    user = _server_user()
    server = PostgresServer(bindir, _cluster_root(base_dir, user), user)
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise
