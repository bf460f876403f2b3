"""CLI reads through the gateway against the same reads through Airflow's REST API (default),
or CLI calls run directly (a), through the gateway cold (b) and warm (c) (``--mode direct``).

``--mode rest`` (issue 26): one warm gateway in front of a real Airflow 3 api-server
(``PROXY__UPSTREAM``).  In interleaved rounds (the order alternates per round) each CLI read
and the matching ``/api/v2`` read go through that gateway: ``variables get`` and
``GET /api/v2/variables/K``, ``pool get`` and ``/pools/P``, ``dag_state`` and
``/dags/D/dagRuns/R``, ``list_dags`` and ``/dags``.  Per pair: p50/p95 wall time, the p50
ratio with a 90 % bootstrap interval over paired rounds, CPU per call (CLI: the gateway's
process tree, warm servers, pools and reaped children included; REST: that tree plus the
api-server's).  Then 16 pollers on ``dag_state``: calls/s and the p99 of a proxied
``GET /api/v2/version`` idle and under the load; and the memory of the warm servers and
their pools (RSS, and PSS, which divides shared pages among the processes sharing them).
Targets: CLI p50 <= 1.5x REST for variables get, pool get, dag_state, <= 2x for list_dags;
CPU per call <= 15 ms (variables get, dag_state); >= 80 dag_state calls/s; proxied p99 < 2x
idle; warm servers plus pools <= 2x today's memory (``--pool-size 0`` gives today's shape).

    eval "$(scripts/bootstrap)"; .venv/bin/python benchmarks/cli_runner.py [--rounds 15] [--pool-size N]

``--mode direct``, the comparison below (the issue-10 targets):

One run, loopback only, interleaved: every round calls each command once per variant,
so (a), (b) and (c) share the machine's background load.  Auth (a named token), the
repository's policies, the audit log and metrics are on.  For each command: p50/p95 wall
time and CPU per call, and the ratios (c)/(a); then throughput with 16 clients polling
dag_state for 30 s while a proxied request is timed, and the warm processes' memory.  The
load clients and the proxied upstream run in processes of their own, so that the probe's
process is as quiet under load as when idle (sharing its GIL with them, it would measure
its own contention, not the gateway's).

    eval "$(scripts/bootstrap)"; .venv/bin/python benchmarks/cli_runner.py [--rounds 7] [--airflow 3]

CPU per call: for (a) the CPU of the reaped ``airflow`` process; for (b) and (c) the CPU
of the whole gateway process tree (gunicorn, workers, warm processes, and every reaped
call), read from /proc before and after each call.  Targets: (c)/(a) <= 0.03
for version, variables get, pool get, connections list; <= 0.10 for the rest; CPU per
call <= 0.1x; >= 20 dag_state calls/s with 16 clients; proxied p99 < 2x idle.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.identity.tokens import hash_token  # noqa: E402
from tests.support import servers  # noqa: E402
from tests.support.airflow import AirflowHome, make_airflow_home  # noqa: E402
from tests.support.http import get  # noqa: E402
from tests.support.servers import GatewayServer, free_port, start_gateway  # noqa: E402

TOKEN = "bench-Admin-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
DAG = "gw_example"
RUN_ID = "bench_run"
RUN_DATE = "2026-10-01T00:00:00+00:00"


def cases(major: str) -> list[tuple[str, dict[str, str], list[str], float]]:
    """(api, gateway arguments, direct argv, target ratio)."""
    return [
        ("version", {}, ["version"], 0.03),
        ("variables", {"get": "bench_key"}, ["variables", "get", "bench_key"], 0.03),
        ("pool", {"get": "default_pool"}, ["pools", "get", "default_pool"], 0.03),
        ("connections", {"list": "on"}, ["connections", "list"], 0.03),
        ("dag_state", {"dag_id": DAG, "execution_date": RUN_DATE}, ["dags", "state", DAG, RUN_DATE], 0.10),
        ("task_state", {"dag_id": DAG, "task_id": "first", "execution_date": RUN_DATE},
         ["tasks", "state", DAG, "first", RUN_DATE], 0.10),
        ("list_dags", {}, ["dags", "list"], 0.10),
        ("list_tasks", {"dag_id": DAG}, ["tasks", "list", DAG], 0.10),
        ("trigger_dag", {"dag_id": DAG}, ["dags", "trigger", DAG], 0.10),
    ]  # fmt: skip


def tree_cpu_s(pid: int) -> float:
    """User + system CPU of ``pid``'s live tree, including every child it has reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo, seen = 0.0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(call: Callable[[], None], cpu: Callable[[], float]) -> tuple[float, float]:
    before_cpu, started = cpu(), time.perf_counter()
    call()
    return time.perf_counter() - started, cpu() - before_cpu


