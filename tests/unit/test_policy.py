"""Policies: loading with file:line errors, decisions (deny wins, default deny), explain."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.apis import CATALOGUE
from gateway.cli.values import validate
from gateway.identity.principal import Principal
from gateway.policy.engine import PolicyEngine, Target
from gateway.policy.loader import PolicyError, load_policies

ROOT = Path(__file__).resolve().parent.parent.parent
SHIPPED = ROOT / "policies"

VIEWER = Principal("vera", "token", frozenset({"viewers"}))
OPERATOR = Principal("otto", "token", frozenset({"team-a-operators"}))
ADMIN = Principal("ada", "jwt", frozenset({"admins"}), {"sub": "ada"})
NOBODY = Principal("anonymous", "anonymous")
OFFICE, INTERNET = "10.1.2.3", "203.0.113.9"


def call(api: str, **args: str) -> Target:
    spec = CATALOGUE[api]
    values = {name: validate(spec.param(name).kind, raw) for name, raw in args.items()}  # type: ignore[union-attr]
    return Target(api=spec, values=values)


@pytest.fixture(scope="module")
def shipped() -> PolicyEngine:
    """The example policy set shipped in policies/."""
    return PolicyEngine(load_policies(SHIPPED, CATALOGUE))


@pytest.mark.parametrize(
    ("principal", "target", "source", "allowed", "rule"),
    [
        pytest.param(VIEWER, call("list_dags"), INTERNET, True, "viewers-read", id="viewer-lists"),
        pytest.param(VIEWER, call("whoami"), INTERNET, True, "viewers-read", id="viewer-whoami"),
        pytest.param(
            VIEWER,
            call("trigger_dag", dag_id="team_a_etl"),
            OFFICE,
            False,
            "default-deny",
            id="viewer-cannot-trigger",
        ),
        pytest.param(
            OPERATOR,
            call("trigger_dag", dag_id="team_a_etl"),
            OFFICE,
            True,
            "team-a-operate",
            id="operator-triggers-own-dag",
        ),
        pytest.param(
            OPERATOR,
            call("clear", dag_id="team_a_etl", task_regex="x"),
            OFFICE,
            True,
            "team-a-operate",
            id="operator-clears-own-dag",
        ),
        pytest.param(
            OPERATOR,
            call("trigger_dag", dag_id="team_b_etl"),
            OFFICE,
            False,
            "default-deny",
            id="operator-other-teams-dag",
        ),
        pytest.param(
            OPERATOR,
            call("trigger_dag", dag_id="team_a_etl"),
            INTERNET,
            False,
            "default-deny",
            id="operator-from-outside",
        ),
        pytest.param(
            OPERATOR,
            call("variables", set="team_a.limit", set_value="3"),
            OFFICE,
            True,
            "team-a-variables",
            id="operator-sets-own-variable",
        ),
        pytest.param(
            OPERATOR,
            call("variables", get="team_b.limit"),
            OFFICE,
            False,
            "default-deny",
            id="operator-other-variable",
        ),
        pytest.param(
            OPERATOR,
            call("variables"),
            OFFICE,
            False,
            "no-secret-variables",
            id="listing-all-variables-touches-secret-ones",
        ),
        pytest.param(
            ADMIN, call("connections", list="true"), INTERNET, True, "admins-all", id="admin-anything"
        ),
        pytest.param(
            ADMIN, call("scheduler"), OFFICE, False, "no-daemons-over-http", id="deny-wins-over-admin"
        ),
        pytest.param(
            ADMIN,
            call("variables", get="secret.db"),
            OFFICE,
            False,
            "no-secret-variables",
            id="deny-secret-variables",
        ),
        pytest.param(
            ADMIN, call("variables", get="team_a.x"), OFFICE, True, "admins-all", id="admin-other-vars"
        ),
        pytest.param(NOBODY, call("version"), OFFICE, False, "default-deny", id="anonymous-api"),
        pytest.param(
            NOBODY,
            Target(method="GET", path="/api/v2/dags"),
            INTERNET,
            True,
            "airflow-ui-passthrough",
            id="anonymous-proxied-passthrough",
        ),
    ],
)
def test_shipped_examples(
    shipped: PolicyEngine, principal: Principal, target: Target, source: str, allowed: bool, rule: str
) -> None:
    """The shipped example set gives viewers, team operators and admins exactly their scopes."""
    decision = shipped.decide(principal, target, ipaddress.ip_address(source))
    assert (decision.allowed, decision.rule_id) == (allowed, rule)


def write(tmp_path: Path, text: str, name: str = "10-rules.toml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


RULES = """
[[rule]]
id = "ops"
effect = "allow"
groups = ["ops"]
claims = { "realm_access.roles" = ["operator"] }
apis = ["trigger_dag", "pause"]
dag_id_regex = "etl_[a-z]+"
dag_ids = ["etl_*"]

