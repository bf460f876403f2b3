"""A private Docker engine for the image tests, and the locally made base images they build on.

No registry is reachable where the tests run, so nothing is pulled:

* ``start_engine()`` runs Debian's ``dockerd`` with no bridge network (``--bridge=none
  --iptables=false --ip-masq=false``) on a private socket, data root and exec root, under
  a lock so two test sessions never share one data root. Builds and containers use
  ``--network=host`` and talk on 127.0.0.1. The data root persists between runs, so the
  base images below are built once per content, not per run, where the disk survives.
* ``debian_base()``: ``debootstrap --variant=minbase bookworm`` from the Debian mirror apt
  is configured with, imported with ``docker import``; tagged by a hash of its inputs.
* ``airflow_standin()``: tests/docker/airflow-standin.Dockerfile on that base (Python and
  Airflow laid out like the official image); tagged by a hash of its inputs.
* ``postgres_standin()``, ``redis_standin()``: Debian's PostgreSQL and redis-server on that
  base, standing in for the official ``postgres`` and ``redis`` images in deploy/compose.yaml
  (tests/e2e/test_compose_stack.py); tagged by a hash of their inputs.
* ``build_images()``: the engine's base images and the gateway image of this checkout, built
  once per test session (the ``docker_images`` fixture in tests/e2e/conftest.py).

Anything missing (not root, no ``dockerd``/``debootstrap``, an engine that does not start)
raises :class:`DockerUnavailable` with the exact reason; the tests skip with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DOCKER_DIR = ROOT / "tests" / "docker"
STANDIN_DOCKERFILE = DOCKER_DIR / "airflow-standin.Dockerfile"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
DATA_ROOT = Path(os.environ.get("AIRFLOW_GATEWAY_TEST_DOCKER_ROOT", "/var/lib/airflow-gateway-test-docker"))
RUN_ROOT = Path("/run/airflow-gateway-test-docker")
SUITE = "bookworm"
AIRFLOW_VERSION = "3.3.2"


class DockerUnavailable(RuntimeError):
    """No Docker engine can run here; the message says exactly why."""


@dataclass
class Images:
    """What ``build_images()`` made: the running engine, image tags and build seconds (0: cached)."""

    engine: Engine
    work: Path
    debian: str
    airflow: str
    gateway: str
    seconds: dict[str, float]


@dataclass
class Engine:
    """A running engine on a private socket; ``docker(...)`` runs the client against it."""

    host: str
    log: Path
    pid: int | None  # None: an engine already running on the socket (not ours to stop)

    def env(self) -> dict[str, str]:
        # The classic builder: Debian's engine has no BuildKit/buildx.
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def docker(
        self, *args: str, timeout: float = 120.0, check: bool = True, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(
            [tool("docker"), *args],
            env=self.env(),
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout.decode(errors='replace')[-4000:]}\n{done.stderr.decode(errors='replace')[-4000:]}"
            )
        return done

    def has_image(self, tag: str) -> bool:
        return self.docker("image", "inspect", tag, check=False).returncode == 0

    def build(self, context: Path, tag: str, *, dockerfile: Path | None = None, **build_args: str) -> float:
        """``docker build --network=host`` (classic builder); returns the seconds it took."""
        argv = ["build", "--network=host", "--pull=false", "-t", tag]
        for name, value in build_args.items():
            argv += ["--build-arg", f"{name}={value}"]
        if dockerfile is not None:
            argv += ["-f", str(dockerfile)]
        started = time.monotonic()
        self.docker(*argv, str(context), timeout=1500)
        return time.monotonic() - started


def tool(name: str) -> str:
    """Absolute path of a program, or :class:`DockerUnavailable` naming what installs it."""
    path = shutil.which(name)
    if path is None:
        raise DockerUnavailable(
            f"{name} is not installed (scripts/bootstrap.d/50-docker.sh installs docker.io and debootstrap)"
        )
    return path


def _missing_reason() -> str | None:
    if os.geteuid() != 0:
        return "the Docker engine tests need root (dockerd, debootstrap)"
    for name in ("dockerd", "docker", "debootstrap", "tar"):
        try:
            tool(name)
        except DockerUnavailable as exc:
            return str(exc)
    return None


@contextmanager
def start_engine(deadline_s: float = 90.0) -> Iterator[Engine]:
    """Start (or reuse) the private engine for the duration of the block; stop what we started."""
    reason = _missing_reason()
    if reason:
        raise DockerUnavailable(reason)
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    RUN_ROOT.mkdir(parents=True, exist_ok=True)
    socket_path = RUN_ROOT / "docker.sock"
    host = f"unix://{socket_path}"
    with (DATA_ROOT.parent / f"{DATA_ROOT.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one session per data root at a time
        log = RUN_ROOT / "dockerd.log"
        probe = Engine(host=host, log=log, pid=None)
        if socket_path.exists() and probe.docker("version", check=False, timeout=20).returncode == 0:
            yield probe  # left over from a session that was killed; reuse, leave running
            return
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    tool("dockerd"), "--bridge=none", "--iptables=false", "--ip-masq=false",
                    "--ip6tables=false",
                    f"--host={host}", f"--data-root={DATA_ROOT}", f"--exec-root={RUN_ROOT / 'exec'}",
                    f"--pidfile={RUN_ROOT / 'dockerd.pid'}",
                ],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        engine = Engine(host=host, log=log, pid=proc.pid)
        try:
            started = time.monotonic()
            while engine.docker("version", check=False, timeout=20).returncode != 0:
                if proc.poll() is not None or time.monotonic() - started > deadline_s:
                    tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                    raise DockerUnavailable("dockerd did not start: " + " | ".join(tail))
                time.sleep(0.5)
            yield engine
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 ``*.sources`` or ``sources.list``)."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for stanza in path.read_text().split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.MULTILINE)
            if uris and suites and SUITE in suites.group(1).split():
                return uris.group(1)
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]:
        if path.is_file():
            match = re.search(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", path.read_text(), re.MULTILINE)
            if match:
                return match.group(1)
    return "http://deb.debian.org/debian"


def _digest(*parts: str | bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\0")
    return sha.hexdigest()[:16]


def debian_base(engine: Engine, work: Path) -> tuple[str, float]:
    """The minbase bookworm image (tag, seconds spent making it: 0 when cached)."""
    version = subprocess.run(
        [tool("dpkg-query"), "-W", "-f=${Version}", "debootstrap"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    mirror = debian_mirror()
    tag = f"airflow-gateway-test/debian:{SUITE}-minbase-{_digest(SUITE, 'minbase', mirror, version)}"
    if engine.has_image(tag):
        return tag, 0.0
    started = time.monotonic()
    rootfs = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=work))
    try:
        done = subprocess.run(
            [tool("debootstrap"), "--variant=minbase", SUITE, str(rootfs), mirror],
            capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(
                f"debootstrap failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        tar = subprocess.Popen([tool("tar"), "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [tool("docker"), "import", "-", tag],
            env=engine.env(),
            stdin=tar.stdout,
            capture_output=True,
            timeout=600,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait(timeout=60)
        assert imported.returncode == 0 and tar.returncode == 0, imported.stderr.decode(errors="replace")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return tag, time.monotonic() - started


def airflow_standin(engine: Engine, debian_tag: str, work: Path) -> tuple[str, float]:
    """The stand-in Airflow image (tag, seconds spent building it: 0 when cached)."""
    constraints = ROOT / "constraints" / f"airflow-{AIRFLOW_VERSION}.txt"
    drivers = ROOT / "constraints" / "airflow-postgres.txt"
    entrypoint = DOCKER_DIR / "airflow-entrypoint.sh"
    tag = "airflow-gateway-test/airflow-standin:" + _digest(
        debian_tag,
        STANDIN_DOCKERFILE.read_bytes(),
        constraints.read_bytes(),
        drivers.read_bytes(),
        entrypoint.read_bytes(),
        AIRFLOW_VERSION,
    )
    if engine.has_image(tag):
        return tag, 0.0
    context = Path(tempfile.mkdtemp(prefix="standin-", dir=work))
    (context / "constraints").mkdir()
    shutil.copy(constraints, context / "constraints" / constraints.name)
    shutil.copy(drivers, context / "airflow-postgres.txt")
    shutil.copy(entrypoint, context / "airflow-entrypoint.sh")
    shutil.copy(HOST_CA, context / "build-ca.crt")
    seconds = engine.build(
        context, tag, dockerfile=STANDIN_DOCKERFILE, DEBIAN_BASE=debian_tag, AIRFLOW_VERSION=AIRFLOW_VERSION
    )
    return tag, seconds


def _small_standin(
    engine: Engine, debian_tag: str, work: Path, name: str, files: tuple[str, ...] = ()
) -> tuple[str, float]:
    """tests/docker/<name>-standin.Dockerfile on the Debian base, with ``files`` from tests/docker
    as its context (tag, seconds spent building it: 0 when cached)."""
    dockerfile = DOCKER_DIR / f"{name}-standin.Dockerfile"
    tag = f"airflow-gateway-test/{name}-standin:" + _digest(
        debian_tag, dockerfile.read_bytes(), *((DOCKER_DIR / f).read_bytes() for f in files)
    )
    if engine.has_image(tag):
        return tag, 0.0
    context = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
    for file in files:
        shutil.copy(DOCKER_DIR / file, context / file)
    return tag, engine.build(context, tag, dockerfile=dockerfile, DEBIAN_BASE=debian_tag)


def postgres_standin(engine: Engine, debian_tag: str, work: Path) -> tuple[str, float]:
    """Debian's PostgreSQL 15 behaving like the official postgres image (tests/docker/postgres-standin.Dockerfile)."""
    return _small_standin(engine, debian_tag, work, "postgres", ("postgres-entrypoint.sh",))


