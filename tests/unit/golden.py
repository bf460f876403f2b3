"""Golden argv for every API on every dialect: (dialect, api, request arguments, argv).

The argv omits the ``airflow`` executable.  ``tests/unit/test_golden_argv.py`` checks the
interpreter produces exactly these; ``tests/e2e/test_argv_parses.py`` feeds each one to the
real Airflow's argparse parser, so a flag that does not exist in that version fails there.
"""

from __future__ import annotations

FILES = "/srv/gw/files"
D = "2026-11-02T00:00:00+00:00"
CONF = '{"x":"hello"}'

# Cases shared by both modern dialects (identical argv).
_COMMON: list[tuple[str, dict[str, str], list[str]]] = [
    ("version", {}, ["version"]),
    (
        "render",
        {"dag_id": "d1", "task_id": "t1", "execution_date": D},
        ["tasks", "render", "--", "d1", "t1", D],
    ),
    (
        "render",
        {"dag_id": "d1", "task_id": "t1", "logical_date": "manual_1", "map_index": "2"},
        ["tasks", "render", "--map-index=2", "--", "d1", "t1", "manual_1"],
    ),
    (
        "variables",
        {"set": "k1", "set_value": "-v with spaces"},
        ["variables", "set", "--", "k1", "-v with spaces"],
    ),
    (
        "variables",
        {"set": "k1", "set_value": "v", "description": "about k1"},
        ["variables", "set", "--description=about k1", "--", "k1", "v"],
    ),
    (
        "variables",
        {"get": "k1", "default": "fallback"},
        ["variables", "get", "--default=fallback", "--", "k1"],
    ),
    ("variables", {"get": "k1", "json": ""}, ["variables", "get", "--", "k1"]),
    ("variables", {"delete": "k1"}, ["variables", "delete", "--", "k1"]),
    ("variables", {"import": "vars.json"}, ["variables", "import", "--", f"{FILES}/vars.json"]),
    ("variables", {"export": "vars.json"}, ["variables", "export", "--", f"{FILES}/vars.json"]),
    ("variables", {}, ["variables", "list"]),
    ("variables", {"output": "json"}, ["variables", "list", "--output=json"]),
    (
        "connections",
        {"add": "on", "conn_id": "c1", "conn_uri": "postgresql://u:p@db:5432/x", "conn_extra": '{"a": 1}'},
        ["connections", "add", "--conn-uri=postgresql://u:p@db:5432/x", '--conn-extra={"a":1}', "--", "c1"],
    ),
    (
        "connections",
        {"add": "true", "conn_id": "c2", "conn_type": "http"},
        ["connections", "add", "--conn-type=http", "--", "c2"],
    ),
    ("connections", {"delete": "1", "conn_id": "c1"}, ["connections", "delete", "--", "c1"]),
    ("connections", {"list": ""}, ["connections", "list"]),
    ("connections", {"output": "json"}, ["connections", "list", "--output=json"]),
    ("pause", {"dag_id": "d1"}, ["dags", "pause", "--", "d1"]),
    ("unpause", {"dag_id": "d1", "output": "json"}, ["dags", "unpause", "--output=json", "--", "d1"]),
    (
        "task_failed_deps",
        {"dag_id": "d1", "task_id": "t1", "execution_date": D},
        ["tasks", "failed-deps", "--", "d1", "t1", D],
    ),
    (
        "test",
        {"dag_id": "d1", "task_id": "t1", "execution_date": D, "task_params": CONF},
        ["tasks", "test", f"--task-params={CONF}", "--", "d1", "t1", D],
    ),
    ("dag_state", {"dag_id": "d1", "execution_date": D}, ["dags", "state", "--", "d1", D]),
    ("list_tasks", {"dag_id": "d1"}, ["tasks", "list", "--", "d1"]),
    ("list_dags", {}, ["dags", "list"]),
    ("list_dags", {"report": "on", "output": "json"}, ["dags", "report", "--output=json"]),
    (
        "kerberos",
        {"principal": "airflow@EXAMPLE.COM", "keytab": "/etc/airflow.keytab"},
        ["kerberos", "--keytab=/etc/airflow.keytab", "--", "airflow@EXAMPLE.COM"],
    ),
    ("kerberos", {}, ["kerberos"]),
    (
        "task_state",
        {"dag_id": "d1", "task_id": "t1", "execution_date": D},
        ["tasks", "state", "--", "d1", "t1", D],
    ),
    ("pool", {"set": "p1 3 my pool"}, ["pools", "set", "--", "p1", "3", "my pool"]),
    ("pool", {"get": "p1", "output": "json"}, ["pools", "get", "--output=json", "--", "p1"]),
    ("pool", {"delete": "p1"}, ["pools", "delete", "--", "p1"]),
    ("pool", {}, ["pools", "list"]),
    (
        "list_task_states",
        {"dag_id": "d1", "execution_date": "manual_1", "output": "json"},
        ["tasks", "states-for-dag-run", "--output=json", "--", "d1", "manual_1"],
    ),
    ("list_import_errors", {"output": "json"}, ["dags", "list-import-errors", "--output=json"]),
    ("list_variables", {"output": "json"}, ["variables", "list", "--output=json"]),
    ("list_pools", {}, ["pools", "list"]),
    ("list_connections", {"output": "json"}, ["connections", "list", "--output=json"]),
    (
        "next_execution",
        {"dag_id": "d1", "num_executions": "3"},
        ["dags", "next-execution", "--num-executions=3", "--", "d1"],
    ),
    ("dag_details", {"dag_id": "d1", "output": "json"}, ["dags", "details", "--output=json", "--", "d1"]),
    ("triggerer", {"capacity": "100"}, ["triggerer", "--capacity=100"]),
    ("dag_processor", {"num_runs": "1"}, ["dag-processor", "--num-runs=1"]),
    (
        "worker",
        {"queues": "default,q2", "concurrency": "4"},
        ["celery", "worker", "--queues=default,q2", "--concurrency=4"],
    ),
    (
        "flower",
        {"hostname": "127.0.0.1", "port": "5555"},
        ["celery", "flower", "--hostname=127.0.0.1", "--port=5555"],
    ),
]

