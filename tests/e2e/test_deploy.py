"""deploy_dag, refresh_dag and refresh_all_dags through real gunicorn and real Airflow (issue 6)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import threading
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import TOKEN_HEADER
from tests.support.airflow import AirflowHome
from tests.support.http import Reply, get, post_multipart
from tests.support.servers import GatewayServer

DAG_TEMPLATE = '''"""Deployed by the gateway's tests; the DAG object is deliberately not called dag."""
import datetime

from airflow import version

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG

NO_SCHEDULE = {{"schedule_interval" if version.version.startswith("1.") else "schedule": None}}

with DAG(dag_id="{dag_id}", start_date=datetime.datetime(2026, 1, 1), **NO_SCHEDULE) as {var}:
    pass
'''


def dag_source(dag_id: str, var: str = "my_pipeline") -> bytes:
    return DAG_TEMPLATE.format(dag_id=dag_id, var=var).encode()


def airflow_dags(airflow: AirflowHome) -> dict[str, dict[str, object]]:
    """``airflow dags list -o json`` of the real Airflow, by dag_id (1.10: its ``dag`` table)."""
    if airflow.major == "1.10":
        rows = airflow.sql("SELECT dag_id, is_paused, fileloc FROM dag")
        return {str(d): {"dag_id": d, "is_paused": str(bool(p)), "fileloc": f} for d, p, f in rows}
    done = airflow.cli("dags", "list", "-o", "json")
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    return {row["dag_id"]: row for row in rows}


def deploy(server: GatewayServer, name: str, data: bytes, **fields: str) -> Reply:
    return post_multipart(
        server.api("api=deploy_dag"), fields, [("dag_file", name, data)], headers=TOKEN_HEADER
    )


def snapshot(*roots: Path) -> dict[str, int]:
    """Every file and link under ``roots`` (not following links), with its size."""
    found: dict[str, int] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                found[path] = os.lstat(path).st_size
    return found


def test_readme_curl_deploy_then_airflow_lists_it_unpaused(
    gateway: GatewayServer, airflow: AirflowHome
) -> None:
    """The README's curl upload deploys a DAG (not named dag) that real Airflow lists, unpaused as asked."""
    dag_id = f"gw_deployed_{airflow.major.replace('.', '')}"
    source = airflow.home.parent / f"{dag_id}.py"
    source.write_bytes(dag_source(dag_id))
    done = subprocess.run(
        [
            "curl", "-sS", "-X", "POST", "-H", "rest_api_plugin_http_token: changeme",
            "-F", f"dag_file=@{source}", "-F", "unpause=on",
            gateway.api("api=deploy_dag"),
        ],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    body = json.loads(done.stdout)
    assert body["status"] == "OK", body
    assert body["dag_ids"] == [dag_id]
    assert body["import_errors"] == []
    assert body["file"] == str(airflow.dags_folder / f"{dag_id}.py")
    assert body["data"]["paused"] == {dag_id: False}
    assert (airflow.dags_folder / f"{dag_id}.py").read_bytes() == source.read_bytes()
    listed = airflow_dags(airflow)
    assert str(listed[dag_id]["is_paused"]) == "False"

    again = deploy(gateway, f"{dag_id}.py", dag_source(dag_id, var="other"))
    assert again.status == 409 and "force" in again.json["output"]

    forced = deploy(gateway, f"{dag_id}.py", dag_source(dag_id, var="other"), force="on", pause="on")
    assert forced.status == 200, forced.json
    assert forced.json["data"]["paused"] == {dag_id: True}
    assert str(airflow_dags(airflow)[dag_id]["is_paused"]) == "True"
    assert b"as other:" in (airflow.dags_folder / f"{dag_id}.py").read_bytes()


def test_syntax_error_is_refused_and_not_written(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """A file with a syntax error gets a 400 naming the line, and nothing is written."""
    before = snapshot(airflow.dags_folder)
    reply = deploy(gateway, "broken_syntax.py", b"from airflow import DAG\n\ndef oops(:\n    pass\n")
    assert reply.status == 400
    assert "syntax error in broken_syntax.py, line 3" in reply.json["output"]
    assert snapshot(airflow.dags_folder) == before


def test_uploaded_code_never_runs_in_the_gateway(gateway3: GatewayServer, airflow3: AirflowHome) -> None:
    """Top-level code of an upload runs only in Airflow's own processes, never in the gateway's."""
    traces = airflow3.home.parent / f"traces-{uuid.uuid4().hex}"
    traces.mkdir()
    code = (
        "# an airflow dag file whose import leaves a trace naming the importing process\n"
        "import os, pathlib, sys\n"
        f"pathlib.Path({str(traces)!r}, str(os.getpid())).write_text(sys.argv[0])\n"
    ).encode()
    reply = deploy(gateway3, "leaves_trace.py", code, force="on")
    assert reply.status == 200, reply.json
    importers = {path.read_text() for path in traces.iterdir()}
    assert importers, "Airflow should have imported the file (else this test proves nothing)"
    assert all(Path(argv).name == "airflow" for argv in importers), importers
    (airflow3.dags_folder / "leaves_trace.py").unlink()


def test_import_errors_are_reported(gateway3: GatewayServer, airflow3: AirflowHome) -> None:
    """A file Airflow cannot import is written, and Airflow's import error is in the envelope."""
    reply = deploy(
        gateway3, "import_error.py", b"from airflow.sdk import DAG\nimport no_such_module_xyz\n", force="on"
    )
    assert reply.status == 200, reply.json
    assert reply.json["dag_ids"] == []
    assert len(reply.json["import_errors"]) == 1
    assert "no_such_module_xyz" in reply.json["import_errors"][0]["error"]
    assert "could not import" in reply.json["warning"]
    (airflow3.dags_folder / "import_error.py").unlink()


def test_zip_of_dags_is_deployed(gateway3: GatewayServer, airflow3: AirflowHome) -> None:
    """A .zip of DAG files is vetted and deployed as Airflow's packaged DAG; its DAG ids are found."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("zipped_dag.py", dag_source("gw_zipped"))
    reply = deploy(gateway3, "packed.zip", buffer.getvalue(), force="on")
    assert reply.status == 200, reply.json
    assert reply.json["dag_ids"] == ["gw_zipped"]


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


ATTACKS = [
    pytest.param({}, "..", b"x = 1", 400, id="dotdot"),
    pytest.param({}, "evil\x00.py", b"x = 1", 400, id="nul"),
    pytest.param({}, "d\u0430g.py", b"x = 1", 400, id="cyrillic-look-alike"),
    pytest.param({}, "dag\uff0epy", b"x = 1", 400, id="fullwidth-dot"),
    pytest.param({}, "evil.py.txt", b"x = 1", 400, id="not-py"),
    pytest.param({}, "evil.txt.py", b"x = 1", 400, id="double-extension"),
    pytest.param({}, "evil.pyc", b"x = 1", 400, id="pyc"),
    pytest.param({}, "big.py", b"#" * (65 * 1024), 413, id="oversized-file"),
    pytest.param({}, "huge.py", b"#" * (300 * 1024), 413, id="oversized-body"),
    pytest.param({}, "slip.zip", _zip({"../../slip.py": b"x = 1"}), 400, id="zip-slip"),
    pytest.param({}, "abs.zip", _zip({"/tmp/abs_slip.py": b"x = 1"}), 400, id="zip-absolute"),
    pytest.param({"subfolder": "../outside"}, "sub.py", b"x = 1", 400, id="subfolder-dotdot"),
    pytest.param({"subfolder": "/tmp"}, "sub.py", b"x = 1", 400, id="subfolder-absolute"),
    pytest.param({"subfolder": "a\\..\\..\\b"}, "sub.py", b"x = 1", 400, id="subfolder-backslash"),
    pytest.param({"subfolder": "linked"}, "sub.py", b"x = 1", 409, id="subfolder-symlink"),
]


@pytest.mark.parametrize(("fields", "name", "data", "status"), ATTACKS)
def test_upload_attacks_write_nothing_outside(
    gateway3: GatewayServer,
    airflow3: AirflowHome,
    fields: dict[str, str],
    name: str,
    data: bytes,
    status: int,
) -> None:
    """Hostile names, sizes, zips and subfolders are refused; no file appears anywhere in the area."""
    outside = airflow3.home.parent / "outside"
    outside.mkdir(exist_ok=True)
    link = airflow3.dags_folder / "linked"
    if not link.is_symlink():
        link.symlink_to(outside)
    area = [airflow3.home.parent]  # pytest's base temp: every Airflow home and gateway state dir
    before = snapshot(*area)
    reply = deploy(gateway3, name, data, **fields)
    assert reply.status == status, reply.body[:500]
    assert reply.content_type == "application/json"
    after = snapshot(*area)
    # Logs and the metrics files of a worker's first request are the gateway's own state.
    new = {
        p
        for p in set(after) - set(before)
        if not p.endswith(".log") and "/logs/" not in p and "/prometheus-multiproc-" not in p
    }
    assert new == set()
    assert snapshot(outside) == {}
    assert not Path("/tmp/abs_slip.py").exists() and not Path("/slip.py").exists()


def test_path_in_file_name_is_reduced_to_the_dags_folder(
    gateway3: GatewayServer, airflow3: AirflowHome
) -> None:
    """'../../x.py' and '/tmp/x.py' land as x.py inside the DAGs folder, with a warning, nowhere else."""
    token = uuid.uuid4().hex[:8]
    area = [airflow3.home.parent]
    before = snapshot(*area)
    reply = deploy(gateway3, f"..\\../../gw_reduced_{token}.py", dag_source(f"gw_reduced_{token}"))
    assert reply.status == 200, reply.json
    assert f"reduced to 'gw_reduced_{token}.py'" in reply.json["warning"]
    new = {p for p in set(snapshot(*area)) - set(before) if f"gw_reduced_{token}" in p}
    assert str(airflow3.dags_folder / f"gw_reduced_{token}.py") in new
    # Besides the file, only Airflow's own bytecode cache (dags/__pycache__) may appear.
    assert all(p.startswith(f"{airflow3.dags_folder}/") for p in new), new


def test_concurrent_deploys_of_one_name_leave_one_complete_file(
    gateway3: GatewayServer, airflow3: AirflowHome
) -> None:
    """Two simultaneous uploads of one name: one is written whole, the other gets 409; no temp file left."""
    payloads = [b"# airflow dag\n" + bytes([65 + i]) * 40_000 + b"\n" for i in range(2)]
    replies: list[Reply] = []

    def send(data: bytes) -> None:
        replies.append(deploy(gateway3, "race.py", data))

    threads = [threading.Thread(target=send, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status for r in replies) == [200, 409]
    assert (airflow3.dags_folder / "race.py").read_bytes() in payloads
    assert not [p for p in os.listdir(airflow3.dags_folder) if p.startswith(".deploy-")]


def test_refresh_dag_and_refresh_all_dags(gateway: GatewayServer, airflow: AirflowHome) -> None:
    """refresh_dag reserializes a known DAG's bundle (404 if unknown); refresh_all_dags reserializes all.

    On 1.10 both mark the DAGs expired (``DagModel.last_expired``), as the plugin did.
    """
    if airflow.major == "1.10":
        (before,) = airflow.sql("SELECT last_expired FROM dag WHERE dag_id = 'gw_example'")
        reply = get(gateway.api("api=refresh_dag&dag_id=gw_example"), headers=TOKEN_HEADER)
        assert reply.status == 200 and reply.json["output"] == "DAG [gw_example] is now fresh as a daisy"
        (after,) = airflow.sql("SELECT last_expired FROM dag WHERE dag_id = 'gw_example'")
        assert after[0] is not None and after != before
        assert get(gateway.api("api=refresh_dag&dag_id=no_such_dag_xyz"), headers=TOKEN_HEADER).status == 404
        every = get(gateway.api("api=refresh_all_dags"), headers=TOKEN_HEADER)
        assert every.status == 200 and "gw_example" in every.json["dag_ids"], every.json
        bundle = get(gateway.api("api=refresh_all_dags&bundle=dags-folder"), headers=TOKEN_HEADER)
        assert bundle.status == 400 and "bundle" in bundle.json["output"]
        listed = get(gateway.api("api=list_dags&output=json"), headers=TOKEN_HEADER)  # the page's DAG list
        assert listed.status == 200 and "gw_example" in {row["dag_id"] for row in listed.json["data"]}
        return
    reply = get(gateway.api("api=refresh_dag&dag_id=gw_example"), headers=TOKEN_HEADER)
    assert reply.status == 200, reply.json
    assert reply.json["airflow_cmd"].startswith("airflow dags reserialize")
    assert "--subdir" not in reply.json["airflow_cmd"] and "-S" not in reply.json["airflow_cmd"].split()
    assert get(gateway.api("api=refresh_dag&dag_id=no_such_dag_xyz"), headers=TOKEN_HEADER).status == 404
    every = get(gateway.api("api=refresh_all_dags"), headers=TOKEN_HEADER)
    assert every.status == 200 and every.json["airflow_cmd"] == "airflow dags reserialize"
