"""How much CPU Airflow's api-server spends per request, depending on when requests arrive.

A diagnostic for the "in front of Airflow" figure of ``benchmarks/proxy.py``: it shows that
Airflow's cost per request is not a constant a proxy merely adds to, but depends on the
timing of arrivals, which any proxy changes.  One keep-alive connection sends
``GET /api/v2/version``:
  - directly, back to back (the baseline);
  - directly, after a pause of G ms following each answer (the client spins, so the pause
    is exact; the api-server sees nothing but a later arrival);
  - through the gateway (every layer on, as in ``benchmarks/proxy.py``), back to back;
  - through nginx, when installed (never installed here), back to back.
Variants alternate in short rounds.  For each it prints req/s, the api-server's CPU per
request (from /proc, its whole process tree) and that CPU as a ratio of the baseline's.
With 2+ CPUs the api-server is pinned to the last one and everything else to the others.

    eval "$(scripts/bootstrap)"
    .venv/bin/python benchmarks/airflow_pacing.py [--rounds 12] [--seconds-per-round 1]

Every request goes to 127.0.0.1; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.proxy import find_nginx, pin_tree, start_nginx_proxy, tree_cpu_s  # noqa: E402

# The benchmark gateway's own plugin token, never a real secret.
_TOKEN_HEADER = "rest-api-plugin-http-token"
_TOKEN = "bench-token"


@dataclass
class Tally:
    requests: int = 0
    seconds: float = 0.0
    api_cpu_s: float = 0.0

    @property
    def ms(self) -> float:
        """Wall time per request, round trip included."""
        return self.seconds * 1000 / self.requests if self.requests else float("nan")

    @property
    def cpu_ms(self) -> float:
        return self.api_cpu_s * 1000 / self.requests if self.requests else float("nan")


def paced_round(port: int, headers: str, gap_s: float, seconds: float) -> tuple[int, float]:
    """Requests on one fresh keep-alive connection for ``seconds``, pausing ``gap_s`` after
    each answer; returns (requests, elapsed seconds)."""
    request = f"GET /api/v2/version HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        count, started = 0, time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            sock.sendall(request)
            status = reader.readline()
            if not status.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"port {port}: unexpected answer {status!r}")
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            reader.read(length)
            count += 1
            if gap_s:
                until = time.perf_counter() + gap_s
                while time.perf_counter() < until:
                    pass
        return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds-per-round", type=float, default=1.0)
    parser.add_argument("--gaps-ms", default="0.25,0.5,1,2", help="pauses of the direct variants")
    args = parser.parse_args()

    from tests.support.airflow import make_airflow_home
    from tests.support.airflow_servers import start_api_server
    from tests.support.servers import start_gateway, stop_group

    tmp = Path(tempfile.mkdtemp(prefix="gw-pacing-"))
    airflow = make_airflow_home("3", tmp / "airflow-home")
    api = start_api_server(airflow, tmp)
    stops: list[object] = [api]
    try:
        gateway = start_gateway(
            airflow,
            tmp,
            settings={
                "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": _TOKEN,
                "POLICY__DIR": str(ROOT / "policies"),
                "PROXY__UPSTREAM": api.url,
            },
        )
        stops.append(gateway)
        # (name, port, extra header lines, pause in seconds)
        variants: list[tuple[str, int, str, float]] = [("directly, back to back", api.port, "", 0.0)]
        cpus = sorted(os.sched_getaffinity(0))
        for gap in (float(g) for g in args.gaps_ms.split(",") if g):
            variants.append((f"directly, {gap:g} ms pause", api.port, "", gap / 1000))
        gw_port = int(gateway.url.rsplit(":", 1)[1])
        variants.append(("through the gateway", gw_port, f"{_TOKEN_HEADER}: {_TOKEN}\r\n", 0.0))
        nginx = find_nginx()
        if nginx:
            ng_proc, ng_port = start_nginx_proxy(nginx, api.port, tmp, 1)
            stops.append(ng_proc)
            variants.append(("through nginx (reference)", ng_port, "", 0.0))
        if len(cpus) >= 2:
            pin_tree(api.proc.pid, {cpus[-1]})
            others = set(cpus[:-1])
            pin_tree(gateway.proc.pid, others)
            if nginx:
                pin_tree(ng_proc.pid, others)
            os.sched_setaffinity(0, others)
        print(
            f"loopback, {os.cpu_count()} CPUs,"
            f" api-server {'on its own core' if len(cpus) >= 2 else 'shared'};"
            f" {args.rounds} rounds of {args.seconds_per_round:g} s per variant, one connection",
            flush=True,
        )
        for _, port, headers, _ in variants:  # warm-up
            paced_round(port, headers, 0.0, 0.5)
        tallies = {name: Tally() for name, *_ in variants}
        for _ in range(args.rounds):
            for name, port, headers, gap in variants:
                before = tree_cpu_s(api.proc.pid)
                count, elapsed = paced_round(port, headers, gap, args.seconds_per_round)
                tally = tallies[name]
                tally.requests += count
                tally.seconds += elapsed
                tally.api_cpu_s += tree_cpu_s(api.proc.pid) - before
        base = tallies[variants[0][0]]
        print(
            f"\n{'GET /api/v2/version, one connection':<40} {'req/s':>7} {'ms/req':>7}"
            f" {'api CPU ms/req':>15} {'vs back to back':>16}"
        )
        for name, tally in tallies.items():
            print(
                f"{name:<40} {1000 / tally.ms:7.0f} {tally.ms:7.3f} {tally.cpu_ms:15.3f}"
                f" {tally.cpu_ms / base.cpu_ms:15.2f}x"
            )
        for name in ("through the gateway", "through nginx (reference)"):
            if name in tallies:
                added, tally = tallies[name].ms - base.ms, tallies[name]
                print(
                    f"{name}: {added:+.3f} ms per request, of which the api-server's own extra CPU"
                    f" {tally.cpu_ms - base.cpu_ms:+.3f} ms"
                )
    finally:
        for item in reversed(stops):
            if hasattr(item, "stop"):
                item.stop()  # type: ignore[attr-defined]
            else:
                stop_group(item)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
