"""The ``airflow-gateway`` console command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import __version__
from gateway.config import CONFIG_PATH_ENV, ConfigError, describe, load_config

GUNICORN_CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


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
    print(json.dumps(summary, indent=2))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Validate the config, then exec gunicorn with the project's gunicorn.conf.py."""
    config = load_config(os.environ)  # fail fast, before gunicorn forks anything
    # Set and wipe the metrics directory before the new Python starts (STYLE trap 2);
    # this process has not imported prometheus_client.
    from gateway.multiproc import prepare

    prepare(os.environ, config.state_dir / "prometheus-multiproc")
    conf = Path(args.gunicorn_config) if args.gunicorn_config else GUNICORN_CONF
    argv = [sys.executable, "-m", "gunicorn", "-c", str(conf)]
    if args.bind:
        argv += ["--bind", args.bind]
    os.execv(sys.executable, argv)  # noqa: S606 - argv list, no shell
    return 0  # pragma: no cover


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airflow-gateway", description="Security front door for Apache Airflow")
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--config", help=f"gateway TOML file (default: ${CONFIG_PATH_ENV})")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-config", help="validate configuration and Airflow install")
    check.set_defaults(func=cmd_check_config)
    serve = sub.add_parser("serve", help="run the gateway under gunicorn")
    serve.add_argument("--bind", help="host:port (default: $GATEWAY_BIND or 127.0.0.1:8000)")
    serve.add_argument("--gunicorn-config", help="gunicorn config file (default: the bundled one)")
    serve.set_defaults(func=cmd_serve)
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