def pct(values: list[float], p: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, round((len(data) - 1) * p))]


def through(gateway: GatewayServer, api: str, args: dict[str, str], runner: str) -> Callable[[], None]:
    def call() -> None:
        reply = get(gateway.api(urlencode({"api": api, **args})), headers=HEADERS, timeout=300)
        body = reply.json
        assert reply.status == 200, json.dumps(body)[:1000]
        assert body.get("runner") == runner, f"{api}: served {body.get('runner')}, wanted {runner}"

    return call


def direct(airflow: AirflowHome, argv: list[str]) -> Callable[[], None]:
    def call() -> None:
        done = airflow.cli(*argv, check=False)
        assert done.returncode == 0, done.stderr[-1000:]

    return call


def wait_warm(gateway: GatewayServer) -> None:
    streak, deadline = 0, time.monotonic() + 300
    while streak < 10 and time.monotonic() < deadline:
        ok = get(gateway.api("api=version"), headers=HEADERS).json.get("runner") == "warm"
        streak = streak + 1 if ok else 0
        time.sleep(0 if ok else 0.5)
    assert streak >= 10, "the warm runner never became ready"


def static_upstream(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A tiny upstream for the proxied request the load must not slow down.

    A process of its own (as the load generator is): in the benchmark's process, its threads
    and the load's would compete for the GIL with the latency probe, and the probe would
    measure its own process under load rather than the gateway.
    """
    (root / "ping").write_text("ok")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if get(f"http://127.0.0.1:{port}/ping", timeout=5).status == 200:
                break
        except OSError:
            time.sleep(0.1)
    return server, port


def proxied_latencies(
    url: str, seconds: float, stop: threading.Event | None = None, headers: dict[str, str] | None = None
) -> list[float]:
    out: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (stop and stop.is_set()):
        started = time.perf_counter()
        assert get(url, timeout=60, headers=headers or {}).status == 200
        out.append(time.perf_counter() - started)
        time.sleep(0.05)
    return out


def _poll(
    url: str, clients: int, seconds: float, results: Any, headers: dict[str, str] | None = None
) -> None:
    """The load, in a process of its own: ``clients`` threads polling ``url`` for ``seconds``."""
    headers = headers or HEADERS
    counts = {"ok": 0, "busy": 0}
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < end:
            reply = get(url, headers=headers, timeout=120)
            with lock:
                counts["ok" if reply.status == 200 else "busy"] += 1
            if reply.status == 503:
                time.sleep(float(reply.headers.get("Retry-After", "1")))  # as a well-behaved poller does

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(counts)


def throughput(
    gateway: GatewayServer,
    clients: int,
    seconds: float,
    proxied_url: str,
    headers: dict[str, str] | None = None,
    proxied_headers: dict[str, str] | None = None,
) -> tuple[int, int, list[float]]:
    """Calls answered 200 and 503 by ``clients`` polling dag_state, and proxied latencies meanwhile.

    The clients run in another process: this one only probes, as it does when idle.
    """
    url = gateway.api(urlencode({"api": "dag_state", "dag_id": DAG, "execution_date": RUN_DATE}))
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    load = context.Process(target=_poll, args=(url, clients, seconds, results, headers))
    load.start()
    time.sleep(1.0)  # the load under way before the first probe
    latencies = proxied_latencies(proxied_url, seconds - 2, headers=proxied_headers)
    counts = results.get(timeout=seconds + 300)
    load.join()
    return counts["ok"], counts["busy"], latencies


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def warm_pids(gateway: GatewayServer) -> list[int]:
    """The warm servers of ``gateway`` (their working directory is in its state directory)."""
    out = subprocess.run(
        ["pgrep", "-f", "gateway/execution/warm/server.py"], capture_output=True, text=True, check=False
    )
    mine = []
    for pid in (int(p) for p in out.stdout.split()):
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(str(gateway.state_dir)):
                mine.append(pid)
        except OSError:
            continue
    return mine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["rest", "direct"], default="rest")
    parser.add_argument(
        "--pool-size", type=int, help="cli.warm_pool_size of the warm gateway (default: its own)"
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--airflow", choices=["3", "2"], default="3")
    parser.add_argument("--seconds", type=float, default=30.0, help="throughput phase length")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--nice", type=int, default=10, help="cli.nice of the gateways (0: CLI calls at full priority)"
    )
    parser.add_argument(
        "--idle-cgroup",
        default="auto",
        help="cli.idle_cgroup of the gateways (off: CLI calls at cli.nice only)",
    )
    args = parser.parse_args()
    if args.mode == "rest":
        return rest_main(args)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        airflow = make_airflow_home(args.airflow, tmp / "home")
        airflow.cli("variables", "set", "bench_key", "bench_value")
        date_flag = "--logical-date" if args.airflow == "3" else "--exec-date"
        airflow.cli("dags", "trigger", DAG, "--run-id", RUN_ID, date_flag, RUN_DATE)
        upstream, port = static_upstream(tmp)
        tokens = json.dumps([{"name": "bench-admin", "sha256": hash_token(TOKEN), "groups": ["admins"]}])
        common = {
            "AUTH__TOKENS": tokens,
            "POLICY__DIR": str(ROOT / "policies"),
            "AUDIT__FILE": str(tmp / "audit.log"),
            "PROXY__UPSTREAM": f"http://127.0.0.1:{port}",
        }
        gateways = {
            runner: start_gateway(
                airflow,
                tmp / runner,
                settings={
                    **common,
                    "CLI__RUNNER": runner,
                    "CLI__NICE": str(args.nice),
                    "CLI__IDLE_CGROUP": args.idle_cgroup,
                },
            )
            for runner in ("cold", "warm")
        }
        try:
            wait_warm(gateways["warm"])
            report(args, airflow, gateways)
        except BaseException:
            for runner, gateway in gateways.items():
                print(f"--- {runner} gateway log (tail) ---\n{gateway.log_text()[-6000:]}", file=sys.stderr)
            raise
        finally:
            for gateway in gateways.values():
                gateway.stop()
            upstream.terminate()
            upstream.wait()
    return 0


def report(args: argparse.Namespace, airflow: AirflowHome, gateways: dict[str, GatewayServer]) -> None:
    print(f"Airflow {args.airflow}, {args.rounds} interleaved rounds, 2 gunicorn workers per gateway")
    placement = [line for line in gateways["warm"].log_text().splitlines() if "cgroup" in line]
    print(f"cli.nice {args.nice}, cli.idle_cgroup {args.idle_cgroup}: {placement[-1] if placement else '?'}")
    print(f"{'command':<12} {'(a) p50/p95 ms':>15} {'(b) p50/p95 ms':>15} {'(c) p50/p95 ms':>16} "
          f"{'(c)/(a)':>8} {'target':>7} {'CPU a/b/c ms':>20} {'CPU c/a':>8}")  # fmt: skip
    figures = {}
    for api, query, argv, target in cases(args.airflow):
        samples: dict[str, list[tuple[float, float]]] = {"a": [], "b": [], "c": []}
        variants = {
            "a": (direct(airflow, argv), children_cpu_s),
            "b": (
                through(gateways["cold"], api, query, "cold"),
                lambda: tree_cpu_s(gateways["cold"].proc.pid),
            ),
            "c": (
                through(gateways["warm"], api, query, "warm"),
                lambda: tree_cpu_s(gateways["warm"].proc.pid),
            ),
        }
        variants["c"][0]()  # one warm-up call (first use of a code path in the warm process)
        for _ in range(args.rounds):
            for key, (call, cpu) in variants.items():
                samples[key].append(timed(call, cpu))
        wall = {k: [w for w, _ in v] for k, v in samples.items()}
        cpu = {k: statistics.median(c for _, c in v) for k, v in samples.items()}
        ratio = statistics.median(wall["c"]) / statistics.median(wall["a"])
        figures[api] = {
            "ratio": ratio,
            "cpu_ratio": cpu["c"] / cpu["a"],
            "c_p50_ms": statistics.median(wall["c"]) * 1000,
        }
        a, b, c = (f"{pct(wall[k], 0.5) * 1000:.0f}/{pct(wall[k], 0.95) * 1000:.0f}" for k in "abc")
        cpus = "/".join(f"{cpu[k] * 1000:.0f}" for k in "abc")
        missed = "" if ratio <= target else "  MISSED"
        print(
            f"{api:<12} {a:>15} {b:>15} {c:>16} {ratio:8.3f} {target:7.2f} {cpus:>20}"
            f" {cpu['c'] / cpu['a']:8.3f}{missed}"
        )
    warm = gateways["warm"]
    proxied = f"{warm.url}/ping"
    idle = proxied_latencies(proxied, 10)
    ok, busy, loaded = throughput(warm, args.clients, args.seconds, proxied)
    rate = ok / args.seconds
    print(
        f"\nthroughput: {args.clients} clients polling dag_state for {args.seconds:.0f} s: "
        f"{rate:.1f} calls/s answered 200 ({busy} answered 503 busy); target >= 20"
    )
    idle99, loaded99 = pct(idle, 0.99) * 1000, pct(loaded, 0.99) * 1000
    print(
        f"proxied request p99: idle {idle99:.1f} ms, under CLI load {loaded99:.1f} ms "
        f"({loaded99 / idle99:.2f}x; target < 2x);"
        f" p50 {pct(idle, 0.5) * 1000:.1f} / {pct(loaded, 0.5) * 1000:.1f} ms"
    )
    pids = warm_pids(warm)
    print(
        f"warm processes of the warm gateway: {len(pids)}, RSS "
        + ", ".join(f"{rss_mib(p):.0f} MiB" for p in pids)
    )
    Path(os.environ.get("BENCH_FIGURES", "/dev/null")).write_text(json.dumps(figures))


# --- mode rest: CLI reads against Airflow's REST API, through one gateway (issue 26) ---


def rest_pairs() -> list[tuple[str, dict[str, str], str, float]]:
    """(name, CLI API arguments, the matching REST path, target p50 ratio)."""
    return [
        ("variables get", {"api": "variables", "get": "bench_key"}, "/api/v2/variables/bench_key", 1.5),
        ("pool get", {"api": "pool", "get": "default_pool"}, "/api/v2/pools/default_pool", 1.5),
        ("dag_state", {"api": "dag_state", "dag_id": DAG, "execution_date": RUN_DATE},
         f"/api/v2/dags/{DAG}/dagRuns/{RUN_ID}", 1.5),
        ("list_dags", {"api": "list_dags"}, "/api/v2/dags", 2.0),
    ]  # fmt: skip


def median_ratio_interval(top: list[float], bottom: list[float], level: float = 0.9) -> tuple[float, float]:
    """A bootstrap interval of median(top) / median(bottom), resampling paired rounds (seeded)."""
    import random

    pairs = list(zip(top, bottom, strict=True))
    rng = random.Random(0)  # resampling for statistics, not a secret
    stats = []
    for _ in range(2000):
        sample = rng.choices(pairs, k=len(pairs))
        stats.append(statistics.median(t for t, _ in sample) / statistics.median(b for _, b in sample))
    stats.sort()
    tail = (1 - level) / 2
    return stats[int(tail * len(stats))], stats[min(len(stats) - 1, int((1 - tail) * len(stats)))]


def memory_kib(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, private) of ``pid`` in KiB: PSS divides each shared page among the processes
    sharing it; private pages are this process's alone (a forked child's copies-on-write)."""
    fields = {"Rss:": 0, "Pss:": 0, "Private_Clean:": 0, "Private_Dirty:": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(" ")
            if key in fields:
                fields[key] = int(rest.split()[0])
    except OSError:
        pass
    return fields["Rss:"], fields["Pss:"], fields["Private_Clean:"] + fields["Private_Dirty:"]


def parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except OSError:
        return 0


def children_of(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rest_main(args: argparse.Namespace) -> int:
    from tests.support.airflow_servers import start_api_server

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from proxy import airflow_token  # the benchmark next door: a JWT from /auth/token

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        airflow = make_airflow_home("3", tmp / "home")
        airflow.cli("variables", "set", "bench_key", "bench_value")
        airflow.cli("dags", "trigger", DAG, "--run-id", RUN_ID, "--logical-date", RUN_DATE)
        api = start_api_server(airflow, tmp)
        # Every layer on: a named token (group admins) for the CLI API; the REST reads carry
        # Airflow's own JWT, which the repository's policies hand to Airflow (00-airflow-ui.toml).
        tokens = json.dumps([{"name": "bench-admin", "sha256": hash_token(TOKEN), "groups": ["admins"]}])
        settings = {
            "AUTH__TOKENS": tokens,
            "POLICY__DIR": str(ROOT / "policies"),
            "AUDIT__FILE": str(tmp / "audit.log"),
            "PROXY__UPSTREAM": api.url,
            "CLI__RUNNER": "warm",
            "CLI__NICE": str(args.nice),
            "CLI__IDLE_CGROUP": args.idle_cgroup,
        }
        if args.pool_size is not None:
            settings["CLI__WARM_POOL_SIZE"] = str(args.pool_size)
        gateway = start_gateway(airflow, tmp / "warm", settings=settings)
        try:
            servers.wait_warm(gateway, HEADERS)
            bearer = {"Authorization": f"Bearer {airflow_token(api.port)}"}
            rest_report(args, gateway, api, bearer)
        except BaseException:
            print(f"--- gateway log (tail) ---\n{gateway.log_text()[-6000:]}", file=sys.stderr)
            raise
        finally:
            gateway.stop()
            api.stop()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def rest_report(args: argparse.Namespace, gateway: GatewayServer, api: Any, bearer: dict[str, str]) -> None:
    def cli(query: dict[str, str]) -> Callable[[], None]:
        def call() -> None:
            reply = get(gateway.api(urlencode(query)), headers=HEADERS, timeout=300)
            assert reply.status == 200 and reply.json.get("runner") == "warm", json.dumps(reply.json)[:800]

        return call

    def rest(path: str) -> Callable[[], None]:
        def call() -> None:
            reply = get(gateway.url + path, headers=bearer, timeout=300)
            assert reply.status == 200, reply.body[:800]

        return call

    def cpu_gateway() -> float:
        return tree_cpu_s(gateway.proc.pid)

    def cpu_both() -> float:
        return tree_cpu_s(gateway.proc.pid) + tree_cpu_s(api.proc.pid)

    def sample(call: Callable[[], None], cpu: Callable[[], float]) -> tuple[float, float]:
        before = cpu()
        started = time.perf_counter()
        call()
        wall = time.perf_counter() - started
        time.sleep(0.15)  # the child's exit and the pool's refill belong to this call's CPU
        return wall, cpu() - before

    pool = args.pool_size if args.pool_size is not None else "default"
    print(f"Airflow 3 api-server behind one warm gateway (2 workers, cli.warm_pool_size {pool}); "
          f"{args.rounds} interleaved rounds")  # fmt: skip
    print(f"{'read':<14} {'CLI p50/p95 ms':>15} {'REST p50/p95 ms':>16} {'p50 ratio (90% CI)':>22} "
          f"{'target':>7} {'CPU CLI/REST ms':>16}")  # fmt: skip
    for name, query, path, target in rest_pairs():
        pair = {"cli": (cli(query), cpu_gateway), "rest": (rest(path), cpu_both)}
        for call, _ in pair.values():
            call()
            call()  # first uses (the pool, Airflow's caches)
        samples: dict[str, list[tuple[float, float]]] = {"cli": [], "rest": []}
        for index in range(args.rounds):
            order = ["cli", "rest"] if index % 2 == 0 else ["rest", "cli"]
            for key in order:
                samples[key].append(sample(*pair[key]))
        wall = {k: [w for w, _ in v] for k, v in samples.items()}
        # /proc counts CPU in clock ticks (10 ms): the mean over the rounds, not a median of ticks.
        cpu = {k: statistics.fmean(c for _, c in v) * 1000 for k, v in samples.items()}
        ratio = statistics.median(wall["cli"]) / statistics.median(wall["rest"])
        low, high = median_ratio_interval(wall["cli"], wall["rest"])
        a, b = (f"{pct(wall[k], 0.5) * 1000:.1f}/{pct(wall[k], 0.95) * 1000:.1f}" for k in ("cli", "rest"))
        missed = "" if ratio <= target else "  MISSED"
        print(f"{name:<14} {a:>15} {b:>16} {ratio:8.2f} ({low:.2f}-{high:.2f}) {target:7.1f} "
              f"{cpu['cli']:7.1f}/{cpu['rest']:.1f}{missed}", flush=True)  # fmt: skip
    proxied = f"{gateway.url}/api/v2/version"
    idle = proxied_latencies(proxied, 10)
    before = tree_cpu_s(gateway.proc.pid)
    ok, busy, loaded = throughput(gateway, args.clients, args.seconds, proxied)
    spent = tree_cpu_s(gateway.proc.pid) - before
    print(
        f"\nthroughput: {args.clients} pollers on dag_state for {args.seconds:.0f} s: "
        f"{ok / args.seconds:.1f} calls/s answered 200 ({busy} answered 503); target >= 80; gateway tree CPU "
        f"{spent * 1000 / max(ok, 1):.1f} ms per answered call, load average {os.getloadavg()[0]:.2f}"
    )
    idle99, loaded99 = pct(idle, 0.99) * 1000, pct(loaded, 0.99) * 1000
    print(
        f"proxied GET /api/v2/version p99: idle {idle99:.1f} ms, under the load {loaded99:.1f} ms "
        f"({loaded99 / idle99:.2f}x; target < 2x); "
        f"p50 {pct(idle, 0.5) * 1000:.1f} / {pct(loaded, 0.5) * 1000:.1f} ms"
    )
    time.sleep(2)
    rows = []
    candidates = set(warm_pids(gateway))  # the servers, and their pooled children (the same cmdline)
    for pid in sorted(p for p in candidates if parent_of(p) not in candidates):
        kids = children_of(pid)
        server = memory_kib(pid)
        pooled = [memory_kib(k) for k in kids]
        rows.append((pid, server, pooled))
    total_rss = sum(s[0] + sum(p[0] for p in k) for _, s, k in rows)
    total_pss = sum(s[1] + sum(p[1] for p in k) for _, s, k in rows)
    for pid, server, pooled in rows:
        print(f"warm server {pid}: RSS {server[0] / 1024:.0f} MiB, PSS {server[1] / 1024:.0f} MiB, "
              f"private {server[2] / 1024:.0f} MiB; {len(pooled)} pooled children: RSS "
              + ", ".join(f"{p[0] / 1024:.0f}" for p in pooled) + " MiB, PSS "
              + ", ".join(f"{p[1] / 1024:.1f}" for p in pooled) + " MiB, private "
              + ", ".join(f"{p[2] / 1024:.1f}" for p in pooled) + " MiB")  # fmt: skip
    print(f"warm servers and pools: RSS {total_rss / 1024:.0f} MiB summed (shared pages counted in every "
          f"process), PSS {total_pss / 1024:.0f} MiB (each page once)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
