"""Sign-on benchmark: what a session cookie adds to a proxied request, against a named token.

    eval "$(scripts/bootstrap)"
    .venv/bin/python benchmarks/sso.py [--rounds 9] [--requests 2000]

One gateway (gunicorn.conf.py, one worker, sign-on on against the real test provider, a named
token, audit and metrics on) in front of the fast static upstream of ``benchmarks/proxy.py``.
A person signs in over HTTP (``tests/support/oidc.py``'s ``LoginDriver``); then one keep-alive
connection per credential sends GETs to a proxied path, the two kinds interleaved request by
request, so drift and noise hit both alike.  Each round gives p50/p99 per kind; the figure is
the per-round difference of p50 (session - token), its median over rounds and a 95 %
interval (bootstrap over rounds).  Target (docs/sso.md): added p50 <= 0.2 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import multiprocessing
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.proxy import serve_static  # noqa: E402
from tests.support.airflow import make_airflow_home  # noqa: E402
from tests.support.browser import Browser  # noqa: E402
from tests.support.oidc import LoginDriver, client_metadata, running_provider  # noqa: E402
from tests.support.servers import free_port, start_gateway  # noqa: E402

PATH = "/api/v2/monitor/health"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(conn: http.client.HTTPConnection, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    conn.request("GET", PATH, headers=headers)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    assert response.status == 200, response.status
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--requests", type=int, default=2000, help="per kind and round")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-sso-"))
    static_port = free_port()
    static = multiprocessing.Process(target=serve_static, args=(static_port,), daemon=True)
    static.start()
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    secret = secrets.token_urlsafe(24)
    airflow = make_airflow_home("3", tmp / "airflow")
    with running_provider() as provider:
        server = start_gateway(
            airflow, tmp, workers=1,
            settings={
                "CLI__RUNNER": "cold",
                "PROXY__UPSTREAM": f"http://127.0.0.1:{static_port}",
                "AUTH__TOKENS": f'[{{"name": "bench", "sha256": "sha256:{digest}"}}]',
                "AUDIT__FILE": str(tmp / "audit.jsonl"),
                "OIDC__ISSUER": provider.issuer,
                "OIDC__CLIENT_ID": "bench",
                "OIDC__CLIENT_SECRET_ENV": "BENCH_OIDC_SECRET",
            },
            extra_env={"BENCH_OIDC_SECRET": secret},
        )  # fmt: skip
        try:
            provider.add_client(
                client_metadata(
                    client_id="bench", secret=secret,
                    redirect_uris=(f"{server.url}/admin/rest_api/oidc/callback",),
                )
            )  # fmt: skip
            browser = Browser(server.url)
            started = browser.get("/admin/rest_api/login")
            callback = LoginDriver().authorize(
                started.headers["Location"], "ada", "ada-password", stop_at=server.url
            )
            assert browser.get(callback.removeprefix(server.url)).status == 303
            cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
            kinds = {
                "session": {"Cookie": cookie, "Accept": "application/json"},
                "token": {"X-Gateway-Authorization": f"Bearer {token}", "Accept": "application/json"},
            }
            port = int(server.url.rsplit(":", 1)[1])
            conns = {kind: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for kind in kinds}
            for kind, headers in kinds.items():  # warm up: connections, caches, the JIT-less paths
                for _ in range(300):
                    timed(conns[kind], headers)
            deltas: list[float] = []
            print(
                f"{'round':>5} {'session p50':>12} {'token p50':>10} {'session p99':>12} "
                f"{'token p99':>10} {'Δp50':>8}"
            )
            for index in range(args.rounds):
                times: dict[str, list[float]] = {kind: [] for kind in kinds}
                order = list(kinds)
                for _ in range(args.requests):
                    random.shuffle(order)
                    for kind in order:
                        times[kind].append(timed(conns[kind], kinds[kind]))
                p50 = {k: statistics.median(v) * 1000 for k, v in times.items()}
                p99 = {k: percentile(v, 0.99) * 1000 for k, v in times.items()}
                deltas.append(p50["session"] - p50["token"])
                print(
                    f"{index + 1:>5} {p50['session']:>9.3f} ms {p50['token']:>7.3f} ms "
                    f"{p99['session']:>9.3f} ms {p99['token']:>7.3f} ms {deltas[-1]:>+7.3f}"
                )
            boot = sorted(statistics.median(random.choices(deltas, k=len(deltas))) for _ in range(2000))
            low, high = boot[int(0.025 * len(boot))], boot[int(0.975 * len(boot)) - 1]
            print(
                f"added p50 by the session: median {statistics.median(deltas):+.3f} ms "
                f"over {args.rounds} rounds "
                f"(95 % interval {low:+.3f} .. {high:+.3f} ms); target <= 0.2 ms"
            )
        finally:
            server.stop()
            static.terminate()


if __name__ == "__main__":
    main()