def redis_standin(engine: Engine, debian_tag: str, work: Path) -> tuple[str, float]:
    """Debian's redis-server behaving like the official redis image (tests/docker/redis-standin.Dockerfile)."""
    return _small_standin(engine, debian_tag, work, "redis")


def gateway_context(work: Path) -> Path:
    """The build context ``docker build .`` would send (per .dockerignore) plus the host's CA file."""
    context = work / "gateway-context"
    (context / "docker").mkdir(parents=True)
    (context / "constraints").mkdir()
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, context / name)
    shutil.copy(ROOT / "constraints" / "gateway.txt", context / "constraints" / "gateway.txt")
    shutil.copytree(
        ROOT / "gateway", context / "gateway", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    shutil.copy(ROOT / "docker" / "install-gateway.sh", context / "docker" / "install-gateway.sh")
    shutil.copy(HOST_CA, context / "docker" / "build-ca.crt")
    return context


GATEWAY_IMAGE = "airflow-gateway-test/gateway:latest"


def build_images(engine: Engine, work: Path) -> Images:
    """The Debian base and the Airflow stand-in (cached by content) and the gateway image of this
    checkout on that stand-in (built every time: the classic builder's layer cache keeps it quick)."""
    seconds: dict[str, float] = {}
    debian, seconds["debian_base"] = debian_base(engine, work)
    airflow, seconds["airflow_standin"] = airflow_standin(engine, debian, work)
    seconds["gateway_image"] = engine.build(gateway_context(work), GATEWAY_IMAGE, BASE_IMAGE=airflow)
    return Images(engine, work, debian, airflow, GATEWAY_IMAGE, seconds)
