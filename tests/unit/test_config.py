"""Configuration: TOML + env + airflow.cfg migration, validated once, errors name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.loader import ConfigError, load_config


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_need_nothing(tmp_path: Path) -> None:
    """With no file and no env, the defaults are usable: plugin header name, open auth."""
    cfg = load_config({"PATH": "/usr/bin"})
    assert cfg.rest_api_plugin.rest_api_plugin_http_token_header_name == "rest_api_plugin_http_token"
    assert cfg.rest_api_plugin.rest_api_plugin_expected_http_token is None
    assert cfg.rest_api_plugin.filter_loading_messages_in_cli_response is True


def test_toml_then_env_precedence(tmp_path: Path) -> None:
    """Environment variables override the TOML file, which overrides defaults."""
    toml = write(tmp_path / "gw.toml", "[cli]\ndefault_timeout = 30\n[cli.timeouts]\ntest = 300\n")
    cfg = load_config(
        {"AIRFLOW_GATEWAY__CLI__DEFAULT_TIMEOUT": "45", "AIRFLOW_GATEWAY__CLI__TIMEOUTS__BACKFILL": "900"},
        toml,
    )
    assert cfg.cli.default_timeout == 45
    assert cfg.cli.timeouts == {"test": 300, "backfill": 900}


BAD = [
    pytest.param(
        "[cli]\ndefault_timeout = 'abc'\n", "cli.default_timeout has value 'abc'", id="not-a-number"
    ),
    pytest.param("[cli]\nmax_output_bytes = 0\n", "cli.max_output_bytes", id="zero"),
    pytest.param("[cli]\ndefault_timeout_s = 3\n", "unknown setting cli.default_timeout_s", id="typo"),
    pytest.param("[airflow]\ndialect = '4'\n", "airflow.dialect has value '4'", id="dialect"),
    pytest.param("[proxy]\nupstream = 'ftp://x'\n", "proxy.upstream", id="url"),
    pytest.param(
        "[rest_api_plugin]\nrest_api_plugin_http_token_header_name = 'a b'\n",
        "rest_api_plugin_http_token_header_name",
        id="header-name",
    ),
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
        load_config(
            {},
            write(tmp_path / "gw.toml", "[rest_api_plugin]\nrest_api_plugin_expected_http_token = 12345\n"),
        )
    assert "12345" not in str(info.value)
    cfg = load_config(
        {"AIRFLOW_GATEWAY__REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "s3cr3t-value"}
    )
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
    assert cfg.rest_api_plugin.rest_api_plugin_http_token_header_name == "my_token_header"
    assert (
        cfg.rest_api_plugin.rest_api_plugin_expected_http_token is not None
        and cfg.rest_api_plugin.rest_api_plugin_expected_http_token.value == "changeme"
    )
    assert cfg.rest_api_plugin.filter_loading_messages_in_cli_response is False
    assert any("airflow.cfg" in s for s in cfg.sources)


def test_gateway_config_overrides_airflow_cfg(tmp_path: Path) -> None:
    """The gateway's own file wins over the migrated airflow.cfg values."""
    (tmp_path / "airflow.cfg").write_text("[rest_api_plugin]\nrest_api_plugin_expected_http_token = old\n")
    toml = write(tmp_path / "gw.toml", "[rest_api_plugin]\nrest_api_plugin_expected_http_token = 'new'\n")
    cfg = load_config({"AIRFLOW_HOME": str(tmp_path)}, toml)
    assert (
        cfg.rest_api_plugin.rest_api_plugin_expected_http_token is not None
        and cfg.rest_api_plugin.rest_api_plugin_expected_http_token.value == "new"
    )


