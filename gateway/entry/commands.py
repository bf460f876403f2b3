"""The ``airflow-gateway`` console command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import __version__
from gateway.config.loader import CONFIG_PATH_ENV, ConfigError, check_writable, describe, load_config

# gunicorn imports its settings from the installed package: works from any directory.
GUNICORN_CONF = "python:gateway.entry.gunicorn_conf"


def _load(args: argparse.Namespace) -> None:
    if args.config:
        os.environ[CONFIG_PATH_ENV] = str(Path(args.config).resolve())


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the configuration and the Airflow install; print a summary (no secrets)."""
    from gateway.app import create_app

    config = load_config(os.environ)
    app = create_app(config)
    summary = describe(config)
    summary["airflow"]["version"] = app.install.version
    summary["airflow"]["dialect_detected"] = app.api.interpreter.dialect.name
    if app.policy is not None:
        summary["policy"]["rules"] = len(app.policy.policies.rules)
        summary["policy"]["files"] = list(app.policy.policies.files)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_hash_token(args: argparse.Namespace) -> int:
    """Print the config hash of a token (read from stdin), or of a fresh random token."""
    from gateway.identity.tokens import MIN_TOKEN_LENGTH, hash_token, new_token

    if args.generate:
        token = new_token()
        print(f"token:  {token}")
        print(f"sha256: {hash_token(token)}")
        print("Give the token to its owner; put only the sha256 line in [[auth.tokens]].", file=sys.stderr)
        return 0
    token = sys.stdin.readline().rstrip("\r\n")
    if len(token) < MIN_TOKEN_LENGTH:
        print(
            f"airflow-gateway: a token must be at least {MIN_TOKEN_LENGTH} characters of random text "
            "(use --generate)",
            file=sys.stderr,
        )
        return 2
    print(hash_token(token))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Answer a policy question from the configured policies; exit 0 allow, 3 deny."""
    from gateway.cli.apis import CATALOGUE
    from gateway.policy.engine import PolicyEngine
    from gateway.policy.explain import build_principal, build_target, explain
    from gateway.policy.loader import load_policies

    config = load_config(os.environ)
    directory = Path(args.policy_dir).resolve() if args.policy_dir else config.policy.dir
    if directory is None:
        raise ConfigError("no policies: set policy.dir or pass --policy-dir")
    engine = PolicyEngine(load_policies(directory, CATALOGUE), shadow=config.policy.shadow)
    principal = build_principal(
        config,
        name=args.principal,
        token_name=args.token_name,
        method=args.method,
        groups=args.group,
        claims=args.claim,
    )
    target = build_target(api=args.api, args=args.arg, path=args.path, http_method=args.http_method)
    answer = explain(engine, principal, target, args.source)
    if not args.trace:
        answer.pop("trace")
    print(json.dumps(answer, indent=2, default=list))
    return 0 if answer["decision"] == "allow" else 3


def cmd_serve(args: argparse.Namespace) -> int:
    """Validate the config, then exec gunicorn with the bundled settings (gateway/entry/gunicorn_conf.py)."""
    config = load_config(os.environ)  # fail fast, before gunicorn forks anything
    check_writable(config)  # before the metrics directory is made under gateway.state_dir
    # Set and wipe the metrics directory before the new Python starts: prometheus_client reads
    # it when imported (gateway/observability/multiprocess_dir.py); this process has not
    # imported prometheus_client.
    from gateway.observability.multiprocess_dir import prepare

    prepare(os.environ, config.gateway.state_dir / "prometheus-multiproc")
    conf = args.gunicorn_config or GUNICORN_CONF
    argv = [sys.executable, "-m", "gunicorn", "-c", conf]
    if args.bind:
        argv += ["--bind", args.bind]
    os.execv(sys.executable, argv)  # noqa: S606 - argv list, no shell
    return 0  # pragma: no cover


def cmd_sample_config(args: argparse.Namespace) -> int:
    """Print a commented gateway.toml listing every setting."""
    from gateway.config.documents import render

    sys.stdout.write(render())
    return 0


def cmd_config_reference(args: argparse.Namespace) -> int:
    """Print the configuration reference (docs/configuration.md) generated from the setting records."""
    from gateway.config.documents import reference

    sys.stdout.write(reference())
    return 0


def cmd_rotate_assertion_key(args: argparse.Namespace) -> int:
    """Generate a new identity assertion key; the current one stays published as the previous."""
    from gateway.identity.assertion import KeyRing

    config = load_config(os.environ)
    if config.assertion.key_file is not None:
        print(
            "airflow-gateway: assertion.key_file is set: rotate that file yourself (keep the old key "
            f"beside it as {config.assertion.key_file.stem}.previous.pem so it stays published)",
            file=sys.stderr,
        )
        return 2
    check_writable(config)
    kid = KeyRing.rotate(config.gateway.state_dir / "keys")
    print(f"new assertion key {kid}; restart (or reload) the gateway to sign with it")
    return 0


def cmd_revoke_sessions(args: argparse.Namespace) -> int:
    """End every browser session of one person, on every instance sharing the session store."""
    from gateway.sessions.signon import session_store
    from gateway.sessions.store import Sessions

    config = load_config(os.environ)
    conf = config.sessions
    sessions = Sessions(session_store(config), lifetime_s=conf.lifetime, idle_timeout_s=conf.idle_timeout)
    ended = sessions.revoke_user(args.person)
    # Other instances cache a session for sessions.cache_ttl at most: then it is gone there too.
    print(f"{ended} session(s) of {args.person} ended (everywhere within {conf.cache_ttl:g} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airflow-gateway", description="Security front door for Apache Airflow"
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--config", help=f"gateway TOML file (default: ${CONFIG_PATH_ENV})")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-config", help="validate configuration and Airflow install")
    check.set_defaults(func=cmd_check_config)
    hasher = sub.add_parser("hash-token", help="hash a token (read from stdin) for [[auth.tokens]]")
    hasher.add_argument("--generate", action="store_true", help="make a new random token and print both")
    hasher.set_defaults(func=cmd_hash_token)
    ex = sub.add_parser("explain", help="may principal P call API A with arguments X from address Y?")
    ex.add_argument("--policy-dir", help="policy directory (default: policy.dir from the config)")
    who = ex.add_argument_group("who")
    who.add_argument("--principal", help="principal name (JWT subject or token name)")
    who.add_argument("--token-name", help="a configured [[auth.tokens]] name (its groups are used)")
    who.add_argument("--method", help="auth method: plugin-token, token, jwt, oidc or anonymous")
    who.add_argument("--group", action="append", default=[], help="a group (repeatable)")
    who.add_argument(
        "--claim", action="append", default=[], help="claim PATH=VALUE (e.g. realm_access.roles=ops)"
    )
    what = ex.add_argument_group("what")
    what.add_argument("--api", help="API name")
    what.add_argument("--arg", action="append", default=[], help="API argument NAME=VALUE (repeatable)")
    what.add_argument("--path", help="a proxied path instead of an API")
    what.add_argument("--http-method", default="GET", help="method of the proxied request (default GET)")
    ex.add_argument("--from", dest="source", help="client IP address")
    ex.add_argument("--trace", action="store_true", help="show every rule and why it did or did not match")
    ex.set_defaults(func=cmd_explain)
    serve = sub.add_parser("serve", help="run the gateway under gunicorn")
    serve.add_argument("--bind", help="host:port (default: the server.bind setting, 127.0.0.1:8000)")
    serve.add_argument(
        "--gunicorn-config",
        help="gunicorn config file or python:MODULE (default: python:gateway.entry.gunicorn_conf)",
    )
    serve.set_defaults(func=cmd_serve)
    sample = sub.add_parser("sample-config", help="print a commented gateway.toml with every setting")
    sample.set_defaults(func=cmd_sample_config)
    ref = sub.add_parser("config-reference", help="print the configuration reference (docs/configuration.md)")
    ref.set_defaults(func=cmd_config_reference)
    rotate = sub.add_parser(
        "rotate-assertion-key", help="new identity assertion key (the old stays published)"
    )
    rotate.set_defaults(func=cmd_rotate_assertion_key)
    revoke = sub.add_parser("revoke-sessions", help="end every browser session of one person")
    revoke.add_argument("person", help="the signed-in name (oidc.username_claim)")
    revoke.set_defaults(func=cmd_revoke_sessions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: readable errors for bad configuration, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _load(args)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"airflow-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # ProbeError and friends
        print(f"airflow-gateway: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