AIRFLOW3: list[tuple[str, dict[str, str], list[str]]] = [
    *_COMMON,
    (
        "trigger_dag",
        {"dag_id": "d1", "run_id": "r1", "conf": CONF, "execution_date": D},
        ["dags", "trigger", "--run-id=r1", f"--conf={CONF}", f"--logical-date={D}", "--", "d1"],
    ),
    (
        "trigger_dag",
        {"dag_id": "d1", "output": "json"},
        ["dags", "trigger", "--output=json", "--", "d1"],
    ),
    (
        "backfill",
        {"dag_id": "d1", "start_date": "2026-10-01", "end_date": "2026-10-03", "dry_run": "on", "conf": CONF},
        [
            "backfill",
            "create",
            "--dag-id=d1",
            "--from-date=2026-10-01",
            "--to-date=2026-10-03",
            "--dry-run",
            f"--dag-run-conf={CONF}",
        ],
    ),
    (
        "clear",
        {
            "dag_id": "d1",
            "task_regex": "first",
            "start_date": "2026-11-01",
            "end_date": "2026-11-03",
            "downstream": "on",
            "only_failed": "on",
            "no_confirm": "on",
        },
        [
            "tasks",
            "clear",
            "--task-regex=first",
            "--start-date=2026-11-01",
            "--end-date=2026-11-03",
            "--downstream",
            "--only-failed",
            "--yes",
            "--",
            "d1",
        ],
    ),
    ("scheduler", {"num_runs": "1"}, ["scheduler", "--num-runs=1"]),
    (
        "list_dag_runs",
        {"dag_id": "d1", "state": "queued", "output": "json"},
        ["dags", "list-runs", "--state=queued", "--output=json", "--", "d1"],
    ),
    ("refresh_all_dags", {"bundle": "dags-folder"}, ["dags", "reserialize", "--bundle-name=dags-folder"]),
]

