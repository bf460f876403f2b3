"""deploy/compose.yaml and deploy/kubernetes/gateway.yaml: parsed and checked against the settings
the gateway really has (a misspelt AIRFLOW_GATEWAY__* name would stop start-up, or be ignored if
it were a GATEWAY_* gunicorn variable); the Kubernetes objects are validated against the API
schemas of a current Kubernetes release (kubernetes-validate).  Neither is brought up here: the
compose stack is, on locally built images, by tests/e2e/test_compose_stack.py; there is no
cluster for the Kubernetes one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from gateway.cli.apis import CATALOGUE
from gateway.config.loader import ENV_PREFIX, load_config, setting_names
from gateway.config.settings import BY_ALIAS
from gateway.policy.loader import load_policies

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
    assert set(services) == {"postgres", "redis", "gateway"} | AIRFLOW_SERVICES
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


def test_compose_gateway_state_lives_in_postgres_and_redis() -> None:
    """Jobs and sessions in PostgreSQL (a database of its own, made by postgres-init.sql on the
    stack's server), rate limits in Redis: nothing the gateway must keep is in its container."""
    services = compose()["services"]
    env = services["gateway"]["environment"]
    assert env["AIRFLOW_GATEWAY__JOBS__DATABASE_URL"] == "postgresql://gateway:gateway@postgres:5432/gateway"
    assert "AIRFLOW_GATEWAY__SESSIONS__DATABASE_URL" not in env  # defaults to the jobs database
    assert env["AIRFLOW_GATEWAY__RATE_LIMITS__STORAGE_URL"] == "redis://redis:6379/0"
    assert env["AIRFLOW_GATEWAY__RATE_LIMITS__RULES"] == "${GATEWAY_RATE_LIMIT_RULES:-[]}"
    assert services["gateway"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "api-server": {"condition": "service_healthy"},
    }
    # The init script is mounted where the postgres image runs it, and makes that role and database.
    mounts = services["postgres"]["volumes"]
    assert "./postgres-init.sql:/docker-entrypoint-initdb.d/gateway.sql:ro" in mounts
    init = (COMPOSE.parent / "postgres-init.sql").read_text()
    assert re.search(r"^CREATE ROLE gateway LOGIN PASSWORD 'gateway';$", init, re.MULTILINE)
    assert re.search(r"^CREATE DATABASE gateway OWNER gateway;$", init, re.MULTILINE)
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_compose_images_can_be_replaced() -> None:
    """Each image is a variable with the official image as its default (the test sets local ones)."""
    services = compose()["services"]
    images = {name: svc["image"] for name, svc in services.items()}
    assert images["postgres"] == "${POSTGRES_IMAGE:-postgres:16}"
    assert images["redis"] == "${REDIS_IMAGE:-redis:7}"
    assert images["gateway"] == "${GATEWAY_IMAGE:-airflow-gateway:3.3.2}"
    airflow = "${AIRFLOW_IMAGE:-apache/airflow:3.3.2-python3.12}"
    assert {images[name] for name in AIRFLOW_SERVICES} == {airflow}
    assert services["gateway"]["build"]["args"]["BASE_IMAGE"] == airflow


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


def objects() -> dict[tuple[str, str], dict[str, Any]]:
    """The manifest's objects by (kind, name)."""
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(KUBERNETES.read_text())}


def test_kubernetes_manifest_names_real_settings_and_loads(tmp_path: Path) -> None:
    docs = objects()
    assert set(docs) == {
        ("ConfigMap", "airflow-gateway"), ("ConfigMap", "airflow-gateway-policies"),
        ("Secret", "airflow-gateway"), ("Deployment", "airflow-gateway"), ("Service", "airflow-gateway"),
        ("PodDisruptionBudget", "airflow-gateway"), ("HorizontalPodAutoscaler", "airflow-gateway"),
        ("Service", "airflow-gateway-postgres"), ("Service", "airflow-gateway-redis"),
    }  # fmt: skip
    deployment = docs["Deployment", "airflow-gateway"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item for item in container["env"]}
    check_env_names(list(env))
    assert pod["securityContext"]["runAsUser"] == 50000 and pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["name"]: m for m in container["volumeMounts"]}

    # The ConfigMap's gateway.toml is mounted where AIRFLOW_GATEWAY_CONFIG points, and it loads.
    assert env["AIRFLOW_GATEWAY_CONFIG"]["value"] == mounts["config"]["mountPath"]
    toml_text = docs["ConfigMap", "airflow-gateway"]["data"]["gateway.toml"]
    tomllib.loads(toml_text)
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(toml_text)
    config = load_config({}, config_file)
    assert config.proxy.upstream == "http://airflow-api-server:8080"
    assert str(config.gateway.state_dir) == mounts["state"]["mountPath"]
    assert str(config.deploy.dags_folder) == mounts["dags"]["mountPath"]
    # Every replica signs with the one key of the Secret (not a key generated per pod).
    assert config.assertion.key_file is not None
    assert str(config.assertion.key_file.parent) == mounts["keys"]["mountPath"]
    keys = next(v for v in pod["volumes"] if v["name"] == "keys")["secret"]
    assert (
        keys["secretName"] == "airflow-gateway" and keys["items"][0]["path"] == config.assertion.key_file.name
    )
    assert keys["items"][0]["key"] in docs["Secret", "airflow-gateway"]["stringData"]
    # The shared stores come from the Secret, named by the external Services.
    secret = docs["Secret", "airflow-gateway"]["stringData"]
    for variable, key, service in (
        ("AIRFLOW_GATEWAY__JOBS__DATABASE_URL", "jobs-database-url", "airflow-gateway-postgres"),
        ("AIRFLOW_GATEWAY__RATE_LIMITS__STORAGE_URL", "redis-url", "airflow-gateway-redis"),
    ):
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": "airflow-gateway", "key": key}
        assert f"@{service}:" in secret[key] or f"//{service}:" in secret[key]
        assert docs["Service", service]["spec"]["type"] == "ExternalName"
    # The policies ConfigMap is mounted at policy.dir and loads.
    assert str(config.policy.dir) == mounts["policies"]["mountPath"]
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    for name, text in docs["ConfigMap", "airflow-gateway-policies"]["data"].items():
        (policy_dir / name).write_text(text)
    assert load_policies(policy_dir, CATALOGUE).rules

    # Probes and the Service hit the port gunicorn binds; the PDB and HPA target the Deployment.
    port = int(env["GATEWAY_BIND"]["value"].rsplit(":", 1)[1])
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    service = docs["Service", "airflow-gateway"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    labels = deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == labels
    assert docs["PodDisruptionBudget", "airflow-gateway"]["spec"]["selector"]["matchLabels"] == labels
    hpa = docs["HorizontalPodAutoscaler", "airflow-gateway"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "airflow-gateway"}
    assert hpa["minReplicas"] >= 2


def test_kubernetes_manifest_validates_against_the_api_schemas() -> None:
    """kubernetes-validate, the Kubernetes API's own OpenAPI schemas of a current release, strict
    (unknown fields refused); a broken copy is refused too, so the check is not vacuous."""
    version = kubernetes_validate.latest_version()
    assert tuple(int(x) for x in version.split(".")[:2]) >= (1, 37)
    for doc in objects().values():
        kubernetes_validate.validate(doc, version, strict=True)  # raises with the path of the error
    broken = objects()["Deployment", "airflow-gateway"]
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)
