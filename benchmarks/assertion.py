"""What the identity assertion costs a proxied request: the gateway with assertions on against
the same gateway with them off, in front of the fast static upstream of ``benchmarks/proxy.py``.

Both gateways authenticate the same named token (every layer on: audit, metrics); one signs an
assertion of that principal into each proxied request (cached per principal, so a signature
every 45 s), the other only strips the header.  The variants alternate in short rounds; the
figures are each round's p50 on one connection and the CPU per request of each gateway, with
the added p50 as the median of the per-round differences and a bootstrap interval.

    .venv/bin/python -m benchmarks.assertion --rounds 12 --seconds 24

Target (docs/airflow-identity.md): added p50 at most 0.1 ms.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.proxy import load, serve_static, tree_cpu_s  # noqa: E402
from gateway.identity.tokens import hash_token  # noqa: E402

TOKEN = "bench-assertion-token-" + "c" * 24


def interval(values: list[float], level: float = 0.9, resamples: int = 4000) -> tuple[float, float]:
    """Bootstrap interval of the median of ``values`` (seeded: same rounds, same interval)."""
    rng = random.Random(0)  # resampling for statistics, not a secret
    stats = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    tail = (1 - level) / 2
    return stats[int(tail * resamples)], stats[min(resamples - 1, int((1 - tail) * resamples))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=24.0, help="per variant, over all rounds")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=1, help="keep-alive connections")
    args = parser.parse_args()

    from tests.support.airflow import make_airflow_home
    from tests.support.servers import free_port, start_gateway

    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-assertion-"))
    stops = []
    try:
        airflow = make_airflow_home("3", tmp / "airflow-home")
        static_port = free_port()
        static = multiprocessing.get_context("fork").Process(
            target=serve_static, args=(static_port,), daemon=True
        )
        static.start()
        tokens = [{"name": "bench", "sha256": hash_token(TOKEN), "groups": ["team-a"]}]
        base = {
            "AUTH__TOKENS": json.dumps(tokens),
            "PROXY__UPSTREAM": f"http://127.0.0.1:{static_port}",
        }
        gateways = {
            "assertion on": start_gateway(airflow, tmp, settings={**base, "ASSERTION__ENABLED": "true"}),
            "assertion off": start_gateway(airflow, tmp, settings={**base, "ASSERTION__ENABLED": "false"}),
        }
        stops.extend(gateways.values())
        headers = {"X-Gateway-Authorization": f"Bearer {TOKEN}"}
        ports = {name: int(gw.url.rsplit(":", 1)[1]) for name, gw in gateways.items()}
        for port in ports.values():  # warm-up: connections, first signature, caches
            load(port, "/p/small", seconds=1, concurrency=args.concurrency, headers=headers)
        print(
            f"loopback, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
            f"{args.concurrency} connection(s), {args.seconds:g} s per variant in {args.rounds} rounds",
            flush=True,
        )
        p50s: dict[str, list[float]] = {name: [] for name in gateways}
        requests = dict.fromkeys(gateways, 0)
        cpu = dict.fromkeys(gateways, 0.0)
        per_round = args.seconds / args.rounds
        for index in range(args.rounds):
            order = list(gateways) if index % 2 == 0 else list(reversed(gateways))
            for name in order:
                before = tree_cpu_s(gateways[name].proc.pid)
                result = load(
                    ports[name], "/p/small", seconds=per_round, concurrency=args.concurrency, headers=headers
                )
                cpu[name] += tree_cpu_s(gateways[name].proc.pid) - before
                requests[name] += result.requests
                assert result.errors == 0, f"{name}: {result.errors} errors"
                p50s[name].append(result.pct(0.5))
        for name in gateways:
            print(
                f"{name:14} p50 {statistics.median(p50s[name]):.3f} ms (rounds "
                f"{min(p50s[name]):.3f}-{max(p50s[name]):.3f}), "
                f"CPU {cpu[name] * 1000 / max(1, requests[name]):.3f} ms/request, {requests[name]} requests"
            )
        added = [on - off for on, off in zip(p50s["assertion on"], p50s["assertion off"], strict=True)]
        low, high = interval(added)
        cpu_added = cpu["assertion on"] * 1000 / max(1, requests["assertion on"]) - cpu[
            "assertion off"
        ] * 1000 / max(1, requests["assertion off"])
        verdict = "met" if statistics.median(added) <= 0.1 else "NOT met"
        print(
            f"added p50: {statistics.median(added):+.3f} ms (90% interval {low:+.3f} to {high:+.3f}); "
            f"added CPU {cpu_added:+.3f} ms/request; target <= 0.1 ms: {verdict}"
        )
    finally:
        for gateway in stops:
            gateway.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
