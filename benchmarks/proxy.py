"""Proxy benchmark: throughput and latency on loopback, with ratios against baselines measured
in the same run.  Not a test: it prints figures; targets are in docs/proxy.md.

    eval "$(scripts/bootstrap)"
    .venv/bin/python benchmarks/proxy.py [--seconds 9] [--rounds 9] [--skip-airflow] [--no-nginx]

Compared:
  (a) Airflow 3's api-server directly
  (b) the gateway (gunicorn.conf.py; plugin token, the example policies, the audit event and
      metrics all on) in front of it, and in front of a fast static upstream
  (c) werkzeug's ProxyMiddleware under gunicorn (stock gthread, same workers and threads) in
      front of the same fast static upstream
  (n) nginx in front of the same api-server, when nginx is installed (never installed here):
      a reference for what a C event-loop proxy costs Airflow on the same machine
  (h) with ``--compare-h11``: a second gateway whose upstream client is h11
      (``benchmarks/h11_client.py``), interleaved with (b) against the static upstream
plus 1 MiB downloads/uploads, and a 1 GiB download and upload through the gateway with the
growth of each gunicorn worker's RSS.  Extra gateway settings (e.g. to switch on audit,
policy or metrics layers) go in with ``--gateway-setting SECTION__KEY=VALUE``.
Every request goes to 127.0.0.1; every loop is bounded in time.

The load comes from wrk (Debian's package, installed when missing and possible): on 2 shared
cores a Python load generator spends more CPU per request than the servers it measures, and
squeezes every ratio towards 1.  ``--load-generator python`` keeps the built-in one.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MIB = 1024 * 1024
_BLOCK = b"\xab" * MIB

if TYPE_CHECKING:
    from tests.support.airflow import AirflowHome
    from tests.support.servers import GatewayServer


# --- the fast static upstream (its own process, asyncio, keep-alive) ---


class _Static(asyncio.Protocol):
    """GET /small (2 bytes), GET /big (1 MiB), GET /huge/<n> (n bytes, flow-controlled),
    POST anything (body read and discarded, 2-byte answer)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = b""
        self.body_left = 0
        self.pending: str | None = None
        self.huge_left = 0
        self.paused = False

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._pump()

    def _pump(self) -> None:
        while self.huge_left and not self.paused:
            piece = _BLOCK if self.huge_left >= MIB else _BLOCK[: self.huge_left]
            self.huge_left -= len(piece)
            self.t.write(piece)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.body_left:
                used = min(self.body_left, len(self.buf))
                self.body_left -= used
                self.buf = self.buf[used:]
                if self.body_left:
                    return
                self._respond(self.pending or "/")
                continue
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            self.buf = rest
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1].decode()
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                self.body_left, self.pending = length, path
                continue
            self._respond(path)

    def _respond(self, path: str) -> None:
        if "/huge/" in path:
            self.huge_left = int(path.rsplit("/", 1)[1])
            self.t.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
                % self.huge_left
            )
            self._pump()
            return
        body = _BLOCK if path.endswith("/big") else b"ok"
        self.t.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
        )


def serve_static(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Static, "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- the load generator: processes x threads, keep-alive http.client connections ---


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    # wrk reports percentiles, not samples: per round, {percentile: ms}
    rounds_pct: list[dict[float, float]] = field(default_factory=list)
    # throughput of each interleaved round, for per-round ratios
    rounds_rps: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        if self.rounds_pct:
            # Across rounds: the median round's p50, the worst round's p99.
            values = sorted(r[p] for r in self.rounds_pct)
            return values[len(values) // 2] if p <= 0.5 else values[-1]
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(len(data) * p))] if data else float("nan")


def _worker(args: tuple[int, str, str, int, int, float, dict[str, str]]) -> tuple[int, int, list[float]]:
    port, method, path, body_size, threads, seconds, headers = args
    body = b"x" * body_size if body_size else None
    lat: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    deadline = time.monotonic() + seconds

    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                while resp.read(MIB):
                    pass
                if resp.will_close:
                    conn.close()
                if resp.status >= 400:
                    errors[i] += 1
                    continue
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                continue
            lat[i].append((time.perf_counter() - started) * 1000)
        conn.close()

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(seconds + 60)
    return sum(len(x) for x in lat), sum(errors), [v for x in lat for v in x]