def test_server_settings_from_file_env_and_older_gateway_names(tmp_path: Path) -> None:
    """[server] is gunicorn's: the file, AIRFLOW_GATEWAY__SERVER__*, or the older GATEWAY_* names."""
    assert load_config({}).server.workers == 2 and load_config({}).server.access_log is None
    toml = write(tmp_path / "gw.toml", "[server]\nworkers = 3\nbind = '0.0.0.0:9000'\n")
    assert load_config({}, toml).server.workers == 3
    cfg = load_config({"GATEWAY_WORKERS": "4", "GATEWAY_HEAD_TIMEOUT": "0", "GATEWAY_ACCESS_LOG": "-"}, toml)
    assert (cfg.server.workers, cfg.server.head_timeout, cfg.server.access_log) == (4, 0, "-")
    assert cfg.server.bind == "0.0.0.0:9000"
    both = {"GATEWAY_WORKERS": "4", "AIRFLOW_GATEWAY__SERVER__WORKERS": "5"}
    assert load_config(both).server.workers == 5  # the new name wins
    assert load_config({"GATEWAY_ACCESS_LOG": "", "GATEWAY_BIND": " "}).server.access_log is None
    assert load_config({"GATEWAY_BIND": " "}).server.bind == "127.0.0.1:8000"  # empty: unset


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"GATEWAY_THREADS": "eight"},
            "server.threads has value 'eight': expected an integer (from GATEWAY_THREADS='eight')",
        ),
        (
            {"GATEWAY_WORKERS": "0"},
            "server.workers has value '0': must be at least 1 (from GATEWAY_WORKERS='0')",
        ),
        ({"GATEWAY_KEEPALIVE_LINGER_MS": "-1"}, "GATEWAY_KEEPALIVE_LINGER_MS='-1'"),
        ({"GATEWAY_BIND": "localhost"}, "server.bind has value 'localhost'"),
        (
            {"AIRFLOW_GATEWAY__SERVER__BIND": "h:99999"},
            "(from environment variable AIRFLOW_GATEWAY__SERVER__BIND)",
        ),
    ],
)
def test_bad_server_settings_name_the_setting_and_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ)
    assert message in str(info.value)


def test_errors_say_where_the_value_came_from(tmp_path: Path) -> None:
    toml = write(tmp_path / "gw.toml", "[cli]\nmax_concurrent = 0\n")
    with pytest.raises(ConfigError, match=rf"cli.max_concurrent .*\(from {tmp_path}/gw.toml\)$"):
        load_config({}, toml)
    with pytest.raises(
        ConfigError, match=r"\(from environment variable AIRFLOW_GATEWAY__CLI__MAX_CONCURRENT\)$"
    ):
        load_config({"AIRFLOW_GATEWAY__CLI__MAX_CONCURRENT": "0"}, toml)
    with pytest.raises(ConfigError) as info:  # a secret is still not shown, wherever it came from
        load_config({"AIRFLOW_GATEWAY__JOBS__DATABASE_URL": "mysql://u:pw-123@h/x"})
    assert "pw-123" not in str(info.value) and "AIRFLOW_GATEWAY__JOBS__DATABASE_URL" in str(info.value)


def test_misspelt_settings_get_a_hint(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown setting cli.max_concurent \(did you mean cli.max_concurrent\?\)"
    ):
        load_config({}, write(tmp_path / "gw.toml", "[cli]\nmax_concurent = 2\n"))
    with pytest.raises(ConfigError, match="AIRFLOW_GATEWAY__SERVER__WORKER: unknown setting server.worker"):
        load_config({"AIRFLOW_GATEWAY__SERVER__WORKER": "2"})
    with pytest.raises(ConfigError, match="unknown setting"):  # only tables take a third part
        load_config({"AIRFLOW_GATEWAY__CLI__MAX_CONCURRENT__X": "2"})


def test_table_entries_from_the_environment_add_to_the_file(tmp_path: Path) -> None:
    """airflow.env keys keep their case (they are variable names, and may contain '__')."""
    toml = write(tmp_path / "gw.toml", "[airflow.env]\nAIRFLOW__CORE__LOAD_EXAMPLES = 'False'\n")
    cfg = load_config({"AIRFLOW_GATEWAY__AIRFLOW__ENV__AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}, toml)
    assert cfg.airflow.env == {
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def test_computed_defaults(tmp_path: Path) -> None:
    """Defaults that depend on other settings or the environment, as their records describe them."""
    cfg = load_config(
        {"AIRFLOW_GATEWAY__GATEWAY__STATE_DIR": str(tmp_path / "s"), "AIRFLOW_HOME": str(tmp_path)}
    )
    assert cfg.cli.files_dir == tmp_path / "s" / "files"
    assert cfg.airflow.home == tmp_path and cfg.settings["airflow.home"] == tmp_path
    assert cfg.settings["rest_api_plugin.airflow_cfg"] is None  # no airflow.cfg there
    assert cfg.daemon_dir == tmp_path / "s" / "daemons"
    with pytest.raises(ConfigError, match="rest_api_plugin.airflow_cfg has value .*: not a file"):
        load_config({"AIRFLOW_GATEWAY__REST_API_PLUGIN__AIRFLOW_CFG": str(tmp_path / "missing.cfg")})
