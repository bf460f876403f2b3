"""Per-request cost of the audit and metrics layers, in-process (no server, no Airflow).

Prints the time per request of the bare dispatcher (baseline) and of the full app (audit
event rendered as redacted JSON + metrics), measured in the same run, and their ratio.
Run: .venv/bin/python scripts/bench/audit_overhead.py
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.unit.gateway_app import TOKEN, unit_gateway  # noqa: E402

N = 3000


def _environ(path: str, query: str = "") -> dict[str, object]:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(), "HTTP_REST_API_PLUGIN_HTTP_TOKEN": TOKEN,
    }  # fmt: skip


def _per_request(app: object, path: str, query: str) -> float:
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
        return lambda data: None

    started = time.perf_counter()
    for _ in range(N):
        body = app(_environ(path, query), start_response)  # type: ignore[operator]
        for _chunk in body:
            pass
        getattr(body, "close", lambda: None)()
    return (time.perf_counter() - started) / N


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, unit_gateway(Path(tmp)) as gw:
        for path, query in (("/healthz", ""), ("/admin/rest_api/api", "api=version")):
            bare = _per_request(gw.app.dispatch, path, query)
            full = _per_request(gw.app, path, query)
            gw.out.seek(0)
            gw.out.truncate()
            print(
                f"{path}?{query}: dispatcher {bare * 1e6:.0f} us, with audit+metrics {full * 1e6:.0f} us, "
                f"ratio {full / bare:.2f}, overhead {(full - bare) * 1e6:.0f} us/request"
            )


if __name__ == "__main__":
    main()
