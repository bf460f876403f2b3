"""The gateway built by :func:`gateway.app.create_app` in-process, with a fake CLI runner."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from gateway.app import GatewayApp, create_app
from gateway.cli.probe import AirflowInstall
from gateway.config.loader import load_config
from gateway.execution.subprocess_runner import NO_OPTIONS, CallOptions, CliResult
from gateway.observability.logging import json_formatter

TOKEN = "unit-Plug1nToken"
METRICS_TOKEN = "unit-Metr1csToken"
AIRFLOW = "/opt/airflow/bin/airflow"


@dataclass
class FakeRunner:
    """Returns a canned result (or raises), and remembers the argv it was given."""

    result: CliResult = field(default_factory=lambda: CliResult(0, "3.3.2\n", "", False, False, 0.25))
    error: Exception | None = None
    calls: list[list[str]] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, timeout_s: float, options: CallOptions = NO_OPTIONS) -> CliResult:
        self.calls.append(list(argv))
        if self.error is not None:
            raise self.error
        return self.result


@dataclass
class UnitGateway:
    app: GatewayApp
    runner: FakeRunner
    registry: CollectorRegistry
    out: io.StringIO

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines() if line.strip()]

    def events(self) -> list[dict[str, Any]]:
        return [e for e in self.lines() if e.get("event") == "gateway.request"]

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


@contextmanager
def unit_gateway(
    tmp_path: Path,
    *,
    runner: FakeRunner | None = None,
    authorize: Callable[..., None] | None = None,
    proxy: Any = None,
    settings: dict[str, str] | None = None,
) -> Iterator[UnitGateway]:
    """The gateway with every line it logs (structlog, stdlib, audit) captured as JSON."""
    environ = {
        "AIRFLOW_GATEWAY__GATEWAY__STATE_DIR": str(tmp_path / "state"),
        "AIRFLOW_GATEWAY__AIRFLOW__EXECUTABLE": AIRFLOW,
        "AIRFLOW_GATEWAY__REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": TOKEN,
        **{f"AIRFLOW_GATEWAY__{k}": v for k, v in (settings or {}).items()},
    }
    config = load_config(environ)
    out = io.StringIO()
    runner = runner or FakeRunner()
    registry = CollectorRegistry()
    app = create_app(
        config,
        install=AirflowInstall(AIRFLOW, "3.3.2", frozenset()),
        runner=runner,
        authorize=authorize,
        proxy=proxy,
        log_stream=out,
        registry=registry,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(json_formatter(app.api.redactor))
    gateway_log = logging.getLogger("gateway")
    gateway_log.addHandler(handler)
    try:
        yield UnitGateway(app, runner, registry, out)
    finally:
        gateway_log.removeHandler(handler)