def load(
    port: int,
    path: str,
    *,
    seconds: float,
    concurrency: int,
    method: str = "GET",
    body_size: int = 0,
    headers: dict[str, str] | None = None,
) -> Result:
    """Bounded load: ``concurrency`` keep-alive connections over up to 2 processes, for ``seconds``."""
    procs = 2 if concurrency >= 2 else 1
    per = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    jobs = [(port, method, path, body_size, n, seconds, headers or {}) for n in per]
    started = time.monotonic()
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.map(_worker, jobs)
    elapsed = max(seconds, time.monotonic() - started - 0.05)
    return Result(
        sum(p[0] for p in parts), sum(p[1] for p in parts), elapsed, [v for p in parts for v in p[2]]
    )


# --- wrk: the same loads from a C load generator (preferred) ---

_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def ensure_wrk() -> str | None:
    """wrk's path, installing Debian's package when possible (as scripts/bootstrap.d does)."""
    found, apt_get = shutil.which("wrk"), shutil.which("apt-get")
    if found or not apt_get or os.geteuid() != 0:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        [apt_get, "install", "-y", "-qq", "--no-install-recommends", "wrk"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600, check=False,
    )  # fmt: skip
    return shutil.which("wrk")


def wrk_load(
    wrk: str,
    port: int,
    path: str,
    *,
    seconds: float,
    concurrency: int,
    method: str = "GET",
    body_size: int = 0,
    headers: dict[str, str] | None = None,
    cpus: set[int] | None = None,
) -> Result:
    """One bounded wrk run: ``concurrency`` keep-alive connections over up to 2 threads
    (on ``cpus`` only, when given)."""
    argv = [wrk, f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    with tempfile.TemporaryDirectory(prefix="gw-wrk-") as tmp:
        if method != "GET" or body_size:
            script = Path(tmp) / "request.lua"
            script.write_text(
                f'wrk.method = "{method}"\nwrk.body = string.rep("x", {body_size})\n'
                'wrk.headers["Content-Type"] = "application/octet-stream"\n'
            )
            argv += ["-s", str(script)]
        argv.append(f"http://127.0.0.1:{port}{path}")
        if cpus:
            argv = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *argv]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s)", out)
    if done is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    pct = {}
    for label, key in (("50%", 0.5), ("99%", 0.99)):
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)", out, re.M)
        pct[key] = float(m.group(1)) * _WRK_UNITS[m.group(2)] if m else float("nan")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    elapsed = float(done.group(2)) * _WRK_UNITS[done.group(3)] / 1000
    return Result(int(done.group(1)), errors, elapsed, [], [pct])


def interleaved(
    variants: dict[str, dict[str, object]],
    *,
    seconds: float,
    rounds: int,
    wrk: str | None = None,
    cpus: set[int] | None = None,
) -> dict[str, Result]:
    """Run each variant for ``seconds / rounds`` in turn, ``rounds`` times, and merge.

    On a shared machine the background load drifts; alternating in short rounds gives
    every variant the same mix of quiet and busy moments, so the ratios stay fair.
    """
    merged = {name: Result(0, 0, 0.0, []) for name in variants}
    for _ in range(rounds):
        for name, kwargs in variants.items():
            if wrk:
                r = wrk_load(wrk, seconds=seconds / rounds, cpus=cpus, **kwargs)  # type: ignore[arg-type]
            else:
                r = load(seconds=seconds / rounds, **kwargs)  # type: ignore[arg-type]
            m = merged[name]
            m.requests, m.errors, m.seconds = (
                m.requests + r.requests,
                m.errors + r.errors,
                m.seconds + r.seconds,
            )
            m.latencies_ms.extend(r.latencies_ms)
            m.rounds_pct.extend(r.rounds_pct)
            m.rounds_rps.append(r.rps)
    return merged


def ratio_interval(
    top: Result, bottom: Result, level: float = 0.9, resamples: int = 4000
) -> tuple[float, float]:
    """A bootstrap confidence interval of ``top.rps / bottom.rps`` over paired rounds.

    Rounds are resampled in pairs (round i of both variants), because neighbouring rounds
    share the machine's background load; the statistic is the ratio of summed throughputs,
    like the run's overall ratio.  Seeded, so the same rounds give the same interval.
    """
    pairs = list(zip(top.rounds_rps, bottom.rounds_rps, strict=True))
    if len(pairs) < 2:
        return float("nan"), float("nan")
    rng = random.Random(0)  # resampling for statistics, not a secret
    stats = []
    for _ in range(resamples):
        sample = rng.choices(pairs, k=len(pairs))
        below = sum(b for _, b in sample)
        stats.append(sum(t for t, _ in sample) / below if below else float("nan"))
    stats.sort()
    tail = (1 - level) / 2
    return stats[int(tail * resamples)], stats[min(resamples - 1, int((1 - tail) * resamples))]


