"""A setting is written once: as an attribute of its section in gateway/config/settings.py.

Adding one is one edit plus the regenerated documents.  The first test adds a setting the
way a developer would (an attribute in a section's class body; here in a subclass, so the
real configuration stays as it is) and sees it loaded from the file and the environment,
validated, typed, listed by check-config, documented in the reference and present in the
sample file.  The drift guard fails when a setting's name is written as a string anywhere
else in the gateway's code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gateway.config.documents import reference, render
from gateway.config.loader import ConfigError, describe, load_config
from gateway.config.settings import (
    BY_NAME,
    CliConfig,
    GatewayConfig,
    JwtConfig,
    Section,
    derived,
    integer,
    section,
    setting,
)

ROOT = Path(__file__).resolve().parents[2]
ENV = "AIRFLOW_GATEWAY__CLI__FAKE_LIMIT"


class CliWithFake(CliConfig):
    fake_limit = setting(integer(1), 7, "A limit only this test has.")


class ConfigWithFake(GatewayConfig):
    cli = section(CliWithFake)


def test_a_new_setting_is_loaded_validated_documented_and_sampled(tmp_path: Path) -> None:
    record = CliWithFake.fake_limit
    assert (record.name, record.env) == ("cli.fake_limit", ENV)
    assert record in ConfigWithFake.registry().settings

    # Loaded: its default, from the file, from the environment (which wins); typed.
    assert load_config({}, schema=ConfigWithFake).cli.fake_limit == 7
    (tmp_path / "gw.toml").write_text("[cli]\nfake_limit = 9\ndefault_timeout = 30\n")
    from_file = load_config({}, tmp_path / "gw.toml", schema=ConfigWithFake)
    assert isinstance(from_file.cli, CliWithFake)
    assert (from_file.cli.fake_limit, from_file.cli.default_timeout) == (9, 30.0)
    assert load_config({ENV: "11"}, tmp_path / "gw.toml", schema=ConfigWithFake).cli.fake_limit == 11
    assert from_file.cli.files_dir == from_file.gateway.state_dir / "files"  # the section's derive still runs

    # Validated: a bad value names the setting and where it came from.
    with pytest.raises(
        ConfigError, match=rf"cli\.fake_limit has value '0': must be at least 1 \(from .*{ENV}"
    ):
        load_config({ENV: "0"}, schema=ConfigWithFake)
    (tmp_path / "bad.toml").write_text("[cli]\nfake_limit = 'many'\n")
    with pytest.raises(ConfigError, match=r"cli\.fake_limit has value 'many': expected an integer"):
        load_config({}, tmp_path / "bad.toml", schema=ConfigWithFake)

    # Listed by check-config.
    assert describe(from_file)["cli"]["fake_limit"] == 9

    # Documented: a row in the reference, in [cli], after the section's own settings.
    text = reference(ConfigWithFake)
    row = f"| `cli.fake_limit` | `{ENV}` | integer ≥ 1 | `7` | A limit only this test has. |"
    assert row in text
    assert text.index("## `[cli]`") < text.index(row) < text.index("## `[rest_api_plugin]`")
    assert text.index("| `cli.idle_cgroup` |") < text.index(row)

    # In the sample file, commented out with its default, in [cli]; and the sample loads.
    sample = render(ConfigWithFake)
    entry = "# A limit only this test has. Default: 7.\n# fake_limit = 7\n"
    assert entry in sample
    assert sample.index("\n[cli]\n") < sample.index(entry) < sample.index("\n[rest_api_plugin]\n")
    (tmp_path / "sample.toml").write_text(sample.replace("# fake_limit = 7", "fake_limit = 8"))
    assert load_config({}, tmp_path / "sample.toml", schema=ConfigWithFake).cli.fake_limit == 8


def test_the_real_configuration_does_not_have_the_test_setting(tmp_path: Path) -> None:
    assert "cli.fake_limit" not in BY_NAME
    assert "fake_limit" not in reference() and "fake_limit" not in render()
    with pytest.raises(ConfigError, match="unknown setting cli.fake_limit"):
        load_config({ENV: "3"})


def test_sections_are_frozen_and_replace_gives_a_changed_copy() -> None:
    config = load_config({})
    with pytest.raises(AttributeError, match="frozen"):
        config.cli.default_timeout = 1.0  # type: ignore[misc]
    faster = config.replace(cli=config.cli.replace(default_timeout=1.0))
    assert (faster.cli.default_timeout, config.cli.default_timeout) == (1.0, 120.0)
    assert faster.cli.max_concurrent == config.cli.max_concurrent and faster.jobs is config.jobs
    with pytest.raises(TypeError, match="no setting default_timeout_s"):
        config.cli.replace(default_timeout_s=1.0)


def test_a_setting_cannot_hide_a_section_method_and_a_derived_one_must_be_derived() -> None:
    with pytest.raises(TypeError, match="replace is a Section attribute"):

        class Clash(Section):
            replace = setting(integer(0), 0, "Would hide Section.replace.")

    class Underived(Section, doc="A section that forgets to derive its value."):
        computed = derived(integer(0), "Computed at start-up.", default_doc="computed")

    class ConfigWithUnderived(GatewayConfig):
        underived = section(Underived)

    with pytest.raises(TypeError, match=r"Underived\.derive left underived\.computed unset"):
        load_config({}, schema=ConfigWithUnderived)


def test_cross_checks_live_in_their_section() -> None:
    """[jwt]'s check runs on load (one key source), and names the settings by their records."""
    with pytest.raises(ConfigError, match="jwt: set exactly one of jwt.key_file, jwt.key_env, jwt.jwks_url"):
        load_config({"AIRFLOW_GATEWAY__JWT__ALGORITHMS": "RS256"})
    assert JwtConfig.check is not Section.check


def _string_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_no_setting_name_is_written_outside_settings_py() -> None:
    """A look-up such as ``values["cli.default_timeout"]`` is a second definition in disguise:
    use the attribute (``config.cli.default_timeout``) or the record (``CliConfig.default_timeout.name``).
    Prose that mentions a setting inside a longer message is fine."""
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in sorted((ROOT / "gateway").rglob("*.py"))
        if path != ROOT / "gateway" / "config" / "settings.py"
        for line, text in _string_literals(path)
        if text in BY_NAME
    ]
    assert not found, "setting names written as strings:\n" + "\n".join(found)
