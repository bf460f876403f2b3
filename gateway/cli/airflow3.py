"""Airflow 3.x dialect (checked against 3.3.2): grouped commands, bundles, no --subdir."""

from __future__ import annotations

from gateway.cli.common import (
    CELERY,
    DAEMON_MANAGED,
    DO_PICKLE_GONE,
    MODERN_CONNECTIONS,
    MODERN_DAG_DETAILS,
    MODERN_DAG_PROCESSOR,
    MODERN_LIST_CONNECTIONS,
    MODERN_LIST_IMPORT_ERRORS,
    MODERN_LIST_POOLS,
    MODERN_LIST_TASK_STATES,
    MODERN_LIST_VARIABLES,
    MODERN_NEXT_EXECUTION,
    MODERN_POOL,
    MODERN_TRIGGERER,
    MODERN_VERSION,
    NO_RUN,
    NOT_FOUND,
    PAUSE_NOOP,
    SUBDIR_IGNORED,
)
from gateway.cli.spec import (
    Builtin,
    Command,
    Dialect,
    FilePath,
    Flag,
    Opt,
    OutcomeRule,
    Pos,
    Translation,
    Unavailable,
)

_DAG_TASK_WHEN = (Pos("dag_id"), Pos("task_id"), Pos("execution_date"))
_SUBDIR = {"subdir": SUBDIR_IGNORED}

# `airflow tasks test` exits 0 in 3.x even when the task fails.
_TASK_FAILED = OutcomeRule(
    r"new_state=failed|Marking task as FAILED|Task failed with exception",
    500,
    "the task failed (Airflow 3 exits 0 from `tasks test` even then)",
    exit_codes=(0,),
)