def round_ratios(top: Result, bottom: Result) -> str:
    """``top / bottom`` round by round: neighbouring rounds share the machine's background
    load, so the spread of these ratios, and the interval of the overall ratio, show how far
    one run's overall ratio can be trusted."""
    ratios = sorted(t / b for t, b in zip(top.rounds_rps, bottom.rounds_rps, strict=True) if b)
    if not ratios:
        return "n/a"
    low, high = ratio_interval(top, bottom)
    return (
        f"median {ratios[len(ratios) // 2]:.2f} (rounds {ratios[0]:.2f}-{ratios[-1]:.2f}),"
        f" overall 90 % CI {low:.2f}-{high:.2f}"
    )


# --- servers ---


def _wait(port: int, path: str, proc: subprocess.Popen[bytes], log: Path, deadline_s: float = 240) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on {port} did not start: {log.read_text()[-3000:]}")


def _start(
    argv: list[str],
    log: Path,
    port: int,
    ready_path: str,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """A server in its own session (stopped as a group), output to ``log``, once it answers."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _wait(port, ready_path, proc, log)
    return proc


def start_h11_gateway(
    airflow: AirflowHome,
    tmp: Path,
    settings: dict[str, str],
    env: dict[str, str],
    static_port: int,
    workers: int,
) -> GatewayServer:
    """A second gateway in front of the static upstream whose upstream connections are
    ``benchmarks/h11_client.py``'s (a ``sitecustomize`` on its ``PYTHONPATH`` installs them)."""
    from tests.support.servers import start_gateway

    site = tmp / "h11-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import sys\nfrom benchmarks.h11_client import install\n\ninstall()\n"
        "print('upstream client: h11', file=sys.stderr, flush=True)\n"
    )
    server = start_gateway(
        airflow,
        tmp,
        settings={**settings, "PROXY__UPSTREAM": f"http://127.0.0.1:{static_port}"},
        extra_env={**env, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"},
        workers=workers,
    )
    if "upstream client: h11" not in server.log.read_text():
        server.stop()
        raise SystemExit("the h11 gateway did not load benchmarks/h11_client.py")
    return server


def start_werkzeug_proxy(
    target: str, tmp: Path, workers: int, threads: int, worker_class: str = "gthread"
) -> tuple[subprocess.Popen[bytes], int]:
    from tests.support.servers import free_port

    port = free_port()
    log = tmp / "werkzeug-proxy.log"
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-k",
        worker_class,
        "-w",
        str(workers),
        "--threads",
        str(threads),
        "-b",
        f"127.0.0.1:{port}",
        "--access-logfile",
        "-",
        f"benchmarks.werkzeug_proxy:create({target!r})",
    ]
    proc = _start(argv, log, port, "/p/small", cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return proc, port


def airflow_token(port: int) -> str:
    """A JWT from Airflow 3's ``/auth/token`` for the test admin (simple auth manager)."""
    from tests.support.airflow_servers import PASSWORD, USERNAME

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"username": USERNAME, "password": PASSWORD})
    conn.request("POST", "/auth/token", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status not in (200, 201):
        raise SystemExit(f"Airflow refused the benchmark's token request: {resp.status} {data[:300]!r}")
    return str(json.loads(data)["access_token"])


def find_nginx() -> str | None:
    """nginx's path when installed (a reference point only: never installed by this script,
    since Debian's package starts a system-wide service where an init system runs)."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def start_nginx_proxy(
    nginx: str, upstream_port: int, tmp: Path, workers: int
) -> tuple[subprocess.Popen[bytes], int]:
    """nginx reverse-proxying to ``upstream_port`` with pooled keep-alive connections, the
    headers the gateway adds, and an access line per request: what a C event-loop proxy
    costs Airflow on this machine."""
    from tests.support.servers import free_port

    port, home = free_port(), tmp / "nginx"
    home.mkdir(exist_ok=True)
    conf = home / "nginx.conf"
    conf.write_text(
        f"""daemon off;
worker_processes {workers};
pid {home}/nginx.pid;
error_log {home}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log {home}/access.log;
  client_body_temp_path {home}/body;
  proxy_temp_path {home}/proxy;
  upstream airflow {{ server 127.0.0.1:{upstream_port}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://airflow;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Request-ID $request_id;
    }}
  }}
}}
"""
    )
    argv = [nginx, "-e", str(home / "error.log"), "-p", str(home), "-c", str(conf)]
    return _start(argv, home / "stdout.log", port, "/api/v2/version"), port


def worker_rss_kb(master_pid: int) -> dict[int, int]:
    """VmRSS of each direct child (gunicorn worker) of ``master_pid``."""
    out: dict[int, int] = {}
    try:
        tasks = list(Path(f"/proc/{master_pid}/task").iterdir())
    except FileNotFoundError:
        return out
    for task in tasks:
        for child in (task / "children").read_text().split():
            try:
                for line in Path(f"/proc/{child}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out[int(child)] = int(line.split()[1])
            except FileNotFoundError:
                pass
    return out


def _tree_tasks(pid: int) -> Iterator[tuple[int, Path]]:
    """``(process id, /proc task dir)`` for every thread of ``pid`` and of its descendants."""
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            for task in list(Path(f"/proc/{current}/task").iterdir()):
                yield current, task
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:
            continue


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its descendants (from /proc)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for process in {p for p, _ in _tree_tasks(pid)}:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def pin_tree(pid: int, cpus: set[int]) -> None:
    """Move every thread of ``pid`` and of its descendants to ``cpus`` (threads and children
    created later inherit it)."""
    for _, task in _tree_tasks(pid):
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except (ProcessLookupError, PermissionError):
            pass


def stream_gib(port: int, master_pid: int, *, upload: bool, size: int) -> tuple[float, int]:
    """Stream ``size`` bytes one way through the gateway; return (MiB/s, max worker RSS growth in KiB)."""
    before = worker_rss_kb(master_pid)
    peak = dict(before)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for pid, kb in worker_rss_kb(master_pid).items():
                peak[pid] = max(peak.get(pid, 0), kb)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    if upload:

        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(size // MIB):
                yield _BLOCK

        conn.request("POST", "/p/upload", body=chunks(), headers={"Content-Length": str(size)})
        resp = conn.getresponse()
        resp.read()
    else:
        conn.request("GET", f"/p/huge/{size}")
        resp = conn.getresponse()
        got = 0
        while chunk := resp.read(MIB):
            got += len(chunk)
        if got != size:
            raise SystemExit(f"download ended at {got} of {size} bytes")
    conn.close()
    elapsed = time.monotonic() - started
    stop.set()
    sampler.join()
    growth = max((peak[pid] - before.get(pid, peak[pid])) for pid in peak) if peak else 0
    return size / MIB / elapsed, growth


# --- the run ---


def _row(name: str, r: Result) -> str:
    return (
        f"  {name:<48} {r.rps:9.0f} req/s   p50 {r.pct(0.5):7.2f} ms   p99 {r.pct(0.99):7.2f} ms"
        f"   errors {r.errors}"
    )


def static_phase(
    args: argparse.Namespace,
    airflow: AirflowHome,
    tmp: Path,
    settings: dict[str, str],
    env: dict[str, str],
    token: dict[str, str],
    wrk: str | None,
    stops: list[object],
) -> dict[str, float]:
    """(b) against (c) in front of the fast static upstream: small answers, 1 MiB bodies and
    the 1 GiB streams; returns the figures.  Servers started here go on ``stops``."""
    from tests.support.servers import free_port, start_gateway

    secs, conc, rounds = args.seconds, args.concurrency, args.rounds
    static_port = free_port()
    static = multiprocessing.get_context("fork").Process(
        target=serve_static, args=(static_port,), daemon=True
    )
    static.start()
    gw_static = start_gateway(
        airflow,
        tmp,
        settings={**settings, "PROXY__UPSTREAM": f"http://127.0.0.1:{static_port}"},
        extra_env=env,
        workers=args.workers,
    )
    stops.append(gw_static)
    wz, wz_port = start_werkzeug_proxy(
        f"http://127.0.0.1:{static_port}", tmp, args.workers, args.threads, args.werkzeug_worker
    )
    stops.append(wz)
    gw_port = int(gw_static.url.rsplit(":", 1)[1])
    h11_gw = (
        start_h11_gateway(airflow, tmp, settings, env, static_port, args.workers)
        if args.compare_h11
        else None
    )
    if h11_gw is not None:
        stops.append(h11_gw)
    h11_port = int(h11_gw.url.rsplit(":", 1)[1]) if h11_gw is not None else 0

    print("\nfast static upstream, 2-byte answers:")
    load(gw_port, "/p/small", seconds=1, concurrency=conc, headers=token)  # warm-up
    load(wz_port, "/p/small", seconds=1, concurrency=conc)
    small_variants: dict[str, dict[str, object]] = {
        "(b) gateway -> static": dict(port=gw_port, path="/p/small", concurrency=conc, headers=token),
        "(c) werkzeug ProxyMiddleware -> static": dict(port=wz_port, path="/p/small", concurrency=conc),
        "    static upstream directly": dict(port=static_port, path="/p/small", concurrency=conc),
        "(b) gateway -> static, 1 connection": dict(
            port=gw_port, path="/p/small", concurrency=1, headers=token
        ),
        "    static directly, 1 connection": dict(port=static_port, path="/p/small", concurrency=1),
    }
    if h11_gw is not None:
        load(h11_port, "/p/small", seconds=1, concurrency=conc, headers=token)
        small_variants["(h) gateway on h11 -> static"] = dict(
            port=h11_port, path="/p/small", concurrency=conc, headers=token
        )
        small_variants["(h) gateway on h11 -> static, 1 connection"] = dict(
            port=h11_port, path="/p/small", concurrency=1, headers=token
        )
    cpu_before = tree_cpu_s(gw_static.proc.pid), tree_cpu_s(wz.pid)
    h11_cpu_before = tree_cpu_s(h11_gw.proc.pid) if h11_gw is not None else 0.0
    small = interleaved(small_variants, seconds=secs, rounds=rounds, wrk=wrk)
    for name, r in small.items():
        print(_row(name, r))
    gw_requests = (
        small["(b) gateway -> static"].requests + small["(b) gateway -> static, 1 connection"].requests
    )
    gw_cpu_ms = (tree_cpu_s(gw_static.proc.pid) - cpu_before[0]) * 1000 / max(1, gw_requests)
    wz_cpu_ms = (
        (tree_cpu_s(wz.pid) - cpu_before[1])
        * 1000
        / max(1, small["(c) werkzeug ProxyMiddleware -> static"].requests)
    )
    print(
        f"  CPU per request: gateway (gunicorn + app) {gw_cpu_ms:.3f} ms,"
        f" werkzeug under gunicorn {wz_cpu_ms:.3f} ms"
    )
    b_small, c_small = small["(b) gateway -> static"], small["(c) werkzeug ProxyMiddleware -> static"]
    figures: dict[str, float] = {}
    if h11_gw is not None:
        h_small, h1 = (
            small["(h) gateway on h11 -> static"],
            small["(h) gateway on h11 -> static, 1 connection"],
        )
        h11_cpu_ms = (
            (tree_cpu_s(h11_gw.proc.pid) - h11_cpu_before) * 1000 / max(1, h_small.requests + h1.requests)
        )
        print(f"  CPU per request: gateway on h11 {h11_cpu_ms:.3f} ms")
        print(f"  per-round (h)/(b): {round_ratios(h_small, b_small)}")
        figures.update(
            h_vs_b_static_rps=h_small.rps / b_small.rps,
            h_cpu_ms_per_request=h11_cpu_ms,
            b_cpu_ms_per_request=gw_cpu_ms,
            h_p50_ms_1conn=h1.pct(0.5),
            b_p50_ms_1conn=small["(b) gateway -> static, 1 connection"].pct(0.5),
            h_p99_ms_1conn=h1.pct(0.99),
            b_p99_ms_1conn=small["(b) gateway -> static, 1 connection"].pct(0.99),
            h_p50_ms=h_small.pct(0.5),
            b_p50_ms=b_small.pct(0.5),
            h_p99_ms=h_small.pct(0.99),
            b_p99_ms=b_small.pct(0.99),
            h_rps=h_small.rps,
            b_rps=b_small.rps,
        )
    b1, d1 = small["(b) gateway -> static, 1 connection"], small["    static directly, 1 connection"]

    print("\n1 MiB bodies (fast static upstream), 4 connections:")
    big_h11: dict[str, dict[str, object]] = {}
    if h11_gw is not None:
        big_h11 = {
            "(h) gateway on h11, 1 MiB download": dict(
                port=h11_port, path="/p/big", concurrency=4, headers=token
            ),
            "(h) gateway on h11, 1 MiB upload": dict(
                port=h11_port, path="/p/upload", concurrency=4, method="POST", body_size=MIB, headers=token
            ),
        }
    big = interleaved(
        {
            **big_h11,
            "(b) gateway, 1 MiB download": dict(port=gw_port, path="/p/big", concurrency=4, headers=token),
            "(c) werkzeug, 1 MiB download": dict(port=wz_port, path="/p/big", concurrency=4),
            "(b) gateway, 1 MiB upload": dict(
                port=gw_port,
                path="/p/upload",
                concurrency=4,
                method="POST",
                body_size=MIB,
                headers=token,
            ),
            "(c) werkzeug, 1 MiB upload": dict(
                port=wz_port, path="/p/upload", concurrency=4, method="POST", body_size=MIB
            ),
        },
        seconds=secs,
        rounds=rounds,
        wrk=wrk,
    )
    for name, r in big.items():
        print(_row(name, r))
    b_big, c_big = big["(b) gateway, 1 MiB download"], big["(c) werkzeug, 1 MiB download"]
    b_up, c_up = big["(b) gateway, 1 MiB upload"], big["(c) werkzeug, 1 MiB upload"]
    if h11_gw is not None:
        figures["h_vs_b_1mib_download_rps"] = big["(h) gateway on h11, 1 MiB download"].rps / b_big.rps
        figures["h_vs_b_1mib_upload_rps"] = big["(h) gateway on h11, 1 MiB upload"].rps / b_up.rps

    size = max(1, int(args.gib * 1024)) * MIB
    down_rate, down_growth = stream_gib(gw_port, gw_static.proc.pid, upload=False, size=size)
    up_rate, up_growth = stream_gib(gw_port, gw_static.proc.pid, upload=True, size=size)
    print(
        f"\n{args.gib:g} GiB through the gateway: download {down_rate:.0f} MiB/s, worker RSS growth"
        f" {down_growth / 1024:.1f} MiB; upload {up_rate:.0f} MiB/s,"
        f" worker RSS growth {up_growth / 1024:.1f} MiB"
    )

    return {
        **figures,
        "b_vs_c_static_rps": b_small.rps / c_small.rps,
        "b_vs_c_1mib_download_rps": b_big.rps / c_big.rps,
        "b_vs_c_1mib_upload_rps": b_up.rps / c_up.rps,
        "added_p50_ms_static": b1.pct(0.5) - d1.pct(0.5),
        "gib_download_rss_growth_mib": down_growth / 1024,
        "gib_upload_rss_growth_mib": up_growth / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=9.0, help="duration of each load phase")
    parser.add_argument("--concurrency", type=int, default=8)
    # 1-second rounds: on a shared VM the same variant drifts from minute to minute; many
    # short alternations average that out (docs/proxy.md, "Noise").
    parser.add_argument("--rounds", type=int, default=9, help="alternations of the compared variants")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--skip-airflow", action="store_true", help="only the static-upstream comparisons")
    parser.add_argument("--skip-static", action="store_true", help="only the comparisons in front of Airflow")
    parser.add_argument(
        "--setups",
        choices=("all", "target"),
        default="all",
        help="in front of Airflow: every CPU placement, or only the pinned one the target is checked on",
    )
    parser.add_argument(
        "--werkzeug-worker",
        default="gthread",
        help="gunicorn worker class of (c); the gateway's is gateway.http.worker.KeepAliveThreadWorker",
    )
    parser.add_argument(
        "--no-nginx",
        action="store_true",
        help="leave out the (n) nginx reference even when nginx is installed",
    )
    parser.add_argument(
        "--compare-h11",
        action="store_true",
        help="against the static upstream, also a gateway whose upstream client is benchmarks/h11_client.py",
    )
    parser.add_argument("--gib", type=float, default=1.0, help="size of the big streams, in GiB")
    parser.add_argument(
        "--load-generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk (C, installed from Debian if missing) or the built-in Python one; auto prefers wrk",
    )
    parser.add_argument("--gateway-setting", action="append", default=[], metavar="SECTION__KEY=VALUE")
    args = parser.parse_args()

    from tests.support.airflow import make_airflow_home
    from tests.support.servers import start_gateway

    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    # Every layer on, as in a deployment: token auth, the example policies (the proxied paths
    # go through the passthrough rule after the deny rules), the audit event, metrics.
    settings = {
        "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "bench-token",
        "POLICY__DIR": str(ROOT / "policies"),
    }
    settings.update(dict(s.split("=", 1) for s in args.gateway_setting))
    token = {"rest-api-plugin-http-token": "bench-token"}
    # No GATEWAY_ACCESS_LOG: the gateway's audit event (on, to stdout) is its access log,
    # as in production; the werkzeug baseline keeps gunicorn's access log, one line each.
    env = {"GATEWAY_THREADS": str(args.threads)}
    wrk = ensure_wrk() if args.load_generator != "python" else None
    if args.load_generator == "wrk" and wrk is None:
        raise SystemExit("wrk is not installed and could not be installed (try --load-generator python)")
    stops: list[object] = []
    secs, conc, rounds = args.seconds, args.concurrency, args.rounds
    print(
        f"loopback, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {conc} connections,"
        f" {secs:g} s per variant in {args.rounds} rounds; gunicorn {args.workers}x{args.threads}"
        f" (werkzeug on {args.werkzeug_worker});"
        f" load generator: {'wrk' if wrk else 'Python (http.client threads)'}",
        flush=True,
    )
    try:
        print("starting Airflow 3 (home, api-server) ..." if not args.skip_airflow else "", flush=True)
        airflow = make_airflow_home("3", tmp / "airflow-home")
        figures = (
            static_phase(args, airflow, tmp, settings, env, token, wrk, stops) if not args.skip_static else {}
        )

        if not args.skip_airflow:
            from tests.support.airflow_servers import start_api_server

            api = start_api_server(airflow, tmp)
            stops.append(api)
            gw_af = start_gateway(
                airflow,
                tmp,
                settings={**settings, "PROXY__UPSTREAM": api.url},
                extra_env=env,
                workers=args.workers,
            )
            stops.append(gw_af)
            af_port, gwa_port = api.port, int(gw_af.url.rsplit(":", 1)[1])
            nginx = None if args.no_nginx else find_nginx()
            ng_proc, ng_port = None, 0
            if nginx:
                ng_proc, ng_port = start_nginx_proxy(nginx, af_port, tmp, args.workers)
                stops.append(ng_proc)
            elif not args.no_nginx:
                print("(n) nginx reference left out: nginx is not installed (apt-get install nginx-light)")
            path = "/api/v2/version"
            load(af_port, path, seconds=1, concurrency=conc)  # warm-up
            load(gwa_port, path, seconds=1, concurrency=conc, headers=token)
            # A typical API call next to the cheapest one: listing DAGs with a bearer token
            # (JWT check, a database query, serialisation) costs Airflow ten times more.
            bearer = {"Authorization": f"Bearer {airflow_token(af_port)}"}
            dags_path = "/api/v2/dags?limit=10"
            cpus = sorted(os.sched_getaffinity(0))
            # What Airflow sees behind the gateway besides the client's headers: (a') prices
            # Airflow's own handling of them (uvicorn's proxy-headers middleware).
            forwarding = {
                "X-Forwarded-For": "127.0.0.1",
                "X-Forwarded-Proto": "http",
                "X-Forwarded-Host": f"127.0.0.1:{gwa_port}",
                "X-Request-ID": "0123456789abcdef0123456789abcdef",
            }
            pinning = bool(wrk) and len(cpus) >= 2
            half = set(cpus[: len(cpus) // 2])
            airflow_cpus = set(cpus) - half
            # (title, figure suffix, gateway CPUs, wrk CPUs); None: not pinned
            setups: list[tuple[str, str, set[int] | None, set[int] | None]] = [
                ("shared cores", "_shared_cores" if pinning else "", None, None)
            ]
            if pinning:
                # The api-server is one process.  On 2 shared cores the gateway's workers take
                # CPU from it and the ratio measures how the scheduler splits the cores.
                # Pinned, the api-server has the same core(s) in (a) and (b) and the gateway
                # its own, as in a deployment where each has its CPU budget.  wrk stands in
                # for remote clients: next to Airflow it costs (a) and (b) the same; next to
                # the gateway it competes with (b) only.  Both are printed; the target is
                # checked on the first.
                setups += [
                    ("pinned: gateway alone on its core(s), wrk beside Airflow", "", half, airflow_cpus),
                    ("pinned: wrk beside the gateway", "_wrk_beside_gateway", half, half),
                ]
                if args.setups == "target":
                    setups = setups[1:2]
            for title, suffix, gateway_cpus, wrk_cpus in setups:
                if gateway_cpus is not None:
                    pin_tree(api.proc.pid, airflow_cpus)
                    pin_tree(gw_af.proc.pid, gateway_cpus)
                    if ng_proc is not None:
                        pin_tree(ng_proc.pid, gateway_cpus)
                print(f"\nAirflow 3 api-server, GET {path}, {title}:")
                cpu_before = tree_cpu_s(api.proc.pid), tree_cpu_s(gw_af.proc.pid)
                variants: dict[str, dict[str, object]] = {
                    "(a) api-server directly": dict(port=af_port, path=path, concurrency=conc),
                    "(a') directly, with the gateway's X-Forwarded-*": dict(
                        port=af_port, path=path, concurrency=conc, headers=forwarding
                    ),
                    "(b) gateway -> api-server": dict(
                        port=gwa_port, path=path, concurrency=conc, headers=token
                    ),
                    "(a) api-server directly, 1 connection": dict(port=af_port, path=path, concurrency=1),
                    "(b) gateway -> api-server, 1 connection": dict(
                        port=gwa_port, path=path, concurrency=1, headers=token
                    ),
                }
                if ng_proc is not None:
                    variants["(n) nginx -> api-server (reference)"] = dict(
                        port=ng_port, path=path, concurrency=conc
                    )
                af = interleaved(
                    variants,
                    seconds=secs,
                    rounds=rounds,
                    wrk=wrk,
                    cpus=wrk_cpus,
                )
                for name, r in af.items():
                    print(_row(name, r))
                total = sum(r.requests for r in af.values())
                a_fwd = af["(a') directly, with the gateway's X-Forwarded-*"]
                via_gw = (
                    af["(b) gateway -> api-server"].requests
                    + af["(b) gateway -> api-server, 1 connection"].requests
                )
                api_cpu = (tree_cpu_s(api.proc.pid) - cpu_before[0]) * 1000 / max(1, total)
                gw_cpu = (tree_cpu_s(gw_af.proc.pid) - cpu_before[1]) * 1000 / max(1, via_gw)
                print(
                    f"  CPU per request: api-server {api_cpu:.3f} ms,"
                    f" gateway (gunicorn + app) {gw_cpu:.3f} ms"
                )
                a, b = af["(a) api-server directly"], af["(b) gateway -> api-server"]
                a1, b1a = (
                    af["(a) api-server directly, 1 connection"],
                    af["(b) gateway -> api-server, 1 connection"],
                )
                figures[f"b_vs_a_airflow_rps{suffix}"] = b.rps / a.rps
                print(f"  per-round (b)/(a): {round_ratios(b, a)}")
                (
                    figures[f"b_vs_a_airflow_rps{suffix}_ci90_low"],
                    figures[f"b_vs_a_airflow_rps{suffix}_ci90_high"],
                ) = ratio_interval(b, a)
                if ng_proc is not None:
                    n = af["(n) nginx -> api-server (reference)"]
                    print(f"  per-round (n)/(a): {round_ratios(n, a)}")
                    print(f"  per-round (b)/(n): {round_ratios(b, n)}")
                figures[f"a_fwd_vs_a_airflow_rps{suffix}"] = a_fwd.rps / a.rps
                figures[f"added_p50_ms_airflow{suffix}"] = b1a.pct(0.5) - a1.pct(0.5)
                if ng_proc is not None:
                    n = af["(n) nginx -> api-server (reference)"]
                    figures[f"n_vs_a_airflow_rps{suffix}"] = n.rps / a.rps
                    figures[f"b_vs_n_airflow_rps{suffix}"] = b.rps / n.rps
                if suffix:
                    continue
                print(f"\n  GET {dags_path} with a bearer token, {title}:")
                dag_variants: dict[str, dict[str, object]] = {
                    "(a) api-server directly": dict(
                        port=af_port, path=dags_path, concurrency=conc, headers=bearer
                    ),
                    "(b) gateway -> api-server": dict(
                        port=gwa_port, path=dags_path, concurrency=conc, headers={**bearer, **token}
                    ),
                }
                if ng_proc is not None:
                    dag_variants["(n) nginx -> api-server (reference)"] = dict(
                        port=ng_port, path=dags_path, concurrency=conc, headers=bearer
                    )
                # About 100 req/s: twice the time per variant for as many requests per round.
                dags = interleaved(dag_variants, seconds=2 * secs, rounds=rounds, wrk=wrk, cpus=wrk_cpus)
                for name, r in dags.items():
                    print(_row(name, r))
                a_dags = dags["(a) api-server directly"]
                figures["b_vs_a_airflow_dags_rps"] = dags["(b) gateway -> api-server"].rps / a_dags.rps
                print(f"  per-round (b)/(a): {round_ratios(dags['(b) gateway -> api-server'], a_dags)}")
                if ng_proc is not None:
                    print(
                        "  per-round (n)/(a):"
                        f" {round_ratios(dags['(n) nginx -> api-server (reference)'], a_dags)}"
                    )
                if ng_proc is not None:
                    figures["n_vs_a_airflow_dags_rps"] = (
                        dags["(n) nginx -> api-server (reference)"].rps / a_dags.rps
                    )

        print("\nratios and targets:")
        targets = {
            "b_vs_a_airflow_rps": (">=", 0.95),
            "b_vs_c_static_rps": (">=", 1.5),
            "added_p50_ms_airflow": ("<=", 1.0),
            "added_p50_ms_static": ("<=", 1.0),
            "gib_download_rss_growth_mib": ("<", 20.0),
            "gib_upload_rss_growth_mib": ("<", 20.0),
        }
        for key, value in figures.items():
            op, goal = targets.get(key, ("", None))
            verdict = ""
            if goal is not None:
                ok = value >= goal if op == ">=" else value <= goal if op == "<=" else value < goal
                verdict = f"target {op} {goal:g}: {'met' if ok else 'NOT met'}"
            print(f"  {key:<50} {value:8.2f}   {verdict}")
        (tmp / "figures.json").write_text(json.dumps(figures, indent=2))
        print(f"\nfigures: {tmp / 'figures.json'}")
    finally:
        from tests.support.servers import stop_group

        for item in reversed(stops):
            if isinstance(item, subprocess.Popen):
                stop_group(item)
            else:
                item.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