[[rule]]
id = "pools"
effect = "allow"
principals = ["svc-*"]
auth_methods = ["token"]
apis = ["pool"]
pools = ["batch_*"]

[[rule]]
id = "conns"
effect = "allow"
principals = ["svc-*"]
apis = ["connections"]
conn_ids = ["svc_*"]

[[rule]]
id = "ui-readonly"
effect = "allow"
principals = ["*"]
proxy_paths = ["/api/v2/*", "/ui/*"]
proxy_methods = ["GET", "HEAD"]

[[rule]]
id = "no-config-api"
effect = "deny"
principals = ["*"]
proxy_paths = ["/api/v2/config*"]
"""

OPS = Principal("o", "jwt", frozenset({"ops"}), {"realm_access": {"roles": ["operator", "x"]}})
SVC = Principal("svc-batch", "token")


@pytest.mark.parametrize(
    ("principal", "target", "allowed", "rule"),
    [
        pytest.param(OPS, call("trigger_dag", dag_id="etl_sales"), True, "ops", id="claim-group-glob-regex"),
        pytest.param(
            OPS, call("trigger_dag", dag_id="etl_Sales"), False, "default-deny", id="regex-must-match"
        ),
        pytest.param(
            Principal("o", "jwt", frozenset({"ops"}), {"realm_access": {"roles": ["viewer"]}}),
            call("pause", dag_id="etl_sales"),
            False,
            "default-deny",
            id="claim-missing",
        ),
        pytest.param(SVC, call("pool", set="batch_x 4 d"), True, "pools", id="pool-set-name"),
        pytest.param(SVC, call("pool", delete="other"), False, "default-deny", id="pool-outside"),
        pytest.param(SVC, call("pool"), False, "default-deny", id="pool-list-is-all-pools"),
        pytest.param(
            Principal("svc-batch", "jwt"),
            call("pool", get="batch_x"),
            False,
            "default-deny",
            id="auth-method-selector",
        ),
        pytest.param(SVC, call("connections", delete="true", conn_id="svc_db"), True, "conns", id="conn-id"),
        pytest.param(SVC, Target(method="GET", path="/api/v2/dags"), True, "ui-readonly", id="proxy-get"),
        pytest.param(SVC, Target(method="POST", path="/api/v2/dags"), False, "default-deny", id="proxy-post"),
        pytest.param(
            SVC, Target(method="GET", path="/api/v2/config"), False, "no-config-api", id="proxy-deny"
        ),
        pytest.param(
            SVC, Target(method="GET", path="/auth/token"), False, "default-deny", id="proxy-other-path"
        ),
    ],
)
def test_rule_semantics(
    tmp_path: Path, principal: Principal, target: Target, allowed: bool, rule: str
) -> None:
    """Selectors, argument constraints and proxied path/method rules decide as documented."""
    engine = PolicyEngine(load_policies(write(tmp_path, RULES), CATALOGUE))
    decision = engine.decide(principal, target, None)
    assert (decision.allowed, decision.rule_id) == (allowed, rule)


def test_sources_and_shadow_mode(tmp_path: Path) -> None:
    """A rule limited to a CIDR does not match outside it; shadow mode marks denials as not enforced."""
    text = (
        '[[rule]]\nid = "net"\neffect = "allow"\nprincipals = ["*"]\napis = ["version"]\n'
        'sources = ["10.0.0.0/8"]\n'
    )
    policies = load_policies(write(tmp_path, text), CATALOGUE)
    engine = PolicyEngine(policies, shadow=True)
    inside = engine.decide(NOBODY, call("version"), ipaddress.ip_address("10.9.9.9"))
    outside = engine.decide(NOBODY, call("version"), ipaddress.ip_address("11.0.0.1"))
    unknown = engine.decide(NOBODY, call("version"), None)
    assert inside.allowed and not inside.shadow
    assert not outside.allowed and outside.shadow and outside.enforced_allow
    assert not unknown.allowed


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(
            '[[rule]]\nid = "a"\neffect = "allow"\ngroups = ["x"]\napis = ["lisst_dags"]\n',
            5,
            "'lisst_dags' matches no API",
            id="misspelt-api",
        ),
        pytest.param(
            '# c\n\n[[rule]]\nid = "a"\neffect = "alow"\ngroups = ["x"]\napis = ["*"]\n',
            5,
            "effect must be",
            id="bad-effect",
        ),
        pytest.param(
            '[[rule]]\nid = "a"\neffect = "allow"\ngroups = ["x"]\napis = ["*"]\n\n[[rule]]\nid = "b"\n'
            'effect = "allow"\ngroups = ["x"]\napis = ["*"]\ndag_idz = ["x"]\n',
            12,
            "unknown key 'dag_idz'",
            id="unknown-key-second-rule",
        ),
        pytest.param(
            '[[rule]]\nid = "a"\neffect = "allow"\napis = ["*"]\n', 2, "whom it applies to", id="no-selector"
        ),
        pytest.param(
            '[[rule]]\nid = "a"\neffect = "allow"\ngroups = ["x"]\n',
            2,
            "must cover something",
            id="covers-nothing",
        ),
        pytest.param(
            '[[rule]]\nid = "a"\neffect = "allow"\ngroups = ["x"]\napis = ["*"]\nsources = ["10.0.0.1/8"]\n',
            6,
            "bad CIDR",
            id="bad-cidr",
        ),
        pytest.param(
            '[[rule]]\nid = "a"\neffect = "allow"\ngroups = ["x"]\napis = ["*"]\ndag_id_regex = "("\n',
            6,
            "invalid regular expression",
            id="bad-regex",
        ),
        pytest.param(
            '[[rule]]\nid = "a"\neffect = "allow"\ngroups = ["x"]\nproxy_paths = ["api"]\n',
            5,
            "must start with '/'",
            id="relative-path",
        ),
        pytest.param(
            '[[rule]]\nid = "a"\neffect = "allow"\ngroups = ["x"]\napis = ["*"\n',
            5,
            "TOML syntax",
            id="toml-syntax",
        ),
        pytest.param(
            'rule = [{id = "a", effect = "allow", groups = ["x"], apis = ["*"]}]\n',
            1,
            "[[rule]] table",
            id="inline-rules",
        ),
        pytest.param(
            '[[rule]]\nid = "Bad Id"\neffect = "allow"\ngroups = ["x"]\napis = ["*"]\n',
            2,
            "every rule needs an id",
            id="bad-id",
        ),
    ],
)
def test_loader_errors_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    """Every policy error is reported as file:line with a readable reason."""
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        load_policies(path, CATALOGUE)
    assert f"{tmp_path / '10-rules.toml'}:{line}: " in str(info.value)
    assert message in str(info.value)


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    """A rule id used twice is reported with both locations."""
    rule = '[[rule]]\nid = "same"\neffect = "allow"\ngroups = ["x"]\napis = ["*"]\n'
    write(tmp_path, rule, "a.toml")
    write(tmp_path, "\n" + rule, "b.toml")
    with pytest.raises(PolicyError, match=r"b.toml:2: rule id 'same' is already used at .*a.toml:1"):
        load_policies(tmp_path, CATALOGUE)


def test_empty_policy_dir_is_an_error(tmp_path: Path) -> None:
    """A policy directory without files fails start-up instead of silently denying everything."""
    with pytest.raises(PolicyError, match="no \\*.toml"):
        load_policies(tmp_path, CATALOGUE)


def run_explain(*args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.entry.commands", "explain", "--policy-dir", str(SHIPPED), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env=env,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else done.stderr


def test_explain_command_answers_with_rule_and_location() -> None:
    """`explain` says allow/deny, the deciding rule and its file:line, with exit 0 or 3."""
    code, answer = run_explain(
        "--principal",
        "otto",
        "--group",
        "team-a-operators",
        "--api",
        "trigger_dag",
        "--arg",
        "dag_id=team_a_etl",
        "--from",
        OFFICE,
    )
    assert code == 0 and answer["decision"] == "allow" and answer["rule"] == "team-a-operate"
    assert answer["rule_source"].endswith("policies/20-team-operators.toml:4")
    code, answer = run_explain(
        "--principal", "ada", "--claim", "groups=admins", "--group", "admins", "--api", "scheduler", "--trace"
    )
    assert code == 3 and answer["rule"] == "no-daemons-over-http"
    assert any(t["rule"] == "admins-all" and t["matched"] for t in answer["trace"])
    code, message = run_explain("--principal", "x", "--api", "trigger_dag", "--arg", "dag_id=-rf")
    assert code == 2 and "dag_id" in message


def test_check_config_reports_policy_errors_before_probing_airflow(tmp_path: Path) -> None:
    """`check-config` fails with file:line for a bad policy, even where no Airflow is installed."""
    write(tmp_path, '[[rule]]\nid = "a"\neffect = "allow"\ngroups = ["x"]\napis = ["trigger_dgs"]\n')
    env = {
        "PATH": "/nonexistent",
        "AIRFLOW_GATEWAY__POLICY__DIR": str(tmp_path),
        "AIRFLOW_GATEWAY__AIRFLOW__EXECUTABLE": "/nonexistent/airflow",
    }
    done = subprocess.run(
        [sys.executable, "-m", "gateway.entry.commands", "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 2
    assert f"{tmp_path / '10-rules.toml'}:5: rule 'a': 'trigger_dgs' matches no API" in done.stderr