AIRFLOW3 = Dialect(
    name="3",
    versions="3.x",
    table={
        "version": MODERN_VERSION,
        "rest_api_plugin_version": Builtin("rest_api_plugin_version"),
        "render": Translation(
            (Command(("tasks", "render", Opt("--map-index", "map_index"), *_DAG_TASK_WHEN)),),
            dropped=_SUBDIR,
        ),
        "variables": Translation(
            (
                Command(
                    ("variables", "set", Opt("--description", "description"), Pos("set"), Pos("set_value")),
                    when="set",
                    requires=("set_value",),
                ),
                # `variables get -j` prints a Python repr in 3.x; the gateway parses JSON itself.
                Command(
                    ("variables", "get", Opt("--default", "default"), Pos("get")), when="get", json="stdout"
                ),
                Command(("variables", "delete", Pos("delete")), when="delete"),
                Command(("variables", "import", FilePath("import")), when="import"),
                Command(("variables", "export", FilePath("export")), when="export", returns_file="export"),
                Command(("variables", "list"), json="flag"),
            )
        ),
        "connections": MODERN_CONNECTIONS,
        "pause": Translation(
            (Command(("dags", "pause", Pos("dag_id")), json="flag"),), dropped=_SUBDIR, outcome=(PAUSE_NOOP,)
        ),
        "unpause": Translation(
            (Command(("dags", "unpause", Pos("dag_id")), json="flag"),),
            dropped=_SUBDIR,
            outcome=(PAUSE_NOOP,),
        ),
        "task_failed_deps": Translation(
            (Command(("tasks", "failed-deps", Opt("--map-index", "map_index"), *_DAG_TASK_WHEN)),),
            dropped=_SUBDIR,
        ),
        "trigger_dag": Translation(
            (
                Command(
                    (
                        "dags",
                        "trigger",
                        Opt("--run-id", "run_id"),
                        Opt("--conf", "conf"),
                        Opt("--logical-date", "exec_date"),
                        Pos("dag_id"),
                    ),
                    json="flag",
                ),
            ),
            dropped=_SUBDIR,
        ),
        "test": Translation(
            (
                Command(
                    (
                        "tasks",
                        "test",
                        Opt("--task-params", "task_params"),
                        Opt("--map-index", "map_index"),
                        *_DAG_TASK_WHEN,
                    )
                ),
            ),
            dropped=_SUBDIR,
            rejected={
                "dry_run": (
                    "Airflow 3 removed `tasks test --dry-run`; use api=render to see the rendered templates"
                ),
            },
            outcome=(_TASK_FAILED,),
            logs_are_output=True,
        ),
        "dag_state": Translation(
            (Command(("dags", "state", Pos("dag_id"), Pos("execution_date"))),),
            dropped=_SUBDIR,
            outcome=(NO_RUN,),
        ),
        "run": Unavailable(
            "Airflow 3 removed `airflow tasks run`. Use api=test with an existing run_id (runs the task and "
            "records its state), api=clear to have the scheduler run it again, or api=trigger_dag"
        ),
        "list_tasks": Translation(
            (Command(("tasks", "list", Pos("dag_id"))),),
            dropped=_SUBDIR,
            rejected={"tree": "Airflow 3 removed `tasks list --tree` (`airflow dags show` replaces it)"},
        ),
        "backfill": Translation(
            (
                Command(
                    (
                        "backfill",
                        "create",
                        Opt("--dag-id", "dag_id"),
                        Opt("--from-date", "start_date"),
                        Opt("--to-date", "end_date"),
                        Flag("--dry-run", "dry_run"),
                        Flag("--run-backwards", "run_backwards"),
                        Opt("--dag-run-conf", "conf"),
                    )
                ),
            ),
            requires=("start_date", "end_date"),
            dropped={
                **_SUBDIR,
                "donot_pickle": DO_PICKLE_GONE,
                "include_adhoc": "include_adhoc was ignored: it no longer exists",
            },
            rejected={
                name: f"Airflow 3 backfills create DAG runs for the scheduler and have no {name} option"
                for name in (
                    "task_regex",
                    "mark_success",
                    "local",
                    "ignore_dependencies",
                    "ignore_first_depends_on_past",
                    "pool",
                )
            },
        ),
        "list_dags": Translation(
            (
                Command(("dags", "report"), when="report", json="flag"),
                Command(("dags", "list"), json="flag"),
            ),
            rejected={"subdir": "Airflow 3 lists DAGs by bundle, not by directory: subdir is not supported"},
        ),
        "kerberos": Translation(
            (Command(("kerberos", Opt("--keytab", "keytab"), Pos("principal"))),), dropped=DAEMON_MANAGED
        ),
        "worker": Translation(
            (Command(("celery", "worker", Opt("--queues", "queues"), Opt("--concurrency", "concurrency"))),),
            dropped={**DAEMON_MANAGED, "do_pickle": DO_PICKLE_GONE},
            provider=CELERY,
        ),
        "flower": Translation(
            (
                Command(
                    (
                        "celery",
                        "flower",
                        Opt("--hostname", "hostname"),
                        Opt("--port", "port"),
                        Opt("--flower-conf", "flower_conf"),
                        Opt("--broker-api", "broker_api"),
                    )
                ),
            ),
            dropped=DAEMON_MANAGED,
            provider=CELERY,
        ),
        "scheduler": Translation(
            (Command(("scheduler", Opt("--num-runs", "num_runs"))),),
            dropped={**DAEMON_MANAGED, "do_pickle": DO_PICKLE_GONE},
            rejected={
                "dag_id": "Airflow 2 and 3 schedulers serve every DAG; there is no per-DAG scheduler",
                "subdir": "Airflow 3's scheduler reads DAG bundles; subdir is not supported",
                "run-duration": "Airflow removed --run-duration; use num_runs to bound the scheduler",
            },
        ),
        "task_state": Translation(
            (Command(("tasks", "state", Opt("--map-index", "map_index"), *_DAG_TASK_WHEN)),), dropped=_SUBDIR
        ),
        "pool": MODERN_POOL,
        "serve_logs": Unavailable(
            "Airflow 2 and 3 have no `serve_logs` command: the scheduler, triggerer and Celery workers serve "
            "task logs themselves (start api=scheduler)"
        ),
        "clear": Translation(
            (
                Command(
                    (
                        "tasks",
                        "clear",
                        Opt("--task-regex", "task_regex"),
                        Opt("--start-date", "start_date"),
                        Opt("--end-date", "end_date"),
                        Flag("--upstream", "upstream"),
                        Flag("--downstream", "downstream"),
                        Flag("--only-failed", "only_failed"),
                        Flag("--only-running", "only_running"),
                        "--yes",
                        Pos("dag_id"),
                    )
                ),
            ),
            dropped={
                **_SUBDIR,
                "exclude_subdags": "exclude_subdags was ignored: Airflow 3 has no SubDAGs",
            },
            # Measured on 3.3.2: SerializedDAG.partial_subset() treats the "regex" as a plain
            # substring, so '^first$' clears nothing while exiting 0.
            constraints={
                "task_regex": (
                    r"[A-Za-z0-9_.\-]+",
                    "Airflow 3 matches task_regex as a plain substring of task ids, not as a regular "
                    "expression (a pattern like '^first$' would silently clear nothing); give a task id "
                    "or part of one",
                )
            },
        ),
        "list_dag_runs": Translation(
            (
                Command(
                    (
                        "dags",
                        "list-runs",
                        Opt("--state", "state"),
                        Opt("--start-date", "start_date"),
                        Opt("--end-date", "end_date"),
                        Pos("dag_id"),
                    ),
                    json="flag",
                ),
            )
        ),
        "list_task_states": MODERN_LIST_TASK_STATES,
        "list_import_errors": MODERN_LIST_IMPORT_ERRORS,
        "list_variables": MODERN_LIST_VARIABLES,
        "list_pools": MODERN_LIST_POOLS,
        "list_connections": MODERN_LIST_CONNECTIONS,
        "next_execution": MODERN_NEXT_EXECUTION,
        "dag_details": MODERN_DAG_DETAILS,
        "triggerer": MODERN_TRIGGERER,
        "dag_processor": MODERN_DAG_PROCESSOR,
        "deploy_dag": Builtin("deploy_dag"),
        "refresh_dag": Builtin("refresh_dag"),
        # Upserts every DAG of the bundle(s); there is no per-DAG form.
        "refresh_all_dags": Translation((Command(("dags", "reserialize", Opt("--bundle-name", "bundle"))),)),
        "list_daemons": Builtin("list_daemons"),
        "stop_daemon": Builtin("stop_daemon"),
        "whoami": Builtin("whoami"),
    },
    outcome=NOT_FOUND,
    queries={"dags_folder": ("config", "get-value", "core", "dags_folder")},
    # The CLI prints neither the backfill's id nor how many task instances were cleared.
    read_backs={"backfill": "backfill_id", "clear": "cleared_airflow3"},
)
