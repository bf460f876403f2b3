"""Metrics in-process: names, bounded labels, hooks, /metrics restriction, multiprocess set-up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from werkzeug.test import Client

from gateway.config.loader import ConfigError, load_config
from gateway.observability.audit import AuditRecord
from gateway.observability.metrics import Metrics
from gateway.observability.multiprocess_dir import ENV, MultiprocError, ensure_env, prepare, wipe
from tests.unit.gateway_app import METRICS_TOKEN, unit_gateway

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARD = ROOT / "dashboards" / "airflow-gateway.json"


def _record(**fields: object) -> AuditRecord:
    record = AuditRecord(request_id="metrics-unit-01", method="GET", path="/x", remote_addr="127.0.0.1")
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def test_record_fields_become_metrics() -> None:
    """A finished record feeds requests, duration, bytes, CLI, auth, policy and upstream metrics."""
    registry = CollectorRegistry()
    m = Metrics(registry, apis={"version", "pause"})
    record = _record(
        route="api", status=403, duration_s=0.2, bytes_out=10, bytes_in=5, api="pause",
        decision="deny", auth_failure_reason="bad_token", cli_outcome="failed", cli_duration_s=2.0,
        upstream_error="timeout", upstream_duration_s=0.5,
    )  # fmt: skip
    m.request_started(record)
    assert registry.get_sample_value("airflow_gateway_in_flight_requests") == 1
    m.request_finished(record)
    value = registry.get_sample_value
    assert value("airflow_gateway_in_flight_requests") == 0
    assert value("airflow_gateway_requests_total", {"route": "api", "method": "GET", "code": "403"}) == 1
    assert value("airflow_gateway_request_duration_seconds_sum", {"route": "api"}) == 0.2
    assert value("airflow_gateway_response_bytes_total", {"route": "api"}) == 10
    assert value("airflow_gateway_request_bytes_total", {"route": "api"}) == 5
    assert value("airflow_gateway_policy_denials_total", {"api": "pause"}) == 1
    assert value("airflow_gateway_auth_failures_total", {"reason": "bad_token"}) == 1
    assert value("airflow_gateway_cli_calls_total", {"api": "pause", "outcome": "failed"}) == 1
    assert value("airflow_gateway_cli_duration_seconds_count", {"api": "pause"}) == 1
    assert value("airflow_gateway_upstream_errors_total", {"kind": "timeout"}) == 1
    assert value("airflow_gateway_upstream_duration_seconds_count") == 1


@pytest.mark.parametrize(
    ("fields", "metric", "labels"),
    [
        pytest.param({"method": "BREW"}, "airflow_gateway_requests_total",
                     {"route": "unmatched", "method": "other", "code": "500"}, id="method"),
        pytest.param({"route": "/dags/secret_dag"}, "airflow_gateway_requests_total",
                     {"route": "other", "method": "GET", "code": "500"}, id="route"),
        pytest.param({"api": "dag_id_as_api", "cli_outcome": "ok"}, "airflow_gateway_cli_calls_total",
                     {"api": "other", "outcome": "ok"}, id="api"),
        pytest.param({"api": "version", "cli_outcome": "weird"}, "airflow_gateway_cli_calls_total",
                     {"api": "version", "outcome": "other"}, id="outcome"),
        pytest.param({"auth_failure_reason": "user alice unknown"}, "airflow_gateway_auth_failures_total",
                     {"reason": "other"}, id="reason"),
        pytest.param({"upstream_error": "ECONNRESET at 10.0.0.1"}, "airflow_gateway_upstream_errors_total",
                     {"kind": "other"}, id="upstream-kind"),
    ],
)  # fmt: skip
def test_labels_stay_bounded(fields: dict[str, object], metric: str, labels: dict[str, str]) -> None:
    """Values outside the closed sets (raw paths, DAG ids, users, free text) are counted as 'other'."""
    registry = CollectorRegistry()
    m = Metrics(registry, apis={"version"})
    m.request_finished(_record(**fields))
    assert registry.get_sample_value(metric, labels) == 1


def _exported_names(registry: CollectorRegistry) -> set[str]:
    suffixes = {
        "counter": ["_total", "_created"],
        "histogram": ["_bucket", "_count", "_sum", "_created"],
        "gauge": [""],
    }
    return {family.name + s for family in registry.collect() for s in suffixes[family.type]}


def test_metric_names_follow_conventions() -> None:
    """One prefix, _total counters, _seconds/_bytes base units."""
    registry = CollectorRegistry()
    Metrics(registry)
    families = list(registry.collect())
    assert families and all(f.name.startswith("airflow_gateway_") for f in families)
    for family in families:
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
    assert {
        "airflow_gateway_requests_total",
        "airflow_gateway_cli_calls_total",
        "airflow_gateway_build_info",
    } <= (_exported_names(registry))


def test_dashboard_uses_only_exported_metrics() -> None:
    """Every metric name in the Grafana dashboard's queries is one the gateway exports."""
    registry = CollectorRegistry()
    Metrics(registry)
    exported = _exported_names(registry)
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\bairflow_gateway_\w+", expr)}
    assert len(exprs) >= 10 and len(used) >= 10
    assert used - exported == set()
    # And the other way round: every family of the gateway is on the dashboard.
    families = {f.name for f in registry.collect()}
    assert {f for f in families if not any(u.startswith(f) for u in used)} == set()