AIRFLOW2: list[tuple[str, dict[str, str], list[str]]] = [
    *_COMMON,
    (
        "render",
        {"dag_id": "d1", "task_id": "t1", "execution_date": D, "subdir": "/opt/dags"},
        ["tasks", "render", "--subdir=/opt/dags", "--", "d1", "t1", D],
    ),
    (
        "trigger_dag",
        {"dag_id": "d1", "run_id": "r1", "conf": CONF, "exec_date": D, "output": "json"},
        ["dags", "trigger", "--run-id=r1", f"--conf={CONF}", f"--exec-date={D}", "--output=json", "--", "d1"],
    ),
    (
        "test",
        {"dag_id": "d1", "task_id": "t1", "execution_date": D, "dry_run": "on"},
        ["tasks", "test", "--dry-run", "--", "d1", "t1", D],
    ),
    (
        "run",
        {
            "dag_id": "d1",
            "task_id": "t1",
            "execution_date": "manual_1",
            "local": "on",
            "force": "on",
            "mark_success": "on",
            "pool": "default_pool",
            "ignore_all_dependencies": "1",
        },
        [
            "tasks",
            "run",
            "--mark-success",
            "--force",
            "--pool=default_pool",
            "--local",
            "--ignore-all-dependencies",
            "--",
            "d1",
            "t1",
            "manual_1",
        ],
    ),
    ("list_tasks", {"dag_id": "d1", "tree": "on"}, ["tasks", "list", "--tree", "--", "d1"]),
    (
        "backfill",
        {
            "dag_id": "d1",
            "start_date": "2026-10-01",
            "end_date": "2026-10-02",
            "dry_run": "on",
            "task_regex": "first",
            "donot_pickle": "on",
            "ignore_first_depends_on_past": "on",
        },
        [
            "dags",
            "backfill",
            "--task-regex=first",
            "--start-date=2026-10-01",
            "--end-date=2026-10-02",
            "--donot-pickle",
            "--ignore-first-depends-on-past",
            "--dry-run",
            "--yes",
            "--",
            "d1",
        ],
    ),
    (
        "clear",
        {"dag_id": "d1", "task_regex": "first", "upstream": "on", "exclude_subdags": "on"},
        ["tasks", "clear", "--task-regex=first", "--upstream", "--exclude-subdags", "--yes", "--", "d1"],
    ),
    (
        "scheduler",
        {"num_runs": "1", "subdir": "/opt/dags"},
        ["scheduler", "--subdir=/opt/dags", "--num-runs=1"],
    ),
    (
        "list_dags",
        {"subdir": "/opt/dags", "output": "json"},
        ["dags", "list", "--subdir=/opt/dags", "--output=json"],
    ),
    (
        "list_dag_runs",
        {"dag_id": "d1", "state": "queued", "output": "json"},
        ["dags", "list-runs", "--dag-id=d1", "--state=queued", "--output=json"],
    ),
    # never `-S`: on 2.x `dags reserialize -S` deletes every serialized DAG first
    ("refresh_all_dags", {}, ["dags", "reserialize"]),
]

