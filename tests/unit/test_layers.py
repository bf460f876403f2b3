"""The layout reads like the architecture: no module of ``gateway/`` imports a higher layer.

Every module is placed in a layer below (by longest dotted prefix); a new module that fits
none fails the test until it is placed.  Imports under ``TYPE_CHECKING`` count too: a type
that needs a higher layer is a design smell as much as a runtime import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "gateway"

#: Lowest first.  A module may import its own layer and the ones before it.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "data and primitives: tables, the envelope, stdlib-only helpers",
        [
            "gateway", "gateway.cli", "gateway.cli.spec", "gateway.cli.apis", "gateway.cli.common",
            "gateway.cli.airflow3", "gateway.cli.airflow2", "gateway.cli.airflow110", "gateway.cli.dialects",
            "gateway.cli.values", "gateway.cli.proctree", "gateway.cli.cpugroup", "gateway.cli.warm", "gateway.cli.warm.dialects",
            "gateway.cli.warm.server", "gateway.cli.warm.freshness", "gateway.cli.warm.process",
            "gateway.envelope", "gateway.redact", "gateway.forwarded", "gateway.identity",
            "gateway.identity.principal", "gateway.identity.client", "gateway.policy", "gateway.policy.model",
            "gateway.jobs", "gateway.jobs.store", "gateway.jobs.sse", "gateway.jobs.output",
            "gateway.jobs.openapi", "gateway.metrics_files", "gateway.multiproc", "gateway.upstream",
            "gateway.worker", "gateway.builtins", "gateway.sqlstore",
        ],
    ),
    (
        "foundation: errors, settings, logging, request bodies, DAG files",
        ["gateway.errors", "gateway.config", "gateway.settings", "gateway.logging", "gateway.body",
         "gateway.dagfiles"],
    ),
    (
        "mechanisms: planning and running CLI commands, identity, policy, audit, metrics, proxy",
        [
            "gateway.cli.interpreter", "gateway.cli.runner", "gateway.cli.output", "gateway.cli.probe",
            "gateway.cli.daemons", "gateway.cli.readback", "gateway.cli.warm.runner", "gateway.dagsync110",
            "gateway.identity.authenticator", "gateway.identity.jwt", "gateway.identity.plugin_token",
            "gateway.identity.tokens", "gateway.policy.engine", "gateway.policy.loader", "gateway.policy.jobs",
            "gateway.policy.explain", "gateway.policy.enforce", "gateway.audit", "gateway.metrics",
            "gateway.proxy", "gateway.health", "gateway.compat", "gateway.jobs.runner", "gateway.jobs.streams",
            "gateway.identity.oidc", "gateway.sessions", "gateway.sessions.store", "gateway.sessions.web",
        ],
    ),
    ("the call service", ["gateway.calls"]),
    ("features: builtin APIs and jobs", ["gateway.builtins.", "gateway.jobs.service", "gateway.jobs.endpoints",
                                         "gateway.jobs.wiring"]),
    ("endpoints and documents", ["gateway.api", "gateway.page", "gateway.openapi", "gateway.docs",
                                 "gateway.sample_config"]),
    ("the composition root", ["gateway.app"]),
    ("entry points", ["gateway.commands", "gateway.gunicorn_conf", "gateway.healthcheck"]),
]  # fmt: skip


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            if module == name or (name.endswith(".") and module.startswith(name)):
                if best is None or len(name) > best[0]:
                    best = (len(name), index)
    return None if best is None else best[1]


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The gateway modules ``path`` imports (``from gateway.x import y`` counts y when a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "gateway":
                continue
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "gateway"}
    return found


ALL = modules()


def test_every_module_has_a_layer() -> None:
    assert [name for name in ALL if layer_of(name) is None] == []


@pytest.mark.parametrize("module", sorted(ALL))
def test_no_module_imports_a_higher_layer(module: str) -> None:
    mine = layer_of(module)
    assert mine is not None
    higher = {
        dep: LAYERS[layer][0]
        for dep in imports_of(ALL[module], set(ALL))
        if (layer := layer_of(dep)) is not None and layer > mine
    }
    assert higher == {}, f"{module} ({LAYERS[mine][0]}) imports higher layers"