@pytest.mark.parametrize(
    ("settings", "headers", "remote", "status"),
    [
        pytest.param({}, {}, "192.0.2.1", 200, id="open-by-default"),
        pytest.param({"METRICS__TOKEN": METRICS_TOKEN}, {}, "127.0.0.1", 401, id="token-missing"),
        pytest.param({"METRICS__TOKEN": METRICS_TOKEN}, {"Authorization": "Bearer wrong"}, "127.0.0.1",
                     401, id="token-wrong"),
        pytest.param({"METRICS__TOKEN": METRICS_TOKEN}, {"Authorization": f"Bearer {METRICS_TOKEN}"},
                     "127.0.0.1", 200, id="token-right"),
        pytest.param({"METRICS__ALLOW_FROM": "10.0.0.0/8,127.0.0.1"}, {}, "10.1.2.3", 200,
                     id="allowed-network"),
        pytest.param({"METRICS__ALLOW_FROM": "10.0.0.0/8"}, {}, "192.0.2.1", 403, id="other-network"),
        pytest.param({"METRICS__ENABLED": "false"}, {}, "127.0.0.1", 404, id="disabled"),
    ],
)  # fmt: skip
def test_metrics_endpoint_restriction(
    tmp_path: Path, settings: dict[str, str], headers: dict[str, str], remote: str, status: int
) -> None:
    """/metrics can require a bearer token or a source network, or be off; refusals are JSON envelopes."""
    with unit_gateway(tmp_path, settings=settings, proxy=lambda e, s: pytest.fail("proxied")) as gw:
        reply = Client(gw.app).get("/metrics", headers=headers, environ_overrides={"REMOTE_ADDR": remote})
        reply.close()
        [event] = gw.events()
    assert reply.status_code == status
    if status == 200:
        assert b"airflow_gateway_requests_total" in reply.data
    else:
        assert reply.json["status"] == "ERROR"  # type: ignore[index]
    assert event["route"] == "metrics"
    if status == 401:
        assert reply.headers["WWW-Authenticate"] == "Bearer"
        reason = "missing_token" if not headers else "bad_token"
        assert event["auth_failure_reason"] == reason


def test_openmetrics_is_negotiated(tmp_path: Path) -> None:
    """A Prometheus asking for OpenMetrics gets it; a plain client gets the text format."""
    with unit_gateway(tmp_path) as gw:
        om = Client(gw.app).get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        text = Client(gw.app).get("/metrics")
    assert om.headers["Content-Type"].startswith("application/openmetrics-text") and om.data.endswith(
        b"# EOF\n"
    )
    assert text.headers["Content-Type"].startswith("text/plain")


