"""gateway/entry/healthcheck.py: the image's HEALTHCHECK probes where server.bind (GATEWAY_BIND) says."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.entry.healthcheck import configured_bind, main, probe_url


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("0.0.0.0:8080", "http://127.0.0.1:8080/healthz"),
        ("127.0.0.1:9001", "http://127.0.0.1:9001/healthz"),
        ("[::]:8080", "http://127.0.0.1:8080/healthz"),
        (":8080", "http://127.0.0.1:8080/healthz"),
        ("10.1.2.3:80,127.0.0.1:81", "http://10.1.2.3:80/healthz"),
    ],
)
def test_probe_url_follows_the_bind(bind: str, url: str) -> None:
    assert probe_url(bind) == url


def test_the_probe_reads_server_bind_like_gunicorn(tmp_path: Path) -> None:
    """The file, AIRFLOW_GATEWAY__SERVER__BIND or the older GATEWAY_BIND: the same setting."""
    assert configured_bind({}) == "127.0.0.1:8000"
    (tmp_path / "gw.toml").write_text("[server]\nbind = '0.0.0.0:9100'\n")
    assert configured_bind({"AIRFLOW_GATEWAY_CONFIG": str(tmp_path / "gw.toml")}) == "0.0.0.0:9100"
    assert configured_bind({"GATEWAY_BIND": "0.0.0.0:8080"}) == "0.0.0.0:8080"
    assert configured_bind(
        {"AIRFLOW_GATEWAY__SERVER__BIND": "127.0.0.1:9", "GATEWAY_BIND": "0.0.0.0:8080"}
    ) == ("127.0.0.1:9")


def test_a_bad_configuration_is_unhealthy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_BIND", "nonsense")
    assert main() == 1
    assert "server.bind" in capsys.readouterr().err
