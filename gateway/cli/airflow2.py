"""Airflow 2.x dialect (checked against 2.11.2): grouped commands with --subdir."""

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
_SUBDIR = Opt("--subdir", "subdir")
_NO_CELERY = OutcomeRule(
    r"invalid choice: 'celery'",
    501,
    "the celery commands need apache-airflow-providers-celery and executor = CeleryExecutor on Airflow 2",
    exit_codes=(2,),
)

AIRFLOW2 = Dialect(
    name="2",
    versions="2.x",
    table={
        "version": MODERN_VERSION,
        "rest_api_plugin_version": Builtin("rest_api_plugin_version"),
        "render": Translation(
            (Command(("tasks", "render", _SUBDIR, Opt("--map-index", "map_index"), *_DAG_TASK_WHEN)),)
        ),
        "variables": Translation(
            (
                Command(
                    ("variables", "set", Opt("--description", "description"), Pos("set"), Pos("set_value")),
                    when="set",
                    requires=("set_value",),
                ),
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
            (Command(("dags", "pause", _SUBDIR, Pos("dag_id")), json="flag"),), outcome=(PAUSE_NOOP,)
        ),
        "unpause": Translation(
            (Command(("dags", "unpause", _SUBDIR, Pos("dag_id")), json="flag"),), outcome=(PAUSE_NOOP,)
        ),
        "task_failed_deps": Translation(
            (Command(("tasks", "failed-deps", _SUBDIR, Opt("--map-index", "map_index"), *_DAG_TASK_WHEN)),)
        ),
        "trigger_dag": Translation(
            (
                Command(
                    (
                        "dags",
                        "trigger",
                        _SUBDIR,
                        Opt("--run-id", "run_id"),
                        Opt("--conf", "conf"),
                        Opt("--exec-date", "exec_date"),
                        Pos("dag_id"),
                    ),
                    json="flag",
                ),
            )
        ),
        "test": Translation(
            (
                Command(
                    (
                        "tasks",
                        "test",
                        _SUBDIR,
                        Flag("--dry-run", "dry_run"),
                        Opt("--task-params", "task_params"),
                        Opt("--map-index", "map_index"),
                        *_DAG_TASK_WHEN,
                    )
                ),
            ),
            logs_are_output=True,
        ),
        # Airflow 2's `dags state` takes a date only; a run_id gets its usage error (400).
        "dag_state": Translation(
            (Command(("dags", "state", _SUBDIR, Pos("dag_id"), Pos("execution_date"))),), outcome=(NO_RUN,)
        ),
        "run": Translation(
            (
                Command(
                    (
                        "tasks",
                        "run",
                        _SUBDIR,
                        Flag("--mark-success", "mark_success"),
                        Flag("--force", "force"),
                        Opt("--pool", "pool"),
                        Flag("--local", "local"),
                        Flag("--ignore-all-dependencies", "ignore_all_dependencies"),
                        Flag("--ignore-dependencies", "ignore_dependencies"),
                        Flag("--ignore-depends-on-past", "ignore_depends_on_past"),
                        Flag("--ship-dag", "ship_dag"),
                        *_DAG_TASK_WHEN,
                    )
                ),
            ),
            rejected={
                "cfg_path": "the gateway does not let callers point Airflow at another config file",
                "pickle": "running a caller-supplied pickle would execute arbitrary code",
            },
            logs_are_output=True,
        ),
        "list_tasks": Translation(
            (Command(("tasks", "list", _SUBDIR, Flag("--tree", "tree"), Pos("dag_id"))),)
        ),
        "backfill": Translation(
            (
                Command(
                    (
                        "dags",
                        "backfill",
                        _SUBDIR,
                        Opt("--task-regex", "task_regex"),
                        Opt("--start-date", "start_date"),
                        Opt("--end-date", "end_date"),
                        Flag("--mark-success", "mark_success"),
                        Flag("--local", "local"),
                        Flag("--donot-pickle", "donot_pickle"),
                        Flag("--ignore-dependencies", "ignore_dependencies"),
                        Flag("--ignore-first-depends-on-past", "ignore_first_depends_on_past"),
                        Opt("--pool", "pool"),
                        Flag("--dry-run", "dry_run"),
                        Opt("--conf", "conf"),
                        Flag("--run-backwards", "run_backwards"),
                        "--yes",
                        Pos("dag_id"),
                    )
                ),
            ),
            dropped={"include_adhoc": "include_adhoc was ignored: it no longer exists"},
            logs_are_output=True,
        ),
        "list_dags": Translation(
            (
                Command(("dags", "report", _SUBDIR), when="report", json="flag"),
                Command(("dags", "list", _SUBDIR), json="flag"),
            )
        ),
        "kerberos": Translation(
            (Command(("kerberos", Opt("--keytab", "keytab"), Pos("principal"))),), dropped=DAEMON_MANAGED
        ),
        "worker": Translation(
            (Command(("celery", "worker", Opt("--queues", "queues"), Opt("--concurrency", "concurrency"))),),
            dropped={**DAEMON_MANAGED, "do_pickle": DO_PICKLE_GONE},
            provider=CELERY,
            outcome=(_NO_CELERY,),
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
            outcome=(_NO_CELERY,),
        ),
        "scheduler": Translation(
            (
                Command(
                    ("scheduler", _SUBDIR, Opt("--num-runs", "num_runs"), Flag("--do-pickle", "do_pickle"))
                ),
            ),
            dropped=DAEMON_MANAGED,
            rejected={
                "dag_id": "Airflow 2 and 3 schedulers serve every DAG; there is no per-DAG scheduler",
                "run-duration": "Airflow removed --run-duration; use num_runs to bound the scheduler",
            },
        ),
        "task_state": Translation(
            (Command(("tasks", "state", _SUBDIR, Opt("--map-index", "map_index"), *_DAG_TASK_WHEN)),)
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
                        _SUBDIR,
                        Opt("--task-regex", "task_regex"),
                        Opt("--start-date", "start_date"),
                        Opt("--end-date", "end_date"),
                        Flag("--upstream", "upstream"),
                        Flag("--downstream", "downstream"),
                        Flag("--only-failed", "only_failed"),
                        Flag("--only-running", "only_running"),
                        Flag("--exclude-subdags", "exclude_subdags"),
                        "--yes",
                        Pos("dag_id"),
                    )
                ),
            )
        ),
        "list_dag_runs": Translation(
            (
                Command(
                    (
                        "dags",
                        "list-runs",
                        Opt("--dag-id", "dag_id"),
                        Opt("--state", "state"),
                        Opt("--start-date", "start_date"),
                        Opt("--end-date", "end_date"),
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
        # Never with --subdir: 2.x deletes every serialized DAG first, then parses only SUBDIR.
        "refresh_all_dags": Translation(
            (Command(("dags", "reserialize")),),
            rejected={"bundle": "Airflow 2 has no DAG bundles"},
        ),
        "list_daemons": Builtin("list_daemons"),
        "stop_daemon": Builtin("stop_daemon"),
        "whoami": Builtin("whoami"),
    },
    outcome=NOT_FOUND,
    queries={"dags_folder": ("config", "get-value", "core", "dags_folder")},
    # `tasks clear --yes` prints no count (only "Nothing to clear." when there is none).
    read_backs={"clear": "cleared_airflow2"},
)