def test_config_for_audit_and_metrics() -> None:
    """[audit] and [metrics] settings load from the environment and reject bad values by name."""
    config = load_config(
        {
            "AIRFLOW_GATEWAY__AUDIT__SENSITIVE_NAMES": "pin, otp",
            "AIRFLOW_GATEWAY__METRICS__ALLOW_FROM": "10.0.0.0/8",
        }
    )
    assert config.audit.sensitive_names == ("pin", "otp") and config.metrics.allow_from == ("10.0.0.0/8",)
    with pytest.raises(ConfigError, match="metrics.allow_from"):
        load_config({"AIRFLOW_GATEWAY__METRICS__ALLOW_FROM": "everyone"})
    with pytest.raises(ConfigError, match=r"metrics.token.*value not shown"):
        load_config({"AIRFLOW_GATEWAY__METRICS__TOKEN": ""})


def test_wipe_removes_earlier_runs_but_keeps_own_files(tmp_path: Path) -> None:
    """Start-up wiping drops stale .db files and keeps the current process's own."""
    for name in ("counter_11.db", "gauge_livesum_11.db", f"counter_{os.getpid()}.db", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert wipe(tmp_path, keep_pid=os.getpid()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"counter_{os.getpid()}.db", "notes.txt"])


def test_ensure_env_refuses_once_prometheus_client_is_imported(tmp_path: Path) -> None:
    """Setting the variable after prometheus_client was imported is refused (trap 2), not silently wrong."""
    assert "prometheus_client" in sys.modules
    with pytest.raises(MultiprocError, match=ENV):
        ensure_env({}, tmp_path / "prom")
    environ = {ENV: str(tmp_path / "given")}
    assert ensure_env(environ, tmp_path / "unused") == tmp_path / "given" and (tmp_path / "given").is_dir()


def test_fresh_python_gets_the_directory_and_multiprocess_values(tmp_path: Path) -> None:
    """In a process that has not imported prometheus_client, prepare() makes its values mmap-backed."""
    stale = tmp_path / "prom" / "counter_1.db"
    stale.parent.mkdir()
    stale.write_text("stale")
    code = (
        "import os, sys; from pathlib import Path; from gateway.observability.multiprocess_dir import prepare; "
        f"d = prepare(os.environ, Path({str(tmp_path / 'prom')!r})); "
        "from prometheus_client import values; print(values.ValueClass.__name__, sorted(os.listdir(d)))"
    )
    env = {k: v for k, v in os.environ.items() if k != ENV}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split(" ", 1)[0] == "MmapedValue" and "counter_1.db" not in done.stdout


def test_serve_prepares_the_directory_before_exec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`airflow-gateway serve` sets and wipes PROMETHEUS_MULTIPROC_DIR, then execs gunicorn with it."""
    from gateway.entry import commands

    seen: dict[str, object] = {}
    monkeypatch.setenv("AIRFLOW_GATEWAY__GATEWAY__STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delitem(sys.modules, "prometheus_client")  # as in a fresh `airflow-gateway` process
    monkeypatch.setattr(commands.os, "execv", lambda path, argv: seen.update(argv=argv, env=dict(os.environ)))
    stale = tmp_path / "state" / "prometheus-multiproc" / "counter_9.db"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    assert commands.main(["serve", "--bind", "127.0.0.1:0"]) == 0
    assert seen["env"][ENV] == str(stale.parent)  # type: ignore[index]
    assert not stale.exists()


def test_prepare_is_what_launchers_call(tmp_path: Path) -> None:
    """prepare() = ensure the variable + wipe, usable on a given environment."""
    environ = {ENV: str(tmp_path / "p")}
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "histogram_5.db").write_text("x")
    assert prepare(environ, tmp_path / "unused") == tmp_path / "p"
    assert list((tmp_path / "p").iterdir()) == []


def test_every_route_has_its_own_label() -> None:
    """Each endpoint of the URL map is counted under its own route label, never as "other"."""
    from gateway.observability.metrics import ROUTES
    from gateway.request.routes import URL_MAP

    assert {rule.endpoint for rule in URL_MAP.iter_rules()} | {"proxy", "unmatched"} == ROUTES
