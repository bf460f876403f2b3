"""Configuration: TOML + env + airflow.cfg migration, validated once, errors name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_need_nothing(tmp_path: Path) -> None:
    """With no file and no env, the defaults are usable: plugin header name, open auth."""
    cfg = load_config({"PATH": "/usr/bin"})
    assert cfg.plugin_auth.header_name == "rest_api_plugin_http_token"
    assert cfg.plugin_auth.expected_token is None
    assert cfg.cli.filter_loading_messages is True


def test_toml_then_env_precedence(tmp_path: Path) -> None:
    """Environment variables override the TOML file, which overrides defaults."""
    toml = write(tmp_path / "gw.toml", '[cli]\ndefault_timeout = 30\n[cli.timeouts]\ntest = 300\n')
    cfg = load_config({"AIRFLOW_GATEWAY__CLI__DEFAULT_TIMEOUT": "45", "AIRFLOW_GATEWAY__CLI__TIMEOUTS__BACKFILL": "900"},
                      toml)
    assert cfg.cli.default_timeout_s == 45
    assert cfg.cli.timeouts_s == {"test": 300, "backfill": 900}


BAD = [
    pytest.param("[cli]\ndefault_timeout = 'abc'\n", "cli.default_timeout has value 'abc'", id="not-a-number"),
    pytest.param("[cli]\nmax_output_bytes = 0\n", "cli.max_output_bytes", id="zero"),
    pytest.param("[cli]\ndefault_timeout_s = 3\n", "unknown setting cli.default_timeout_s", id="typo"),
    pytest.param("[airflow]\ndialect = '4'\n", "airflow.dialect has value '4'", id="dialect"),
    pytest.param("[proxy]\nupstream = 'ftp://x'\n", "proxy.upstream", id="url"),
    pytest.param("[rest_api_plugin]\nrest_api_plugin_http_token_header_name = 'a b'\n",
                 "rest_api_plugin_http_token_header_name", id="header-name"),
    pytest.param("not toml at all [", "config file", id="syntax"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_settings_fail_naming_the_setting(tmp_path: Path, text: str, message: str) -> None:
    """A bad value stops start-up with a message that names the setting."""
    with pytest.raises(ConfigError) as info:
        load_config({}, write(tmp_path / "gw.toml", text))
    assert message in str(info.value)


def test_secret_values_are_never_echoed(tmp_path: Path) -> None:
    """An invalid secret is reported without its value, and the Secret repr is masked."""
    with pytest.raises(ConfigError) as info:
        load_config({}, write(tmp_path / "gw.toml", "[rest_api_plugin]\nrest_api_plugin_expected_http_token = 12345\n"))
    assert "12345" not in str(info.value)
    cfg = load_config({"AIRFLOW_GATEWAY__REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(cfg)


def test_unknown_env_setting_is_an_error() -> None:
    """A misspelt AIRFLOW_GATEWAY__ variable fails instead of being ignored."""
    with pytest.raises(ConfigError, match="AIRFLOW_GATEWAY__CLI__TIMEOUT"):
        load_config({"AIRFLOW_GATEWAY__CLI__TIMEOUT": "5"})


def test_airflow_cfg_rest_api_plugin_section_is_read(tmp_path: Path) -> None:
    """Users of the original plugin keep their [rest_api_plugin] settings in airflow.cfg."""
    (tmp_path / "airflow.cfg").write_text(
        "[core]\ndags_folder = /x\n\n[rest_api_plugin]\nlog_loading = False\n"
        "filter_loading_messages_in_cli_response = False\n"
        "rest_api_plugin_http_token_header_name = my_token_header\n"
        "rest_api_plugin_expected_http_token = changeme\n"
    )
    cfg = load_config({"AIRFLOW_HOME": str(tmp_path)})
    assert cfg.plugin_auth.header_name == "my_token_header"
    assert cfg.plugin_auth.expected_token is not None and cfg.plugin_auth.expected_token.value == "changeme"
    assert cfg.cli.filter_loading_messages is False
    assert any("airflow.cfg" in s for s in cfg.sources)


def test_gateway_config_overrides_airflow_cfg(tmp_path: Path) -> None:
    """The gateway's own file wins over the migrated airflow.cfg values."""
    (tmp_path / "airflow.cfg").write_text("[rest_api_plugin]\nrest_api_plugin_expected_http_token = old\n")
    toml = write(tmp_path / "gw.toml", "[rest_api_plugin]\nrest_api_plugin_expected_http_token = 'new'\n")
    cfg = load_config({"AIRFLOW_HOME": str(tmp_path)}, toml)
    assert cfg.plugin_auth.expected_token is not None and cfg.plugin_auth.expected_token.value == "new"
