"""The configuration the gunicorn master checked, handed to its workers, and ``SIGHUP``.

Workers never build the gateway from files they read themselves: they get the
configuration and policies the master last checked, inherited at fork.  A worker that
fails to boot makes gunicorn halt the whole server, so a broken file on a reload would
otherwise take the gateway down; here it is refused once, in the master, with the error
logged, and the running configuration stays in force.

A reload (``kill -HUP`` of the master) re-reads the file, the environment's secret files
and the policies, then gunicorn starts new workers with them and retires the old ones,
which finish their requests and let their jobs end (gateway/http/retirement.py).  The
sections marked ``restart`` (``[gateway]``, ``[server]``: gunicorn's own settings) and the
gunicorn values derived from other settings take effect on restart only; a reload that
changes them says so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.cli.apis import CATALOGUE
from gateway.config.loader import ConfigError, GatewayConfig, check_writable, load_config
from gateway.http.retirement import GENERATIONS
from gateway.policy.loader import load_policies
from gateway.policy.model import PolicySet

if TYPE_CHECKING:
    from gateway.app import GatewayApp


@dataclass(frozen=True, slots=True)
class Checked:
    """A configuration and its policies, both valid."""

    config: GatewayConfig
    policies: PolicySet | None

    @classmethod
    def load(cls, environ: Mapping[str, str]) -> Checked:
        """:raises ConfigError: naming the setting, path, or policy file and line."""
        config = load_config(environ)
        check_writable(config)  # state_dir, files_dir, audit.file: named, not a traceback
        directory = config.policy.dir
        return cls(config, load_policies(directory, CATALOGUE) if directory is not None else None)


_current: Checked | None = None


def start(environ: Mapping[str, str]) -> Checked:
    """At the master's start: the configuration its workers will be built from.

    :raises ConfigError: the master refuses to start.
    """
    global _current
    _current = Checked.load(environ)
    return _current


def reload(
    environ: Mapping[str, str], log: logging.Logger, derived: Callable[[GatewayConfig], Any]
) -> Checked:
    """On ``SIGHUP``, in the master before it starts new workers: check the new configuration
    and keep it, or log why not and keep the running one.  Workers of older generations are
    retired either way.

    :param derived: gunicorn's values computed from the configuration (they need a restart).
    """
    global _current
    GENERATIONS.advance()
    running = _current or start(environ)
    try:
        new = Checked.load(environ)
    except ConfigError as exc:
        log.error("configuration error on reload (SIGHUP); the running configuration stays in force: %s", exc)
        return running
    old_values, new_values = running.config.settings, new.config.settings
    restart = [
        name
        for section in new.config.registry().sections
        if section.restart
        for name in (s.name for s in section.settings)
        if old_values[name] != new_values[name]
    ]
    if derived(running.config) != derived(new.config):
        restart.append("gunicorn threads or timeout (from cli.*, jobs.max_streams, proxy.read_timeout)")
    if restart:
        log.warning("reloaded, but these take effect on restart only: %s", ", ".join(restart))
    version = new.policies.version if new.policies is not None else "none"
    log.info("configuration reloaded from %s (policies %s)", ", ".join(new.config.sources), version)
    _current = new
    return new


def application() -> GatewayApp:
    """gunicorn's ``wsgi_app``: the gateway, from what the master checked."""
    # Imported in the worker, after the fork: the master must not import prometheus_client
    # before its multiprocess directory is set (gunicorn_conf).
    from gateway.app import create_app

    checked = _current or Checked.load(os.environ)  # not under our gunicorn configuration
    return create_app(checked.config, policies=checked.policies)
