"""Table fragments shared by the 2.x and 3.x dialects (data only)."""

from __future__ import annotations

from gateway.cli.spec import Command, Opt, OutcomeRule, Pos, Translation

# Airflow's own words for "that thing does not exist": the exit code is 1 for all of
# them, so without these the gateway could only answer 500.
NOT_FOUND: tuple[OutcomeRule, ...] = (
    OutcomeRule(r"could not be found; either it does not exist or it failed to parse", 404, "DAG not found"),
    OutcomeRule(r"DagNotFound|does not exist in 'dag' table", 404, "DAG not found"),
    # Airflow 1.10: "AirflowException: dag_id could not be found: X. Either the dag did not exist ..."
    OutcomeRule(r"dag_id could not be found", 404, "DAG not found"),
    OutcomeRule(r"TaskNotFound", 404, "task not found"),
    OutcomeRule(r"DagRunNotFound", 404, "DAG run not found"),
    OutcomeRule(r"TaskInstanceNotFound", 404, "task instance not found"),
    OutcomeRule(r"Missing variables file", 404, "the variables file does not exist"),
    OutcomeRule(r"Invalid variables file", 400, "the variables file is not valid JSON"),
    OutcomeRule(r"Bundles not found: ", 404, "DAG bundle not found"),
    OutcomeRule(r"Provide a start_date and/or end_date", 400, "backfill needs start_date and/or end_date"),
    OutcomeRule(r"Variable \S+ does not exist", 404, "variable not found"),
    OutcomeRule(r"Pool \S+ does not exist", 404, "pool not found"),
    OutcomeRule(r"Did not find a connection with", 404, "connection not found"),
    OutcomeRule(
        r"AlreadyRunningBackfill|already has a running backfill", 409, "a backfill is already running"
    ),
    OutcomeRule(r"already exists", 409, "already exists", exit_codes=(1,)),
)

# `dags state` prints "None" with exit code 0 when there is no such run.
NO_RUN = OutcomeRule(r"(?m)^None$", 404, "no DAG run for this DAG and date/run id", exit_codes=(0,))

# pause/unpause exit 0 whether the DAG is unknown or already in the wanted state.
PAUSE_NOOP = OutcomeRule(
    r"No (un)?paused DAGs were found",
    200,
    "Airflow changed nothing: the DAG is already in that state, or it is not known to Airflow yet",
    exit_codes=(0,),
)

SUBDIR_IGNORED = (
    "subdir was ignored: this Airflow finds a DAG by its id in the metadata database "
    "(DAG bundles replaced --subdir)"
)
DAEMON_MANAGED = {
    "pid": "pid was ignored: the gateway records the daemon's pid itself (see list_daemons)",
    "daemon": "daemon was ignored: the gateway always starts daemons detached",
    "stdout": "stdout was ignored: the daemon's output goes to the log file in the envelope",
    "stderr": "stderr was ignored: the daemon's output goes to the log file in the envelope",
    "log-file": "log-file was ignored: the daemon's output goes to the log file in the envelope",
}
DO_PICKLE_GONE = "do_pickle was ignored: DAG pickling no longer exists; workers parse DAG files themselves"
CELERY = "apache-airflow-providers-celery"


# Translations identical on Airflow 2.x and 3.x (both tables list them by name).
MODERN_CONNECTIONS = Translation(
    (
        Command(
            (
                "connections",
                "add",
                Opt("--conn-uri", "conn_uri"),
                Opt("--conn-type", "conn_type"),
                Opt("--conn-extra", "conn_extra"),
                Pos("conn_id"),
            ),
            when="add",
            requires=("conn_id",),
        ),
        Command(("connections", "delete", Pos("conn_id")), when="delete", requires=("conn_id",)),
        Command(("connections", "list"), json="flag"),
    )
)
MODERN_POOL = Translation(
    (
        Command(("pools", "set", Pos("set")), when="set"),
        Command(("pools", "get", Pos("get")), when="get", json="flag"),
        Command(("pools", "delete", Pos("delete")), when="delete"),
        Command(("pools", "list"), json="flag"),
    )
)
MODERN_LIST_TASK_STATES = Translation(
    (Command(("tasks", "states-for-dag-run", Pos("dag_id"), Pos("execution_date")), json="flag"),)
)
MODERN_LIST_IMPORT_ERRORS = Translation((Command(("dags", "list-import-errors"), json="flag"),))
MODERN_LIST_VARIABLES = Translation((Command(("variables", "list"), json="flag"),))
MODERN_LIST_POOLS = Translation((Command(("pools", "list"), json="flag"),))
MODERN_LIST_CONNECTIONS = Translation((Command(("connections", "list"), json="flag"),))
MODERN_NEXT_EXECUTION = Translation(
    (Command(("dags", "next-execution", Opt("--num-executions", "num_executions"), Pos("dag_id"))),)
)
MODERN_DAG_DETAILS = Translation((Command(("dags", "details", Pos("dag_id")), json="flag"),))
MODERN_TRIGGERER = Translation((Command(("triggerer", Opt("--capacity", "capacity"))),))
MODERN_DAG_PROCESSOR = Translation((Command(("dag-processor", Opt("--num-runs", "num_runs"))),))
MODERN_VERSION = Translation((Command(("version",)),))
