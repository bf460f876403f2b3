"""deploy/compose.yaml and deploy/kubernetes/gateway.yaml: parsed and checked against the settings
the gateway really has (a misspelt AIRFLOW_GATEWAY__* name would stop start-up, or be ignored if
it were a GATEWAY_* gunicorn variable). Neither is brought up here: no registry is reachable for
the postgres and apache/airflow images, and there is no Kubernetes cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from gateway.config.loader import ENV_PREFIX, load_config, setting_names
from gateway.config.settings import BY_ALIAS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
KUBERNETES = ROOT / "deploy" / "kubernetes" / "gateway.yaml"
AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer"}


def check_env_names(names: list[str]) -> None:
    """Every AIRFLOW_GATEWAY__SECTION__KEY is a real setting; every GATEWAY_* one an older name of one."""
    settings = set(setting_names())
    for name in names:
        if name.startswith(ENV_PREFIX):
            parts = name[len(ENV_PREFIX) :].lower().split("__")
            assert (parts[0], parts[1]) in settings, f"{name}: no such gateway setting"
        elif name.startswith("GATEWAY_"):
            assert name in BY_ALIAS, (
                f"{name}: not an older name of a [server] setting (gateway/config/settings.py)"
            )


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_compose_has_postgres_airflow_and_the_gateway_in_front() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "gateway"} | AIRFLOW_SERVICES
    commands = {name: services[name]["command"][0] for name in AIRFLOW_SERVICES}
    assert commands == {
        "airflow-init": "db", "api-server": "api-server", "scheduler": "scheduler",
        "dag-processor": "dag-processor", "triggerer": "triggerer",
    }  # fmt: skip
    # One metadata database and one Execution API for every Airflow component and the gateway's CLI.
    for name in AIRFLOW_SERVICES | {"gateway"}:
        env = services[name]["environment"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/", name
    assert "8080" in services["api-server"]["command"]


def test_compose_gateway_settings_and_ports() -> None:
    services = compose()["services"]
    gateway = services["gateway"]
    check_env_names(list(gateway["environment"]))
    assert gateway["environment"]["AIRFLOW_GATEWAY__PROXY__UPSTREAM"] == "http://api-server:8080"
    assert gateway["build"]["context"] == ".." and (COMPOSE.parent / ".." / "Dockerfile").resolve().is_file()
    # Only the gateway is published, and on loopback.
    published = {name: svc.get("ports", []) for name, svc in services.items() if svc.get("ports")}
    assert published == {"gateway": ["127.0.0.1:${GATEWAY_PORT:-8000}:8080"]}
    assert gateway["environment"]["GATEWAY_BIND"].endswith(":8080")
    assert "dags:/opt/airflow/dags" in gateway["volumes"]
    assert gateway["environment"]["AIRFLOW_GATEWAY__DEPLOY__DAGS_FOLDER"] == "/opt/airflow/dags"


def test_compose_config_validates_with_docker_compose(tmp_path: Path) -> None:
    """`docker-compose config` (Debian's docker-compose; no engine needed) accepts the file."""
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (scripts/bootstrap.d/50-docker.sh installs it)")
    env = {
        **os.environ, "AIRFLOW_FERNET_KEY": "k", "AIRFLOW_SECRET_KEY": "s", "AIRFLOW_JWT_SECRET": "j",
        "GATEWAY_TOKEN": "t",
    }  # fmt: skip
    done = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    env.pop("GATEWAY_TOKEN")
    missing = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode != 0 and "GATEWAY_TOKEN" in missing.stderr


def test_kubernetes_manifest_names_real_settings_and_loads(tmp_path: Path) -> None:
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(KUBERNETES.read_text())}
    assert set(docs) == {"ConfigMap", "Deployment", "Service"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item for item in container["env"]}
    check_env_names(list(env))
    assert pod["securityContext"]["runAsUser"] == 50000 and pod["securityContext"]["runAsNonRoot"] is True

    # The ConfigMap's gateway.toml is mounted where AIRFLOW_GATEWAY_CONFIG points, and it loads.
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert env["AIRFLOW_GATEWAY_CONFIG"]["value"] == f"{mount['mountPath']}/gateway.toml"
    toml_text = docs["ConfigMap"]["data"]["gateway.toml"]
    tomllib.loads(toml_text)
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(toml_text)
    config = load_config({}, config_file)
    assert config.proxy.upstream == "http://airflow-api-server:8080"
    state = next(m for m in container["volumeMounts"] if m["name"] == "state")
    assert str(config.gateway.state_dir) == state["mountPath"]
    dags = next(m for m in container["volumeMounts"] if m["name"] == "dags")
    assert str(config.deploy.dags_folder) == dags["mountPath"]

    # Probes and the Service hit the port gunicorn binds.
    port = int(env["GATEWAY_BIND"]["value"].rsplit(":", 1)[1])
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert docs["Service"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
