"""The plugin's own builtins: its version, and the daemons it started."""

from __future__ import annotations

from gateway import __version__
from gateway.calls.service import CallContext
from gateway.cli.interpreter import BuiltinCall
from gateway.core.redact import Redactor
from gateway.execution.daemons import DaemonManager


class PluginVersion:
    """``rest_api_plugin_version``: the gateway's version, with Airflow's and the dialect."""

    def __init__(self, airflow_version: str, dialect: str) -> None:
        self.airflow_version = airflow_version
        self.dialect = dialect

    def __call__(self, call: BuiltinCall, ctx: CallContext) -> None:
        ctx.envelope.output = __version__
        ctx.envelope.extra["airflow_version"] = self.airflow_version
        ctx.envelope.extra["dialect"] = self.dialect


class ListDaemons:
    """``list_daemons``: the daemons started through the gateway, their argv masked."""

    def __init__(self, daemons: DaemonManager, redactor: Redactor) -> None:
        self.daemons = daemons
        self.redactor = redactor

    def __call__(self, call: BuiltinCall, ctx: CallContext) -> None:
        rows = self.daemons.list()
        for row in rows:  # records store the masked argv; older ones may not have
            row["argv"] = self.redactor.argv(row["argv"])
        ctx.envelope.output = rows
        ctx.envelope.extra["data"] = rows


class StopDaemon:
    """``stop_daemon``: stop one of them (a :class:`~gateway.execution.daemons.DaemonError` refuses)."""

    def __init__(self, daemons: DaemonManager) -> None:
        self.daemons = daemons

    def __call__(self, call: BuiltinCall, ctx: CallContext) -> None:
        ctx.envelope.output = self.daemons.stop(str(call.values["id"]))
