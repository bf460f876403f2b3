"""Reloading, one module at a time: policy files watched, the master's checked configuration,
the generation shared with forked workers (end to end in tests/e2e/test_reload.py)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.apis import CATALOGUE
from gateway.entry import reloading
from gateway.http.retirement import GENERATIONS, Generations
from gateway.identity.principal import Principal
from gateway.policy.engine import PolicyEngine, Target
from gateway.policy.loader import PolicyFiles, load_policies

ALLOW = '[[rule]]\nid = "all-version"\neffect = "allow"\nprincipals = ["*"]\napis = ["version"]\n'
DENY = '[[rule]]\nid = "no-version"\neffect = "deny"\nprincipals = ["*"]\napis = ["version"]\n'
ADA = Principal("ada", "token", frozenset())


def decide(engine: PolicyEngine) -> tuple[bool, str, str | None]:
    decision = engine.decide(ADA, Target(api=CATALOGUE["version"], values={}), None)
    return decision.allowed, decision.rule_id, decision.policy_version


def test_policy_version_names_the_files_content(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(ALLOW)
    first = load_policies(tmp_path, CATALOGUE)
    assert len(first.version) == 12 and load_policies(tmp_path, CATALOGUE).version == first.version
    (tmp_path / "a.toml").write_text(ALLOW + "# a comment changes the version too\n")
    assert load_policies(tmp_path, CATALOGUE).version != first.version


def test_watched_files_reload_after_the_interval_and_invalid_ones_are_kept_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a.toml").write_text(ALLOW)
    loaded = load_policies(tmp_path, CATALOGUE)
    files = PolicyFiles(tmp_path, CATALOGUE, 0.2, loaded)
    engine = PolicyEngine(loaded, files=files)
    assert decide(engine) == (True, "all-version", loaded.version)
    (tmp_path / "b.toml").write_text(DENY)
    assert decide(engine)[:2] == (True, "all-version")  # not looked at before the interval
    time.sleep(0.25)
    allowed, rule, version = decide(engine)
    assert (allowed, rule) == (False, "no-version") and version not in (None, loaded.version)
    # A broken file: logged, and the policies in force stay (until the next change).
    (tmp_path / "b.toml").write_text(DENY + '[[rule]]\nid = "x"\neffect = "maybe"\n')
    time.sleep(0.25)
    with caplog.at_level(logging.ERROR, logger="gateway.policy"):
        assert decide(engine) == (False, "no-version", version)
    assert "policy files changed but are invalid" in caplog.text and f"version {version}" in caplog.text
    (tmp_path / "b.toml").unlink()
    time.sleep(0.25)
    assert decide(engine) == (True, "all-version", loaded.version)


def test_without_a_watch_the_policies_never_change(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(ALLOW)
    engine = PolicyEngine(load_policies(tmp_path, CATALOGUE))
    (tmp_path / "b.toml").write_text(DENY)
    time.sleep(0.05)
    assert decide(engine)[0] is True


def test_generations_written_by_the_master_are_seen_by_forked_workers() -> None:
    shared = Generations()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: waits for the master's reload, then reports what it sees
        os.close(read)
        deadline = time.monotonic() + 10
        while shared.current == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.write(write, f"{shared.current} {int(shared.stopping)}".encode())
        os._exit(0)
    os.close(write)
    shared.advance()
    shared.stop()
    seen = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert seen == "1 1"


def test_a_reload_keeps_the_running_configuration_when_the_new_one_is_invalid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reloading, "_current", None)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "a.toml").write_text(ALLOW)
    file = tmp_path / "gateway.toml"
    file.write_text(f'[gateway]\nstate_dir = "{tmp_path / "state"}"\n[policy]\ndir = "{policies}"\n')
    environ = {"AIRFLOW_GATEWAY_CONFIG": str(file), "PATH": os.environ.get("PATH", "")}
    log = logging.getLogger("test.reload")
    derived: Any = lambda config: config.cli.max_concurrent  # noqa: E731
    started = reloading.start(environ)
    assert started.policies is not None
    before = GENERATIONS.current
    # Valid: taken, with the new policies.
    (policies / "b.toml").write_text(DENY)
    with caplog.at_level(logging.INFO, logger="test.reload"):
        kept = reloading.reload(environ, log, derived)
    assert kept is not started and kept.policies is not None and len(kept.policies.rules) == 2
    assert "configuration reloaded" in caplog.text
    # Invalid configuration, then invalid policies: refused, the running one kept.
    file.write_text(file.read_text() + '[cli]\ndefault_timeout = "soon"\n')
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="test.reload"):
        assert reloading.reload(environ, log, derived) is kept
    assert "cli.default_timeout" in caplog.text and "stays in force" in caplog.text
    file.write_text(file.read_text().replace('default_timeout = "soon"', "default_timeout = 30"))
    (policies / "c.toml").write_text('[[rule]]\nid = "x"\neffect = "maybe"\n')
    assert reloading.reload(environ, log, derived) is kept
    (policies / "c.toml").unlink()
    # Settings that need a restart are named.
    file.write_text(file.read_text() + "[server]\nworkers = 7\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="test.reload"):
        reloading.reload(environ, log, derived)
    assert "take effect on restart only: server.workers" in caplog.text
    # Every reload retires the older workers, valid or not.
    assert GENERATIONS.current == before + 4


def test_a_policy_file_vanishing_while_read_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file replaced between the look and the read (an editor's rename, a ConfigMap swap):
    no error for the request that looked, the running policies kept, the change loaded next time."""
    from gateway.policy import loader

    (tmp_path / "a.toml").write_text(ALLOW)
    loaded = load_policies(tmp_path, CATALOGUE)
    engine = PolicyEngine(loaded, files=PolicyFiles(tmp_path, CATALOGUE, 0.1, loaded))
    (tmp_path / "b.toml").write_text(DENY)
    real = loader._version
    calls: list[int] = []

    def vanishing(files: Any) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise FileNotFoundError("b.toml")
        return real(files)

    monkeypatch.setattr(loader, "_version", vanishing)
    time.sleep(0.15)
    assert decide(engine)[:2] == (True, "all-version")
    time.sleep(0.15)
    assert decide(engine)[:2] == (False, "no-version")


def test_the_airflow_probe_runs_in_a_session_of_its_own(tmp_path: Path) -> None:
    """A signal to the gateway's process group (dumb-init forwards SIGTERM and SIGHUP to it) must
    not kill the probe of a worker still booting: gunicorn took that for a boot failure and halted
    (found in CI: a stop right after a reload).  The fake ``airflow`` prints its session id."""
    from gateway.cli.probe import probe

    fake = tmp_path / "airflow"
    fake.write_text("#!/bin/sh\nps -o sid= -p $$\n")
    fake.chmod(0o755)
    found = probe(str(fake), {"PATH": os.environ.get("PATH", "")})
    assert int(found.version) != os.getsid(0)
