"""The generated sample gateway.toml (gateway/sample_config.py, examples/gateway.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.config import check_setting, load_config, setting_names
from gateway.sample_config import SECTIONS, SETTINGS, render

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gateway.toml"


def test_every_setting_and_section_is_described() -> None:
    assert set(SETTINGS) == set(setting_names())
    assert set(SECTIONS) == {section for section, _ in setting_names()}


def test_checked_in_sample_is_the_generated_one() -> None:
    """examples/gateway.toml is regenerated with `airflow-gateway sample-config > examples/gateway.toml`."""
    assert SAMPLE.read_text() == render()


def test_sample_loads_and_lists_every_setting(tmp_path: Path) -> None:
    config = load_config({}, SAMPLE)
    assert config.proxy.upstream == "http://127.0.0.1:8080"
    text = render()
    for section, key in setting_names():
        assert f"[{section}]" in text
        assert f"# {key} = " in text or f"\n{key} = " in text


@pytest.mark.parametrize(("section", "key"), list(SETTINGS), ids=lambda v: str(v))
def test_each_example_value_is_valid(section: str, key: str) -> None:
    """Uncommenting any one example gives a value its validator accepts."""
    value = tomllib.loads(f"v = {SETTINGS[(section, key)][0]}")["v"]
    check_setting(section, key, value)
