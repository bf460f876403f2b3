"""What rate limits add to a request (issue 27): p50 with limits off, in memory and in Redis.

The whole gateway as ``create_app`` composes it (lifecycle, routing, authentication, the
rate-limit layer, dispatch, audit to a null stream), called in-process so that the figure
is the gateway's own cost and not the network's: a proxied request (the proxy replaced by
an app answering at once) and a CLI API call (``api=version`` with a canned runner).  Each
round times every configuration once, in an order shuffled per round (interleaved, so drift
and noise from other processes spread evenly), repeated; the report gives each p50 and the
p50 added against limits off, with the spread over rounds.

    .venv/bin/python benchmarks/rate_limits.py [--rounds 30 --requests 400]

Needs Debian's redis-server (scripts/bootstrap.d/80-redis.sh): a private one is started on
loopback.  Configurations:

* ``off``: no rules (the layer is not even composed);
* ``memory``/``redis``: one every-request rule for everyone, plus, on the API call, a rule
  for the API (two counters a call, counted in one Redis round trip: a pipeline);
* ``memory+cap``/``redis+cap``: the same plus a ``cli_calls`` cap (a slot taken and given
  back around the call: two more round trips in Redis).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry  # noqa: E402

from gateway.app import create_app  # noqa: E402
from gateway.cli.probe import AirflowInstall  # noqa: E402
from gateway.config.loader import load_config  # noqa: E402
from tests.support.redis import start_redis  # noqa: E402
from tests.unit.gateway_app import FakeRunner  # noqa: E402

TOKEN = "bench-Plug1nToken-0123456789"
HUGE = "1000000/second"
EVERY = {"id": "everyone", "principal": "*", "limit": HUGE}
API = {"id": "version", "principal": "*", "api": "version", "limit": HUGE}
CAP = {"id": "caps", "principal": "*", "cli_calls": 1000}


def proxied(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def build(state: Path, rules: list[dict[str, Any]], url: str) -> Callable[[dict[str, Any]], int]:
    environ = {
        "AIRFLOW_GATEWAY__GATEWAY__STATE_DIR": str(state),
        "AIRFLOW_GATEWAY__AIRFLOW__EXECUTABLE": "/opt/airflow/bin/airflow",
        "AIRFLOW_GATEWAY__REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
        "AIRFLOW_GATEWAY__RATE_LIMITS__RULES": json.dumps(rules),
        "AIRFLOW_GATEWAY__RATE_LIMITS__STORAGE_URL": url,
        "AIRFLOW_GATEWAY__METRICS__ENABLED": "false",
    }
    app = create_app(
        load_config(environ), install=AirflowInstall("/opt/airflow/bin/airflow", "3.3.2", frozenset()),
        runner=FakeRunner(), proxy=proxied, log_stream=io.StringIO(), registry=CollectorRegistry(),
    )  # fmt: skip

    def call(base: dict[str, Any]) -> int:
        status: list[str] = []
        body = app(dict(base), lambda s, h, e=None: status.append(s))
        for _ in body:
            pass
        body.close()  # type: ignore[attr-defined]
        return int(status[0][:3])

    return call


def environ(path: str, query: str = "") -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "bench",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "HTTP_REST_API_PLUGIN_HTTP_TOKEN": TOKEN,
    }  # fmt: skip


def timed(call: Callable[[dict[str, Any]], int], base: dict[str, Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        status = call(base)
        out.append(time.perf_counter() - started)
        assert status == 200, status
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--requests", type=int, default=400, help="per configuration and round")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-rate-limits-"))
    redis = start_redis(tmp)
    try:
        cases = {
            "off": ([], "memory://"),
            "memory": ([EVERY, API], "memory://"),
            "redis": ([EVERY, API], redis.url),
            "memory+cap": ([EVERY, API, CAP], "memory://"),
            "redis+cap": ([EVERY, API, CAP], redis.url),
        }
        apps = {name: build(tmp / name, rules, url) for name, (rules, url) in cases.items()}
        kinds = {"proxied": environ("/home"), "api": environ("/admin/rest_api/api", "api=version")}
        p50s: dict[tuple[str, str], list[float]] = {(k, c): [] for k in kinds for c in cases}
        for _ in range(3):  # warm up: imports, caches, connections
            for call in apps.values():
                for base in kinds.values():
                    timed(call, base, 50)
        for _ in range(args.rounds):
            order = [(k, c) for k in kinds for c in cases]
            random.shuffle(order)
            for kind, case in order:
                p50s[(kind, case)].append(statistics.median(timed(apps[case], kinds[kind], args.requests)))
        print(f"rounds: {args.rounds} x {args.requests} requests per configuration, interleaved")
        print(
            f"{'request':8} {'limits':11} {'p50 ms':>8} {'added p50 ms':>13} {'spread (rounds p10-p90)':>24}"
        )
        for kind in kinds:
            base_p50 = p50s[(kind, "off")]
            for case in cases:
                mine = p50s[(kind, case)]
                added = sorted(m - b for m, b in zip(mine, base_p50, strict=True))
                low, high = added[len(added) // 10], added[(len(added) * 9) // 10]
                print(
                    f"{kind:8} {case:11} {statistics.median(mine) * 1000:8.3f} "
                    f"{statistics.median(added) * 1000:13.3f} {low * 1000:11.3f} .. {high * 1000:.3f}"
                )
    finally:
        redis.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