# Airflow 1.10: argv level only (no 1.10 runs on Python 3.11); flags from the late-1.10 cli.py.
AIRFLOW110: list[tuple[str, dict[str, str], list[str]]] = [
    ("version", {}, ["version"]),
    (
        "render",
        {"dag_id": "d1", "task_id": "t1", "execution_date": D, "subdir": "/opt/dags"},
        ["render", "--subdir=/opt/dags", "--", "d1", "t1", D],
    ),
    ("variables", {"set": "k1", "set_value": "v 1"}, ["variables", "--set", "k1", "v 1"]),
    ("variables", {"get": "k1", "default": "x"}, ["variables", "--get=k1", "--default=x"]),
    ("variables", {"delete": "k1"}, ["variables", "--delete=k1"]),
    ("variables", {"import": "vars.json"}, ["variables", f"--import={FILES}/vars.json"]),
    ("variables", {"export": "vars.json"}, ["variables", f"--export={FILES}/vars.json"]),
    ("variables", {}, ["variables"]),
    (
        "connections",
        {"add": "on", "conn_id": "c1", "conn_uri": "http://h"},
        ["connections", "--add", "--conn_id=c1", "--conn_uri=http://h"],
    ),
    ("connections", {"delete": "on", "conn_id": "c1"}, ["connections", "--delete", "--conn_id=c1"]),
    ("connections", {"list": "on"}, ["connections", "--list"]),
    ("pause", {"dag_id": "d1"}, ["pause", "--", "d1"]),
    ("unpause", {"dag_id": "d1", "subdir": "/opt/dags"}, ["unpause", "--subdir=/opt/dags", "--", "d1"]),
    (
        "task_failed_deps",
        {"dag_id": "d1", "task_id": "t1", "execution_date": D},
        ["task_failed_deps", "--", "d1", "t1", D],
    ),
    (
        "trigger_dag",
        {"dag_id": "d1", "run_id": "r1", "conf": CONF, "exec_date": D},
        ["trigger_dag", "--run_id=r1", f"--conf={CONF}", f"--exec_date={D}", "--", "d1"],
    ),
    (
        "test",
        {"dag_id": "d1", "task_id": "t1", "execution_date": D, "dry_run": "on", "task_params": CONF},
        ["test", "--dry_run", f"--task_params={CONF}", "--", "d1", "t1", D],
    ),
    ("dag_state", {"dag_id": "d1", "execution_date": D}, ["dag_state", "--", "d1", D]),
    (
        "run",
        {"dag_id": "d1", "task_id": "t1", "execution_date": D, "local": "on", "ignore_dependencies": "on"},
        ["run", "--local", "--ignore_dependencies", "--", "d1", "t1", D],
    ),
    ("list_tasks", {"dag_id": "d1", "tree": "on"}, ["list_tasks", "--tree", "--", "d1"]),
    (
        "backfill",
        {"dag_id": "d1", "start_date": "2017-01-01", "end_date": "2017-01-02", "dry_run": "on"},
        ["backfill", "--start_date=2017-01-01", "--end_date=2017-01-02", "--dry_run", "--yes", "--", "d1"],
    ),
    ("list_dags", {"report": "on"}, ["list_dags", "--report"]),
    (
        "kerberos",
        {"principal": "p@EXAMPLE.COM", "keytab": "/k"},
        ["kerberos", "--keytab=/k", "--", "p@EXAMPLE.COM"],
    ),
    (
        "worker",
        {"do_pickle": "on", "queues": "q1", "concurrency": "2"},
        ["worker", "--do_pickle", "--queues=q1", "--concurrency=2"],
    ),
    (
        "flower",
        {"port": "5555", "broker_api": "http://b"},
        ["flower", "--port=5555", "--broker_api=http://b"],
    ),
    (
        "scheduler",
        {"dag_id": "d1", "run-duration": "10", "num_runs": "1"},
        ["scheduler", "--dag_id=d1", "--run-duration=10", "--num_runs=1"],
    ),
    (
        "task_state",
        {"dag_id": "d1", "task_id": "t1", "execution_date": D},
        ["task_state", "--", "d1", "t1", D],
    ),
    ("pool", {"set": "p1 3 desc"}, ["pool", "--set", "p1", "3", "desc"]),
    ("pool", {"get": "p1"}, ["pool", "--get=p1"]),
    ("pool", {"delete": "p1"}, ["pool", "--delete=p1"]),
    ("pool", {}, ["pool"]),
    ("serve_logs", {}, ["serve_logs"]),
    (
        "clear",
        {"dag_id": "d1", "task_regex": "^first$", "only_failed": "on"},
        ["clear", "--task_regex=^first$", "--only_failed", "--no_confirm", "--", "d1"],
    ),
    ("list_dag_runs", {"dag_id": "d1", "state": "running"}, ["list_dag_runs", "--state=running", "--", "d1"]),
    ("list_variables", {}, ["variables"]),
    ("list_pools", {}, ["pool"]),
    ("list_connections", {}, ["connections", "--list"]),
    ("next_execution", {"dag_id": "d1"}, ["next_execution", "--", "d1"]),
]

GOLDEN = {"3": AIRFLOW3, "2": AIRFLOW2, "1.10": AIRFLOW110}
