"""gateway/config/settings.py: every setting defined once, and everything derived from the records.

Fails when docs/configuration.md or check-config's summary drift from the records, when a
record lacks a description, or when a record is not wired into the typed configuration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.apis import CATALOGUE
from gateway.config.documents import reference, render, sample_value, toml_value
from gateway.config.loader import ConfigError, describe, load_config
from gateway.config.settings import BY_ALIAS, SECTIONS, SETTINGS, Secret, Section, Setting
from gateway.entry import commands

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "configuration.md"


def test_checked_in_reference_is_the_generated_one() -> None:
    assert REFERENCE.read_text() == reference(), (
        "run: airflow-gateway config-reference > docs/configuration.md"
    )


def test_reference_lists_every_setting_its_environment_names_and_default() -> None:
    text = reference()
    for setting in SETTINGS:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{setting.name}` |"))
        assert f"`{setting.env}`" in row
        assert all(f"`{alias}`" in row for alias in setting.aliases)
        assert setting.type.name in row
        if setting.default is not None and setting.default_doc is None:
            assert f"`{toml_value(setting.default)}`" in row
    for section in SECTIONS:
        assert f"## `[{section}]`" in text


def test_commands_print_the_generated_documents(capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.main(["config-reference"]) == 0
    assert capsys.readouterr().out == reference()
    assert commands.main(["sample-config"]) == 0
    assert capsys.readouterr().out == render()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_each_record_is_complete(setting: Setting) -> None:
    """A description, a known section, a valid default; secrets flagged; a value to show."""
    assert setting.doc.strip() and setting.doc.rstrip().endswith((".", "..."))
    assert setting.type.name.strip()
    assert setting.section in SECTIONS
    default = setting.parse(setting.default)  # defaults go through the same check as any value
    parsed = setting.parse(setting.example) if setting.example is not None else default
    assert setting.secret or not isinstance(parsed, Secret), f"{setting.name} holds a secret: flag it"
    assert not (setting.secret and setting.aliases), "alias values are echoed in errors"
    assert sample_value(setting) is not None
    if setting.api_keys:
        assert setting.type.table


def test_names_sections_and_environment_names_are_unique() -> None:
    names = [s.name for s in SETTINGS]
    assert len(set(names)) == len(names)
    envs = [s.env for s in SETTINGS] + [a for s in SETTINGS for a in s.aliases]
    assert len(set(envs)) == len(envs)
    assert all(not a.startswith("AIRFLOW_GATEWAY") for a in BY_ALIAS)
    assert set(SECTIONS) == {s.section for s in SETTINGS}


# --- every record reaches the typed configuration ---

# Values other than the default for records whose example is missing or equal to the default.
VARIANTS: dict[str, Any] = {
    "airflow.dialect": "3",
    "cli.runner": "cold",
    "cli.idle_cgroup": "off",
    "rest_api_plugin.compatibility": "1.0.9",
    "rest_api_plugin.rest_api_plugin_http_token_header_name": "x_token",
    "proxy.host_header": "upstream",
    "proxy.readiness_path": "/health",
    "server.bind": "127.0.0.1:8001",
    "auth.header_name": "X-Other",
    "jwt.subject_claim": "email",
    "assertion.header": "X-Airflow-Identity",
    "assertion.issuer": "gateway-eu",
    "assertion.audience": "airflow-eu",
    "assertion.lifetime": 30,
    "oidc.username_claim": "email",
    "sessions.cookie_name": "__Host-gw",
    "rate_limits.storage_url": "redis://redis.example:6379/1",
    "rate_limits.strategy": "fixed-window",
    "rate_limits.timeout": 0.5,
}
# Settings cross-checked with others: a valid base configuration to change them in.
_JWT = {"jwt.algorithms": ["RS256"]}
_OIDC = {"oidc.issuer": "https://idp.example", "oidc.client_id": "gw", "oidc.client_secret_env": "GW_SECRET"}
BASES: dict[str, dict[str, Any]] = {
    "jwt.algorithms": {"jwt.algorithms": ["ES256"], "jwt.jwks_url": "https://idp.example/jwks"},
    "jwt.key_file": {**_JWT, "jwt.key_file": "/etc/other.pem"},
    "jwt.key_env": {**_JWT, "jwt.key_env": "OTHER_KEY"},
    "jwt.jwks_url": {**_JWT, "jwt.jwks_url": "https://other.example/jwks"},
    "auth.allow_anonymous": {"policy.dir": "/etc/airflow-gateway/policies"},
    **{name: _OIDC for name in ("oidc.issuer", "oidc.client_id", "oidc.client_secret_env")},
    "oidc.client_secret_file": {**_OIDC, "oidc.client_secret_env": None, "oidc.client_secret_file": "/etc/s"},
}
NOT_IN_TYPED_CONFIG = {
    "rest_api_plugin.log_loading": "accepted for compatibility, no effect",
    "rest_api_plugin.airflow_cfg": "only selects the file read (tests/unit/test_config.py)",
}


def _variant(setting: Setting) -> Any:
    if setting.name in VARIANTS:
        return VARIANTS[setting.name]
    if setting.example is not None and setting.example != setting.default:
        return setting.example
    if isinstance(setting.default, bool):
        return not setting.default
    if isinstance(setting.default, int):
        return setting.default + 1
    raise AssertionError(f"{setting.name}: add a value to VARIANTS")


def _toml(values: dict[str, Any]) -> str:
    sections: dict[str, list[str]] = {}
    for name, value in values.items():
        if value is None:  # left unset
            continue
        section, key = name.split(".")
        sections.setdefault(section, []).append(f"{key} = {toml_value(value)}")
    return "".join(f"[{section}]\n" + "\n".join(lines) + "\n" for section, lines in sections.items())


def _leaves(obj: Any, prefix: str = "") -> dict[str, Any]:
    """The typed configuration as attribute path -> value (the settings mapping left out)."""
    out: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if name in {"settings", "sources"}:
            continue
        if isinstance(value, Section):
            out.update(_leaves(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


@pytest.mark.parametrize(
    "setting", [s for s in SETTINGS if s.name not in NOT_IN_TYPED_CONFIG], ids=lambda s: s.name
)
def test_each_record_reaches_the_typed_configuration(setting: Setting, tmp_path: Path) -> None:
    """Changing one setting changes the typed objects the gateway uses (load_config wires it)."""
    base = BASES.get(setting.name, {})
    (tmp_path / "base.toml").write_text(_toml(base))
    (tmp_path / "one.toml").write_text(_toml({**base, setting.name: _variant(setting)}))
    before = _leaves(load_config({}, tmp_path / "base.toml"))
    after = load_config({}, tmp_path / "one.toml")
    assert after.settings[setting.name] == setting.parse(_variant(setting))
    changed = {path for path, value in _leaves(after).items() if path not in before or before[path] != value}
    assert changed, f"{setting.name} changes nothing in GatewayConfig"


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.api_keys], ids=lambda s: s.name)
def test_tables_keyed_by_api_name_are_checked_against_the_catalogue(setting: Setting, tmp_path: Path) -> None:
    api = sorted(CATALOGUE)[0]
    env = f"{setting.env}__{api.upper()}"
    assert api in load_config({env: "5"}).settings[setting.name]
    with pytest.raises(ConfigError, match=rf"{setting.name}\.{api}x: no API is named .*did you mean '{api}'"):
        load_config({f"{env}X": "5"})
    (tmp_path / "gw.toml").write_text(f"[{setting.section}]\n{setting.key} = {{ {api}x = 5 }}\n")
    with pytest.raises(ConfigError, match=f"{setting.name}.{api}x: no API"):
        load_config({}, tmp_path / "gw.toml")


# --- check-config's summary ---


def test_describe_lists_every_setting_and_masks_secrets(tmp_path: Path) -> None:
    secrets = {
        "AIRFLOW_GATEWAY__REST_API_PLUGIN__REST_API_PLUGIN_EXPECTED_HTTP_TOKEN": "plugin-secret-value",
        "AIRFLOW_GATEWAY__METRICS__TOKEN": "metrics-secret-value",
        "AIRFLOW_GATEWAY__JOBS__DATABASE_URL": "postgresql://u:db-secret-value@db/x",
        "AIRFLOW_GATEWAY__AIRFLOW__ENV__AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "env-secret-value",
        "AIRFLOW_GATEWAY__AUTH__TOKENS": json.dumps([{"name": "ci", "sha256": "sha256:" + "ab" * 32}]),
        "GATEWAY_WORKERS": "5",
    }
    summary = describe(load_config(secrets))
    text = json.dumps(summary)
    assert "secret-value" not in text and "abab" not in text
    for setting in SETTINGS:
        assert setting.key in summary[setting.section], setting.name
    assert summary["metrics"]["token"] == "(set, not shown)"
    assert summary["airflow"]["env"] == ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert summary["auth"]["tokens"] == [{"name": "ci", "groups": []}]
    assert summary["server"]["workers"] == 5
    assert summary["jwt"]["leeway"] == 10.0 and summary["limits"]["max_body_bytes"] == 16 * 1024 * 1024
