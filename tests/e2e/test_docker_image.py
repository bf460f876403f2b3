"""The Dockerfile, built and run on a real Docker engine (issue 16).

The official Airflow image cannot be pulled here, so the image is built on a stand-in made
locally (tests/support/docker.py): Debian minbase from debootstrap, then Python and Airflow
in a Dockerfile stage. Both bases are cached in the engine's data root by content; the
gateway image itself is built every session (the ``docker_images`` fixture of
tests/e2e/conftest.py, shared with tests/e2e/test_compose_stack.py). Skipped, with the
reason, where no engine starts.
"""

from __future__ import annotations

import json
import re
import tarfile
import time
from pathlib import Path

import pytest

from tests.support.docker import Engine, Images
from tests.support.http import get
from tests.support.servers import free_port
from tests.support.upstreams import EchoUpstream

pytestmark = pytest.mark.timeout(2400)  # a fresh engine: debootstrap + Airflow install + build
TOKEN = "image-test-token-0123456789"
COMPILERS = re.compile(r"(^|/)(s?bin)/(gcc|cc|c\+\+|g\+\+|clang|tcc|x86_64-linux-gnu-gcc[-0-9.]*|as|ld)$")


def _health(engine: Engine, container: str) -> str:
    out = engine.docker("inspect", "-f", "{{json .State.Health}}", container).stdout
    state = json.loads(out)
    return str(state["Status"]) if state else "none"


def test_image_runs_unprivileged_turns_healthy_and_serves(docker_images: Images) -> None:
    """Run as the image says (uid 50000, host network): HEALTHCHECK goes healthy, the API and proxy work."""
    upstream = EchoUpstream()
    port = free_port()
    name = f"agw-test-{port}"
    engine = docker_images.engine
    engine.docker(
        "run", "-d", "--name", name, "--network=host",
        # Docker's own HEALTHCHECK (the image's probe), run every 2 s instead of 30 s for the test.
        "--health-interval=2s", "--health-start-period=60s",
        "-e", f"GATEWAY_BIND=127.0.0.1:{port}",
        "-e", f"AIRFLOW_GATEWAY__REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN={TOKEN}",
        "-e", f"AIRFLOW_GATEWAY__PROXY__UPSTREAM={upstream.url}",
        docker_images.gateway,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while (status := _health(engine, name)) != "healthy":
            assert status in {"starting", "none"}, engine.docker("logs", name).stderr.decode()[-3000:]
            assert time.monotonic() < deadline, f"not healthy: {status}"
            time.sleep(1)
        assert engine.docker("inspect", "-f", "{{.Config.User}}", name).stdout.decode().strip() == "50000:0"
        assert engine.docker("exec", name, "id", "-u").stdout.decode().strip() == "50000"

        base = f"http://127.0.0.1:{port}"
        reply = get(f"{base}/admin/rest_api/api?api=version", headers={"rest_api_plugin_http_token": TOKEN})
        assert reply.status == 200, reply.body[:2000]
        assert reply.json["output"]["stdout"].strip() == "3.3.2"  # the Airflow CLI inside the image
        proxied = get(f"{base}/some/airflow/path?x=1")
        assert proxied.status == 200 and proxied.json["target"] == "/some/airflow/path?x=1", proxied.body[
            :500
        ]
        logs = engine.docker("logs", name)
        assert b"Traceback" not in logs.stdout + logs.stderr
    finally:
        engine.docker("rm", "-f", name, check=False)
        upstream.stop()


def test_final_image_has_no_build_secret_and_no_compiler(docker_images: Images, tmp_path: Path) -> None:
    """The CA file and sources stay in the builder stage; nothing can compile in the final image."""
    engine = docker_images.engine
    container = engine.docker("create", docker_images.gateway).stdout.decode().strip()
    try:
        export = tmp_path / "image.tar"
        engine.docker("export", "-o", str(export), container, timeout=600)
    finally:
        engine.docker("rm", container, check=False)
    with tarfile.open(export) as tar:
        names = [member.name.lstrip("./") for member in tar]
    assert [n for n in names if n.endswith("build-ca.crt")] == []
    assert [n for n in names if n == "build" or n.startswith("build/")] == []
    assert [n for n in names if COMPILERS.search(n)] == []
    assert "opt/gateway/venv/bin/airflow-gateway" in names
    history = engine.docker("history", "--no-trunc", docker_images.gateway).stdout.decode()
    assert "build-ca" not in history and "PIP_CERT" not in history
    config = json.loads(engine.docker("image", "inspect", docker_images.gateway).stdout)[0]["Config"]
    assert not [e for e in config["Env"] if e.startswith(("PIP_CERT", "REQUESTS_CA_BUNDLE"))]
