"""Airflow 1.10 dialect: flat commands, underscore flags (checked against 1.10.15 on Python 3.8).

1.10 prints no JSON and exits 0 for several "not found" cases; the rules below name them.
"""

from __future__ import annotations

from gateway.cli.common import DAEMON_MANAGED, NO_RUN, NOT_FOUND
from gateway.cli.spec import (
    Builtin,
    Command,
    Dialect,
    FilePath,
    Flag,
    Opt,
    OptN,
    OutcomeRule,
    Pos,
    Translation,
    Unavailable,
)

_SUBDIR = Opt("--subdir", "subdir")
_DAG_TASK_WHEN = (Pos("dag_id"), Pos("task_id"), Pos("execution_date"))
_NOT_IN_110 = "Airflow 1.10 has no equivalent command; upgrade to Airflow 2 or 3"
# Exit code 0 with these: `variables -g` of a missing key prints "None" (so does a variable
# whose value is the text None), `pool -g/-x` names the missing pool.  (A missing `variables -i`
# file is in NOT_FOUND, as on 2.x and 3.x.)
_VARIABLE_MISSING = (
    OutcomeRule(r"\ANone\s*\n", 404, "variable not found (Airflow 1.10 prints None)", exit_codes=(0,)),
)
_POOL_MISSING = (OutcomeRule(r"Pool '[^']*' doesn't exist", 404, "pool not found", exit_codes=(0,)),)
# `pause`/`unpause` look the DAG up in the DagModel table and call a method on the result:
# an unknown DAG is an AttributeError on None (exit code 1), not a sentence.
_PAUSE_UNKNOWN_DAG = (
    OutcomeRule(r"'NoneType' object has no attribute 'set_is_paused'", 404, "DAG not found", exit_codes=(1,)),
)
_BACKFILL_REJECTS = {"run_backwards": "Airflow 1.10's backfill has no run_backwards"}

