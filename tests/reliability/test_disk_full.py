"""A full disk under the gateway's files (issue 13, findings 4 and 5).

Real gunicorn, its metrics directory and audit file each on a small tmpfs the test mounts
and fills.  Before: prometheus_client's memory-mapped files raised SIGBUS at the first new
page (workers crash-looped, nothing answered), and a failed audit-file write skipped
stdout too and left a torn line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import TOKEN
from tests.support.airflow import AirflowHome
from tests.support.http import get, request
from tests.support.servers import GatewayServer, start_gateway
from tests.support.tmpfs import fill, tmpfs
from tests.support.upstreams import EchoUpstream

# Status codes the echo upstream answers with a body: each is a new label set, so a new
# entry in the metrics file, which soon needs pages the full filesystem cannot give.
CODES = [c for c in range(200, 600) if c not in {204, 205, 304} and not 300 <= c < 400]


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    with tmpfs(tmp_path / "metrics", "512k") as metrics, tmpfs(tmp_path / "audit", "256k") as audit:
        yield metrics, audit


@pytest.fixture
def gateway_on_small_disks(
    mounts: tuple[Path, Path], echo: EchoUpstream, airflow3: AirflowHome, tmp_path: Path
) -> Iterator[tuple[GatewayServer, Path, Path]]:
    metrics, audit = mounts
    server = start_gateway(
        airflow3,
        tmp_path,
        workers=1,
        settings={
            "REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
            "PROXY__UPSTREAM": echo.url,
            "AUDIT__FILE": str(audit / "audit.log"),
        },
        extra_env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)},
    )
    try:
        yield server, metrics, audit
    finally:
        server.stop()


def _events(server: GatewayServer, marker: str) -> list[dict[str, object]]:
    out = []
    for line in server.log_text().splitlines():
        if marker in line and '"gateway.request"' in line:
            out.append(json.loads(line))
    return out


def test_a_full_audit_disk_loses_no_event_and_tears_no_line(
    gateway_on_small_disks: tuple[GatewayServer, Path, Path],
) -> None:
    """Finding 5: events still reach stdout, the file has whole lines only, lost writes are counted."""
    server, metrics, audit = gateway_on_small_disks
    fill(audit)
    for i in range(40):
        assert get(f"{server.url}/_status/200?audit={i}", timeout=30).status == 200
    assert len(_events(server, "audit=")) == 40
    lines = (audit / "audit.log").read_bytes().split(b"\n")
    assert lines[-1] == b""  # ends with a newline: no line cut mid-write
    assert all(json.loads(line)["event"] == "gateway.request" for line in lines[:-1])
    scrape = get(f"{server.url}/metrics", timeout=30).body.decode()
    [lost] = [
        line for line in scrape.splitlines() if line.startswith("airflow_gateway_audit_write_failures_total")
    ]
    assert float(lost.split()[-1]) >= 40 - (len(lines) - 1)


def test_a_full_metrics_disk_degrades_metrics_and_kills_no_worker(
    gateway_on_small_disks: tuple[GatewayServer, Path, Path],
) -> None:
    """Finding 4: new label sets need new pages of the full filesystem; serving goes on."""
    server, metrics, audit = gateway_on_small_disks
    fill(metrics)
    for method in ("GET", "DELETE"):
        for code in CODES:
            assert request(method, f"{server.url}/_status/{code}?metrics=1", timeout=30).status == code
    for _ in range(10):
        assert get(f"{server.url}/healthz", timeout=10).status == 200
    ready = get(f"{server.url}/readyz", timeout=30).json
    assert ready["status"] == "degraded" and ready["checks"]["metrics"]["degraded"] is True
    log = server.log_text()
    assert "SIGBUS" not in log and log.count("Booting worker") == 1
    assert "metrics degraded" in log
    assert len(_events(server, "metrics=1")) == 2 * len(CODES)  # and the audit events went on
