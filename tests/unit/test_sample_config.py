"""The generated sample gateway.toml (gateway/config/documents.py, examples/gateway.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.config.documents import ACTIVE, render, sample_value, toml_value
from gateway.config.loader import load_config
from gateway.config.settings import BY_NAME, SETTINGS, Setting

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gateway.toml"


def test_checked_in_sample_is_the_generated_one() -> None:
    """examples/gateway.toml is regenerated with `airflow-gateway sample-config > examples/gateway.toml`."""
    assert SAMPLE.read_text() == render(), "run: airflow-gateway sample-config > examples/gateway.toml"


def test_sample_loads_and_lists_every_setting() -> None:
    config = load_config({}, SAMPLE)
    assert config.proxy.upstream == "http://127.0.0.1:8080"
    assert set(ACTIVE) <= set(BY_NAME)
    text = render()
    for setting in SETTINGS:
        assert f"[{setting.section}]" in text
        assert f"\n# {setting.key} = " in text or f"\n{setting.key} = " in text
        if setting.secret:
            assert setting.env in text  # where a secret had better come from


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_each_sample_value_is_valid(setting: Setting, tmp_path: Path) -> None:
    """Uncommenting any one line gives a value the gateway accepts (API names checked too)."""
    value = sample_value(setting)
    assert value is not None, f"{setting.name}: give it a default or an example"
    line = f"[{setting.section}]\n{setting.key} = {toml_value(value)}\n"
    assert tomllib.loads(line)[setting.section][setting.key] == value
    config_file = tmp_path / "one.toml"
    needs = {"jwt.key_file", "jwt.key_env", "jwt.jwks_url", "jwt.algorithms", "auth.allow_anonymous"}
    needs |= {"oidc.issuer", "oidc.client_id", "oidc.client_secret_env", "oidc.client_secret_file"}
    if setting.name in needs or setting.name == "rest_api_plugin.airflow_cfg":
        assert setting.parse(value) is not None  # cross-checked with other settings: tested in test_settings
        return
    config_file.write_text(line)
    config = load_config({}, config_file)
    assert config.settings[setting.name] == setting.parse(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (3, "3"),
        (0.5, "0.5"),
        ('a "quoted" \\ string', '"a \\"quoted\\" \\\\ string"'),
        ([], "[]"),
        (["a", "b"], '["a", "b"]'),
        ({}, "{}"),
        ({"test": 300, "dotted.key": "x"}, '{ test = 300, "dotted.key" = "x" }'),
    ],
)
def test_toml_value_round_trips(value: object, text: str) -> None:
    assert toml_value(value) == text
    assert tomllib.loads(f"v = {text}")["v"] == value


def test_toml_value_refuses_what_toml_cannot_hold() -> None:
    with pytest.raises(TypeError):
        toml_value(None)
