"""Compatibility mode ``[rest_api_plugin] compatibility = "1.0.9"``: answer like the original plugin.

Applied at two seams of :class:`gateway.web.api.ApiEndpoint`, so the gateway's own logic stays
one path: :meth:`Compat109.normalise` rewrites the request arguments before planning,
:meth:`Compat109.shape` rewrites the envelope after the call.  It never relaxes safety:
every value still goes through the interpreter's validation; only argument *names* and the
answer's *status* change.  The differences that remain are in docs/compatibility.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.cli.interpreter import Plan, PlanError
from gateway.cli.spec import Api, Kind
from gateway.cli.values import InvalidValue, Value, validate
from gateway.core.envelope import Envelope

_ABSOLUTE_FILE = (
    "argument '{name}': the plugin took a path on the Airflow host; the gateway refuses paths (absolute or "
    "with '/') so that no caller can read or write files elsewhere on the host. Give a plain file name "
    "(e.g. {name}=variables.json): it is read from and written to the gateway's files directory "
    "(cli.files_dir), and api=variables&export=NAME returns the exported file's content as 'data'"
)

# Arguments v1.0.9 required (its 400 "The argument(s) [...] are required") where the gateway's
# API takes them as optional: without a principal the plugin never started a renewer.
_REQUIRED = {"kerberos": ("principal",)}

# v1.0.9's pool cmd=set fields, in the order of `pool --set NAME SLOTS DESCRIPTION`.
_POOL_FIELDS = (("pool_name", Kind.POOL), ("slot_count", Kind.INT), ("pool_description", Kind.TEXT))


class Compat109:
    """The v1.0.9 plugin's request and answer conventions.

    :param catalogue: the API catalogue (to tell known arguments from extras).
    :param airflow_version: answered by ``api=version`` without running the CLI, as the plugin did.
    """

    def __init__(self, catalogue: Mapping[str, Api], airflow_version: str) -> None:
        self.catalogue = catalogue
        self.airflow_version = airflow_version

    def normalise(
        self, api_name: str | None, args: dict[str, list[str]], envelope: Envelope
    ) -> tuple[str | None, dict[str, list[str]], dict[str, Value]]:
        """The request as the gateway's API expects it; what was dropped is told in ``warning``.

        :returns: the API name, the arguments, and values this mode validated itself (for
            :meth:`gateway.cli.interpreter.Interpreter.plan`'s ``given``).
        :raises PlanError: for a file path, with what to do instead; for an invalid field.
        """
        if api_name and api_name not in self.catalogue and api_name.lower() in self.catalogue:
            api_name = api_name.lower()
        api = self.catalogue.get(api_name or "")
        given: dict[str, Value] = {}
        if api is None:
            return api_name, args, given
        args = dict(args)
        # v1.0.9's own forms: variables cmd=set&key=&value=,
        # pool cmd=set&pool_name=&slot_count=&pool_description=
        cmd = _single(args, "cmd")
        if api.name == "variables" and cmd == "set" and "key" in args:
            args.pop("cmd")
            args["set"] = args.pop("key")
            args["set_value"] = args.pop("value", [""])
        elif api.name == "pool" and cmd == "set" and "pool_name" in args:
            args.pop("cmd")
            given["set"] = _pool_set(args)
        if api.name == "variables":
            for name in ("import", "export"):
                value = _single(args, name)
                if value and "/" in value:
                    raise PlanError(_ABSOLUTE_FILE.format(name=name))
        dropped: list[str] = []
        for name in list(args):
            param = api.param(name)
            if name == "api":
                continue
            if param is None or (param.kind is Kind.BOOL and args[name] == [""]):
                dropped.append(name)  # unknown, or a bare '&flag' (the plugin dropped both)
                del args[name]
        if dropped:
            envelope.add_warning(
                f"ignored argument(s) {', '.join(sorted(dropped))} (compatibility 1.0.9: unknown "
                "arguments and bare boolean flags are dropped, as the plugin did)"
            )
        missing = [name for name in _REQUIRED.get(api.name, ()) if not any(args.get(name, []))]
        if missing:
            raise PlanError(
                f"missing required argument(s) for api '{api.name}': {', '.join(missing)}"
                " (compatibility 1.0.9: the plugin required them)"
            )
        return api_name, args, given

    def answer_in_process(self, plan: Plan, envelope: Envelope) -> bool:
        """``version``: the plugin answered ``airflow.__version__`` as a string, without the CLI."""
        if plan.api.name != "version":
            return False
        envelope.output = self.airflow_version
        envelope.exit_code = 0
        return True

    def shape(self, envelope: Envelope, api_name: str | None) -> None:
        """HTTP status, ``status`` and ``output`` as the plugin gave them; the finding stays in extras."""
        if envelope.status == "ERROR" and envelope.airflow_cmd is not None:
            finding = envelope.http_response_code
            error = envelope.extra.get("error")
            envelope.extra["gateway_http_response_code"] = finding
            if finding == 404 and error == "DAG not found":
                # The plugin checked the DAG id itself: 400 with a sentence.
                dag_id = envelope.arguments.get("dag_id") or envelope.post_arguments.get("dag_id")
                envelope.output = f"The DAG ID '{dag_id}' does not exist"
                envelope.http_response_code = 400
                return
            envelope.status = "OK"
            envelope.http_response_code = 200
            return
        if envelope.status != "OK":
            return
        if "daemon" in envelope.extra:
            envelope.output = {"stdout": "exit_code: 0", "stderr": "", "stdin": ""}
        elif api_name == "refresh_dag" and not isinstance(envelope.output, str):
            dag_id = envelope.arguments.get("dag_id") or envelope.post_arguments.get("dag_id")
            envelope.output = f"DAG [{dag_id}] is now fresh as a daisy"


def _single(args: Mapping[str, list[str]], name: str) -> str | None:
    values = args.get(name)
    if values is not None and len(values) > 1:
        raise PlanError(f"argument '{name}' is given more than once")
    return values[0] if values else None


def _pool_set(args: dict[str, list[str]]) -> tuple[str, ...]:
    """The three fields as three argv elements, each validated on its own (taken out of ``args``).

    Never joined into the README's one-string ``set=NAME SLOTS DESCRIPTION``: re-split, a
    space in one field would move text into the next (pool_name ``p 99`` set 99 slots).
    """
    parts: list[str] = []
    for name, kind in _POOL_FIELDS:
        raw = _single(args, name) or ""
        args.pop(name, None)
        if not raw:
            if name == "pool_description":
                parts.append("")  # 1.10's --set takes exactly three values
                continue
            raise PlanError(f"missing required argument(s) for api 'pool' with cmd=set: {name}")
        try:
            parts.append(str(validate(kind, raw)))
        except InvalidValue as exc:
            raise PlanError(f"argument '{name}': {exc}") from None
    return tuple(parts)