AIRFLOW110 = Dialect(
    name="1.10",
    versions="1.10",
    table={
        "version": Translation((Command(("version",)),)),
        "rest_api_plugin_version": Builtin("rest_api_plugin_version"),
        "render": Translation(
            (Command(("render", _SUBDIR, *_DAG_TASK_WHEN)),), rejected={"map_index": _NOT_IN_110}
        ),
        "variables": Translation(
            (
                Command(
                    ("variables", OptN("--set", ("set", "set_value"))), when="set", requires=("set_value",)
                ),
                Command(
                    ("variables", Opt("--get", "get"), Opt("--default", "default")), when="get", json="stdout"
                ),
                Command(("variables", Opt("--delete", "delete")), when="delete"),
                Command(("variables", FilePath("import", "--import")), when="import"),
                Command(("variables", FilePath("export", "--export")), when="export", returns_file="export"),
                Command(("variables",)),
            ),
            dropped={"description": "description was ignored: Airflow 1.10 variables have none"},
            outcome=_VARIABLE_MISSING,
        ),
        "connections": Translation(
            (
                Command(
                    (
                        "connections",
                        "--add",
                        Opt("--conn_id", "conn_id"),
                        Opt("--conn_uri", "conn_uri"),
                        Opt("--conn_type", "conn_type"),
                        Opt("--conn_extra", "conn_extra"),
                    ),
                    when="add",
                    requires=("conn_id",),
                ),
                Command(
                    ("connections", "--delete", Opt("--conn_id", "conn_id")),
                    when="delete",
                    requires=("conn_id",),
                ),
                Command(("connections", "--list")),
            )
        ),
        "pause": Translation((Command(("pause", _SUBDIR, Pos("dag_id"))),), outcome=_PAUSE_UNKNOWN_DAG),
        "unpause": Translation((Command(("unpause", _SUBDIR, Pos("dag_id"))),), outcome=_PAUSE_UNKNOWN_DAG),
        "task_failed_deps": Translation(
            (Command(("task_failed_deps", _SUBDIR, *_DAG_TASK_WHEN)),), rejected={"map_index": _NOT_IN_110}
        ),
        "trigger_dag": Translation(
            (
                Command(
                    (
                        "trigger_dag",
                        _SUBDIR,
                        Opt("--run_id", "run_id"),
                        Opt("--conf", "conf"),
                        Opt("--exec_date", "exec_date"),
                        Pos("dag_id"),
                    )
                ),
            )
        ),
        "test": Translation(
            (
                Command(
                    (
                        "test",
                        _SUBDIR,
                        Flag("--dry_run", "dry_run"),
                        Opt("--task_params", "task_params"),
                        *_DAG_TASK_WHEN,
                    )
                ),
            ),
            rejected={"map_index": _NOT_IN_110},
            logs_are_output=True,
        ),
        "dag_state": Translation(
            (Command(("dag_state", _SUBDIR, Pos("dag_id"), Pos("execution_date"))),), outcome=(NO_RUN,)
        ),
        "run": Translation(
            (
                Command(
                    (
                        "run",
                        _SUBDIR,
                        Flag("--mark_success", "mark_success"),
                        Flag("--force", "force"),
                        Opt("--pool", "pool"),
                        Flag("--local", "local"),
                        Flag("--ignore_all_dependencies", "ignore_all_dependencies"),
                        Flag("--ignore_dependencies", "ignore_dependencies"),
                        Flag("--ignore_depends_on_past", "ignore_depends_on_past"),
                        Flag("--ship_dag", "ship_dag"),
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
        "list_tasks": Translation((Command(("list_tasks", _SUBDIR, Flag("--tree", "tree"), Pos("dag_id"))),)),
        "backfill": Translation(
            (
                Command(
                    (
                        "backfill",
                        _SUBDIR,
                        Opt("--task_regex", "task_regex"),
                        Opt("--start_date", "start_date"),
                        Opt("--end_date", "end_date"),
                        Flag("--mark_success", "mark_success"),
                        Flag("--local", "local"),
                        Flag("--donot_pickle", "donot_pickle"),
                        Flag("--ignore_dependencies", "ignore_dependencies"),
                        Flag("--ignore_first_depends_on_past", "ignore_first_depends_on_past"),
                        Opt("--pool", "pool"),
                        Flag("--dry_run", "dry_run"),
                        Opt("--conf", "conf"),
                        "--yes",
                        Pos("dag_id"),
                    )
                ),
            ),
            dropped={"include_adhoc": "include_adhoc was ignored: late 1.10 releases no longer have it"},
            rejected=_BACKFILL_REJECTS,
            logs_are_output=True,
        ),
        "list_dags": Translation((Command(("list_dags", _SUBDIR, Flag("--report", "report"))),)),
        "kerberos": Translation(
            (Command(("kerberos", Opt("--keytab", "keytab"), Pos("principal"))),), dropped=DAEMON_MANAGED
        ),
        "worker": Translation(
            (
                Command(
                    (
                        "worker",
                        Flag("--do_pickle", "do_pickle"),
                        Opt("--queues", "queues"),
                        Opt("--concurrency", "concurrency"),
                    )
                ),
            ),
            dropped=DAEMON_MANAGED,
            provider="celery",  # apache-airflow[celery] on 1.10
        ),
        "flower": Translation(
            (
                Command(
                    (
                        "flower",
                        Opt("--hostname", "hostname"),
                        Opt("--port", "port"),
                        Opt("--flower_conf", "flower_conf"),
                        Opt("--broker_api", "broker_api"),
                    )
                ),
            ),
            dropped=DAEMON_MANAGED,
            provider="flower",
        ),
        "scheduler": Translation(
            (
                Command(
                    (
                        "scheduler",
                        Opt("--dag_id", "dag_id"),
                        _SUBDIR,
                        Opt("--run-duration", "run-duration"),
                        Opt("--num_runs", "num_runs"),
                        Flag("--do_pickle", "do_pickle"),
                    )
                ),
            ),
            dropped=DAEMON_MANAGED,
        ),
        "task_state": Translation(
            (Command(("task_state", _SUBDIR, *_DAG_TASK_WHEN)),), rejected={"map_index": _NOT_IN_110}
        ),
        "pool": Translation(
            (
                Command(("pool", OptN("--set", ("set",))), when="set"),
                Command(("pool", Opt("--get", "get")), when="get"),
                Command(("pool", Opt("--delete", "delete")), when="delete"),
                Command(("pool",)),
            ),
            outcome=_POOL_MISSING,
        ),
        "serve_logs": Translation((Command(("serve_logs",)),)),
        "clear": Translation(
            (
                Command(
                    (
                        "clear",
                        _SUBDIR,
                        Opt("--task_regex", "task_regex"),
                        Opt("--start_date", "start_date"),
                        Opt("--end_date", "end_date"),
                        Flag("--upstream", "upstream"),
                        Flag("--downstream", "downstream"),
                        Flag("--only_failed", "only_failed"),
                        Flag("--only_running", "only_running"),
                        Flag("--exclude_subdags", "exclude_subdags"),
                        "--no_confirm",
                        Pos("dag_id"),
                    )
                ),
            )
        ),
        "list_dag_runs": Translation(
            (Command(("list_dag_runs", Opt("--state", "state"), Pos("dag_id"))),),
            rejected={"start_date": _NOT_IN_110, "end_date": _NOT_IN_110},
        ),
        "list_task_states": Unavailable(_NOT_IN_110),
        "list_import_errors": Unavailable(_NOT_IN_110),
        "list_variables": Translation((Command(("variables",)),)),
        "list_pools": Translation((Command(("pool",)),)),
        "list_connections": Translation((Command(("connections", "--list")),)),
        "next_execution": Translation(
            (Command(("next_execution", Pos("dag_id"))),), rejected={"num_executions": _NOT_IN_110}
        ),
        "dag_details": Unavailable(_NOT_IN_110),
        "triggerer": Unavailable("the triggerer arrived in Airflow 2.2"),
        "dag_processor": Unavailable("the standalone DAG processor arrived in Airflow 2.3"),
        "list_daemons": Builtin("list_daemons"),
        "stop_daemon": Builtin("stop_daemon"),
        "whoami": Builtin("whoami"),
        # No CLI command writes parsed DAGs to the 1.10 database: see gateway/dags/sync110.py.
        "deploy_dag": Builtin("deploy_dag"),
        "refresh_dag": Builtin("refresh_dag"),
        "refresh_all_dags": Builtin("refresh_all_dags"),
    },
    outcome=(*NOT_FOUND,),
    dags_in_python=True,
    # `clear --no_confirm` prints no count (only "Nothing to clear." when there is none);
    # `list_dags` prints no JSON: with output=json its rows come from the database.
    read_backs={"clear": "cleared_airflow110", "list_dags": "dag_rows_airflow110"},
)
