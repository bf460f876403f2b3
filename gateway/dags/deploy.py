"""deploy_dag, refresh_dag and refresh_all_dags: the original plugin's custom APIs, made safe.

The uploaded code is never imported by the gateway.  It is syntax-checked by Airflow's own
Python in a separate process (``compile()`` only, nothing runs), written atomically into
the DAGs folder, and then Airflow's CLI parses it in its own processes: ``refresh_all_dags``
(``dags reserialize``), then ``list_dags`` and ``list_import_errors`` to learn which DAG
ids the file defines.  Every CLI call is planned by the interpreter.  Airflow 1.10 has no
such commands: there :class:`~gateway.dags.sync110.DagSync110` parses, writes and expires
the DAGs in Airflow's own interpreter instead (the one per-version branch here).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gateway.calls.service import CallContext, CliCalls
from gateway.cli.interpreter import BuiltinCall, Interpreter, Plan, PlanError
from gateway.cli.output import filter_loading_messages, last_json_line
from gateway.cli.values import Upload
from gateway.config.loader import DeployConfig
from gateway.core.envelope import Envelope
from gateway.dags.files import RefusedUpload, check_zip, place, safe_name
from gateway.dags.sync110 import DagSync110, SyncError, SyncResult
from gateway.execution.subprocess_runner import CliResult

log = logging.getLogger("gateway.deploy")

# Runs in Airflow's interpreter with -I (isolated): compile() builds a code object and
# discards it; nothing from the upload executes.  One JSON line out.
_SYNTAX_CHECK = r"""
import json, sys, zipfile
path, display, members = sys.argv[1], sys.argv[2], sys.argv[3:]
def check(name, data):
    try:
        compile(data, name, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return {"file": name, "line": exc.lineno, "message": exc.msg}
    except (ValueError, RecursionError, MemoryError) as exc:
        return {"file": name, "line": None, "message": type(exc).__name__ + ": " + str(exc)[:200]}
    return None
if members:
    with zipfile.ZipFile(path) as archive:
        errors = [check(m, archive.read(m)) for m in members]
else:
    with open(path, "rb") as handle:
        errors = [check(display, handle.read())]
print(json.dumps([e for e in errors if e]))
"""
SYNTAX_TIMEOUT_S = 30.0


def _plan(interpreter: Interpreter, api: str, args: dict[str, list[str]]) -> Plan:
    planned = interpreter.plan(api, args)
    if not isinstance(planned, Plan):  # pragma: no cover - the tables map these APIs to CLI commands
        raise PlanError(f"api '{api}' is not a CLI command on this Airflow", status=500)
    return planned


def _json_rows(result: CliResult) -> list[dict[str, Any]]:
    """The JSON list printed by an ``-o json`` command (whatever its exit code), or []."""
    try:
        rows = last_json_line(result.stdout)
    except ValueError:
        return []
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


class DagDeployer:
    """Serves ``deploy_dag``, ``refresh_dag`` and (on Airflow 1.10) ``refresh_all_dags``.

    :param cli: runs the CLI commands, each planned by ``interpreter``.
    :param work_dir: private folder for the syntax check's temporary copy.
    :param python: Airflow's interpreter (for the syntax check).
    """

    def __init__(
        self,
        settings: DeployConfig,
        *,
        interpreter: Interpreter,
        cli: CliCalls,
        work_dir: Path,
        python: str,
    ) -> None:
        self.settings = settings
        self.interpreter = interpreter
        self.cli = cli
        self.work_dir = work_dir
        # Created at start-up, not on the first upload: an unwritable state dir fails fast,
        # and uploads never change the filesystem outside the DAGs folder.
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.python = python
        self._folder: Path | None = settings.dags_folder
        self._folder_lock = threading.Lock()
        self.sync110 = DagSync110(cli.runner, python) if interpreter.dialect.dags_in_python else None

    # --- the DAGs folder ------------------------------------------------------------

    def dags_folder(self) -> Path:
        """The configured folder, or Airflow's ``core.dags_folder`` (asked once, then cached)."""
        with self._folder_lock:
            if self._folder is None:
                self._folder = Path(self._ask_dags_folder())
            folder = self._folder
        if not folder.is_dir():
            raise RefusedUpload("the DAGs folder does not exist on the gateway host", status=500)
        return folder.resolve()

    def _ask_dags_folder(self) -> str:
        timeout = self.cli.timeout_for("config")
        found = ""
        if self.sync110 is not None:
            try:
                found = self.sync110.dags_folder(timeout)
            except SyncError:
                found = ""
        else:
            result = self.cli.runner.run(self.interpreter.query("dags_folder"), timeout_s=timeout)
            lines = [ln.strip() for ln in filter_loading_messages(result.stdout).splitlines() if ln.strip()]
            found = lines[-1] if result.returncode == 0 and lines else ""
        if not found.startswith("/"):
            raise RefusedUpload(
                "could not learn the DAGs folder from Airflow (set deploy.dags_folder)", status=500
            )
        return found

    # --- deploy_dag -----------------------------------------------------------------

    def deploy(self, call: BuiltinCall, ctx: CallContext) -> None:
        values = call.values
        envelope = ctx.envelope
        upload = values["dag_file"]
        assert isinstance(upload, Upload)  # noqa: S101 - Kind.UPLOAD values are Uploads
        if values.get("pause") is True and values.get("unpause") is True:
            raise RefusedUpload("pause and unpause cannot both be on")
        subfolder = values.get("subfolder")
        if subfolder is not None and not self.settings.allow_subfolder:
            raise RefusedUpload("subfolder is disabled on this gateway (deploy.allow_subfolder)")
        name = safe_name(upload.filename, allow_zip=self.settings.allow_zip)
        if name.reduced:
            envelope.add_warning(f"the file name was reduced to '{name.name}'")
        if not upload.data:
            raise RefusedUpload("the uploaded file is empty")
        members: list[str] = []
        if name.is_zip:
            members = check_zip(
                upload.data,
                max_entries=self.settings.max_zip_entries,
                max_unzipped_bytes=self.settings.max_unzipped_bytes,
            )
        elif not (b"airflow" in upload.data.lower() and b"dag" in upload.data.lower()):
            envelope.add_warning(
                "the file does not contain both 'airflow' and 'dag': Airflow's safe mode "
                "([core] dag_discovery_safe_mode) skips such files"
            )
        self._syntax_check(upload.data, name.name, members)
        folder = self.dags_folder()
        try:
            path = place(
                folder,
                str(subfolder) if subfolder else None,
                name.name,
                upload.data,
                replace=values.get("force") is True,
            )
        except OSError as exc:
            log.warning("deploy_dag could not write into %s: %s", folder, exc.strerror)
            raise RefusedUpload(f"could not write into the DAGs folder: {exc.strerror}", status=500) from None
        envelope.extra["file"] = str(path)
        self._register(path, call, ctx)

    def _syntax_check(self, data: bytes, name: str, members: Sequence[str]) -> None:
        """Compile (never run) the code in a separate Airflow-Python process; 400 on errors."""
        fd, temp = tempfile.mkstemp(prefix="upload-", suffix=".tmp", dir=self.work_dir)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            argv = [self.python, "-I", "-c", _SYNTAX_CHECK, temp, name, *members]
            result = self.cli.runner.run(argv, timeout_s=SYNTAX_TIMEOUT_S)
        finally:
            os.unlink(temp)
        try:
            errors = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RefusedUpload("the syntax check did not complete (file too complex?)") from None
        if errors:
            first = errors[0]
            where = f"{first['file']}, line {first['line']}" if first.get("line") else first["file"]
            raise RefusedUpload(f"the file was not written: syntax error in {where}: {first['message']}")

    def _register(self, path: Path, call: BuiltinCall, ctx: CallContext) -> None:
        """Let Airflow parse the folder, then report the file's DAG ids and import errors."""
        if self.sync110 is not None:
            self._register110(path, call, ctx.envelope)
            return
        envelope = ctx.envelope
        refresh = _plan(self.interpreter, "refresh_all_dags", {})
        commands = [refresh.display]
        self.cli.run(refresh, ctx)  # the standard envelope fields of the reserialize run
        if envelope.status == "ERROR":
            envelope.extra["error"] = "the file was written but Airflow could not parse the DAGs folder"
            return
        listing = _plan(self.interpreter, "list_dags", {"output": ["json"]})
        errors_plan = _plan(self.interpreter, "list_import_errors", {"output": ["json"]})
        commands += [listing.display, errors_plan.display]
        with ThreadPoolExecutor(max_workers=2) as pool:
            dags_f = pool.submit(self.cli.output_of, listing)
            errs_f = pool.submit(self.cli.output_of, errors_plan)
            dag_rows, error_rows = _json_rows(dags_f.result()), _json_rows(errs_f.result())
        folder = self.dags_folder()
        dag_ids = sorted(
            {str(r["dag_id"]) for r in dag_rows if "dag_id" in r and _same_file(r.get("fileloc"), path)}
        )
        import_errors = [
            {"file": str(path), "error": str(r.get("error", ""))}
            for r in error_rows
            if _same_file(r.get("filepath"), path, folder)
        ]
        states = self._set_paused(dag_ids, call, commands, envelope)
        envelope.airflow_cmd = " && ".join(commands)
        self._report(path, dag_ids, import_errors, states, envelope)

    def _register110(self, path: Path, call: BuiltinCall, envelope: Envelope) -> None:
        """Airflow 1.10: parse the file in Airflow's Python, write and expire its DAGs' rows."""
        assert self.sync110 is not None  # noqa: S101 - only called on 1.10
        try:
            synced = self.sync110.sync(str(path), self.cli.timeout_for("refresh_all_dags"))
        except SyncError as exc:
            raise exc.but("the file was written but") from None
        envelope.duration_seconds = round(synced.duration_s, 3)
        dag_ids = sorted({str(d["dag_id"]) for d in synced.dags if _same_file(d.get("fileloc"), path)})
        import_errors = [
            {"file": str(path), "error": str(e.get("error", ""))}
            for e in synced.import_errors
            if _same_file(e.get("file"), path)
        ]
        commands: list[str] = []
        states = self._set_paused(dag_ids, call, commands, envelope)
        envelope.airflow_cmd = " && ".join(commands) or None
        self._report(path, dag_ids, import_errors, states, envelope)

    @staticmethod
    def _report(
        path: Path,
        dag_ids: list[str],
        import_errors: list[dict[str, str]],
        states: dict[str, bool | None],
        envelope: Envelope,
    ) -> None:
        envelope.extra["dag_ids"] = dag_ids
        envelope.extra["import_errors"] = import_errors
        envelope.extra["data"] = {
            "file": str(path),
            "dag_ids": dag_ids,
            "import_errors": import_errors,
            "paused": states,
        }
        if import_errors:
            envelope.add_warning("Airflow could not import the file: see import_errors")
        elif not dag_ids:
            envelope.add_warning("Airflow found no DAG in the file")
        envelope.output = f"DAG file [{path}] has been uploaded" + (
            f"; DAG ids: {', '.join(dag_ids)}" if dag_ids else ""
        )

    def _set_paused(
        self, dag_ids: list[str], call: BuiltinCall, commands: list[str], envelope: Envelope
    ) -> dict[str, bool | None]:
        wanted = (
            "pause" if call.values.get("pause") is True else "unpause" if call.values.get("unpause") else None
        )
        states: dict[str, bool | None] = {dag_id: None for dag_id in dag_ids}
        if wanted is None or not dag_ids:
            return states
        plans = {dag_id: _plan(self.interpreter, wanted, {"dag_id": [dag_id]}) for dag_id in dag_ids}
        commands += [p.display for p in plans.values()]
        with ThreadPoolExecutor(max_workers=min(len(plans), 4)) as pool:
            futures = {d: pool.submit(self.cli.output_of, p) for d, p in plans.items()}
            for dag_id, future in futures.items():
                result = future.result()
                if result.returncode == 0:
                    states[dag_id] = wanted == "pause"
                else:
                    envelope.add_warning(f"could not {wanted} '{dag_id}' (exit code {result.returncode})")
        return states

    # --- refresh_dag ----------------------------------------------------------------

    def refresh_dag(self, call: BuiltinCall, ctx: CallContext) -> None:
        """Reserialize the bundle holding the DAG (the whole folder on Airflow 2); 404 if unknown.

        Airflow 1.10: re-read the DAG's file and set ``last_expired`` (see :mod:`gateway.dags.sync110`).
        """
        dag_id = str(call.values["dag_id"])
        if self.sync110 is not None:
            self._refresh110(dag_id, ctx.envelope)
            return
        listing = _plan(self.interpreter, "list_dags", {"output": ["json"]})
        row = next((r for r in _json_rows(self.cli.output_of(listing)) if r.get("dag_id") == dag_id), None)
        if row is None:
            raise PlanError(
                f"DAG '{dag_id}' not found; a new DAG file is found with api=refresh_all_dags", status=404
            )
        args = {"bundle": [str(row["bundle_name"])]} if row.get("bundle_name") else {}
        plan = _plan(self.interpreter, "refresh_all_dags", args)
        ctx.envelope.airflow_cmd = plan.display
        self.cli.run(plan, ctx)

    def _refresh110(self, dag_id: str, envelope: Envelope) -> None:
        assert self.sync110 is not None  # noqa: S101 - only called on 1.10
        timeout = self.cli.timeout_for("refresh_dag")
        expired = self.sync110.expire(dag_id, timeout)
        if expired.dags and expired.dags[0].get("fileloc"):
            # Re-read its file too, so that the rows (and any DAG added beside it) are current.
            expired = self.sync110.sync(str(expired.dags[0]["fileloc"]), timeout)
        if not any(d.get("dag_id") == dag_id for d in expired.dags):
            raise PlanError(
                f"DAG '{dag_id}' not found; a new DAG file is found with api=refresh_all_dags", status=404
            )
        self._answer110(f"DAG [{dag_id}] is now fresh as a daisy", expired, envelope)

    def refresh_all_dags(self, call: BuiltinCall, ctx: CallContext) -> None:
        """Airflow 1.10 only (2.x and 3.x run ``dags reserialize``): parse the whole folder."""
        if self.sync110 is None:  # pragma: no cover - the other tables map it to a CLI command
            raise PlanError("refresh_all_dags is a CLI command on this Airflow", status=500)
        if call.values.get("bundle") is not None:
            raise PlanError("argument 'bundle' is not supported on Airflow 1.10: it has no DAG bundles")
        synced = self.sync110.sync(str(self.dags_folder()), self.cli.timeout_for("refresh_all_dags"))
        self._answer110("All DAGs are now up-to-date", synced, ctx.envelope)

    @staticmethod
    def _answer110(message: str, synced: SyncResult, envelope: Envelope) -> None:
        envelope.output = message
        envelope.duration_seconds = round(synced.duration_s, 3)
        envelope.extra["dag_ids"] = sorted(str(d["dag_id"]) for d in synced.dags)
        envelope.extra["import_errors"] = synced.import_errors
        if synced.import_errors:
            envelope.add_warning("Airflow could not import some files: see import_errors")


def _same_file(reported: object, path: Path, folder: Path | None = None) -> bool:
    """Does Airflow's ``fileloc``/``filepath`` name ``path`` (or a module inside the zip ``path``)?"""
    if not isinstance(reported, str) or not reported:
        return False
    candidate = Path(reported)
    if not candidate.is_absolute():
        if folder is None:
            return False
        candidate = folder / candidate  # 3.x import errors are relative to the bundle
    text, target = os.path.normpath(candidate), os.path.normpath(path)
    return text == target or text.startswith(target + os.sep)
