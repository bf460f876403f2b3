"""Wall time of one CLI call through the gateway vs the same `airflow` command run directly.

Same machine, same run, interleaved: for each command, N direct runs and N gateway calls
(real gunicorn on 127.0.0.1, token auth on).  Prints medians and the ratio.

    .venv/bin/python benchmarks/cli_overhead.py [--runs 5] [--airflow 3]

Needs the Airflow virtualenvs from ``scripts/bootstrap`` (``eval "$(scripts/bootstrap)"``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.airflow import make_airflow_home  # noqa: E402
from tests.support.http import get  # noqa: E402
from tests.support.servers import start_gateway  # noqa: E402

CASES = [
    ("version", {}, ["version"]),
    ("list_dags", {"output": "json"}, ["dags", "list", "--output=json"]),
    ("variables", {"get": "bench_key"}, ["variables", "get", "--", "bench_key"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--airflow", choices=["3", "2"], default="3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        airflow = make_airflow_home(args.airflow, Path(tmp) / "home")
        airflow.cli("variables", "set", "bench_key", "bench_value")
        gateway = start_gateway(
            airflow, Path(tmp), settings={"REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "bench"}
        )
        try:
            print(f"Airflow {args.airflow}: {args.runs} interleaved runs per command (seconds, median)")
            print(f"{'api':<12} {'direct':>8} {'gateway':>8} {'ratio':>7} {'added':>7}")
            for api, query, argv in CASES:
                direct, through = [], []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    done = airflow.cli(*argv, check=False)
                    direct.append(time.perf_counter() - started)
                    assert done.returncode == 0, done.stderr
                    started = time.perf_counter()
                    reply = get(
                        gateway.api(urlencode({"api": api, **query})),
                        headers={"rest_api_plugin_http_token": "bench"},
                    )
                    through.append(time.perf_counter() - started)
                    assert reply.status == 200, reply.body[:500]
                d, g = statistics.median(direct), statistics.median(through)
                print(f"{api:<12} {d:8.2f} {g:8.2f} {g / d:7.3f} {g - d:+7.3f}")
        finally:
            gateway.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
