"""The public API catalogue: every API name, its arguments and help, for all dialects.

Names and arguments are the original plugin's (see its README); APIs the plugin lacked are
marked ``origin="gateway"``.  How each API runs on a given Airflow is in the dialect tables.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.cli.spec import Api, ApiKind, Kind, Param

DAG = Param("dag_id", Kind.DAG_ID, "The id of the DAG", required=True)
TASK = Param("task_id", Kind.TASK_ID, "The id of the task", required=True)
WHEN = Param(
    "execution_date",
    Kind.DATE_OR_RUN_ID,
    "The logical (execution) date of the DAG run, ISO 8601 (e.g. 2017-01-02T03:04:05), or a run_id",
    required=True,
    aliases=("logical_date", "execution_date_or_run_id", "logical_date_or_run_id"),
)
SUBDIR = Param("subdir", Kind.SERVER_PATH, "File location or directory from which to look for the DAG")
MAP_INDEX = Param("map_index", Kind.INT, "Mapped task index")
OUTPUT = Param("output", Kind.TEXT, "Set to 'json' to get the parsed result in the envelope's 'data' field")
START = Param("start_date", Kind.DATE, "Start of the date range (YYYY-MM-DD or ISO 8601)")
END = Param("end_date", Kind.DATE, "End of the date range (YYYY-MM-DD or ISO 8601)")
TASK_REGEX = Param("task_regex", Kind.REGEX, "Regex to filter specific task_ids")
POOL = Param("pool", Kind.POOL, "Resource pool to use")

# Daemon housekeeping arguments of the original plugin: the gateway records pid and log
# itself, so these are accepted and dropped with a warning.
DAEMON_HOUSEKEEPING = (
    Param("pid", Kind.SERVER_PATH, "PID file location (managed by the gateway)"),
    Param("daemon", Kind.BOOL, "Daemonize (the gateway always runs daemons detached)"),
    Param("stdout", Kind.SERVER_PATH, "Redirect stdout to this file (managed by the gateway)"),
    Param("stderr", Kind.SERVER_PATH, "Redirect stderr to this file (managed by the gateway)"),
    Param(
        "log-file",
        Kind.SERVER_PATH,
        "Location of the log file (managed by the gateway)",
        aliases=("log_file",),
    ),
)


def _api(*apis: Api) -> dict[str, Api]:
    table = {api.name: api for api in apis}
    if len(table) != len(apis):
        raise ValueError("duplicate API name in the catalogue")
    return table


CATALOGUE: Mapping[str, Api] = _api(
    Api("version", "Gets the version of Airflow currently running"),
    Api(
        "rest_api_plugin_version",
        "Displays the version of the gateway (which serves the REST API plugin's API)",
        kind=ApiKind.BUILTIN,
    ),
    Api(
        "render",
        "Render a task instance's template(s)",
        (DAG, TASK, WHEN, SUBDIR, MAP_INDEX),
    ),
    Api(
        "variables",
        "CRUD operations on variables (no argument lists the keys)",
        (
            Param("set", Kind.VAR_KEY, "Sets a variable: the key; requires set_value"),
            Param("set_value", Kind.TEXT, "The value of the variable to set"),
            Param("description", Kind.TEXT, "Description of the variable to set"),
            Param("get", Kind.VAR_KEY, "Get value of a variable"),
            Param("json", Kind.BOOL, "Deserialize a JSON variable (the value is returned in 'data')"),
            Param("default", Kind.TEXT, "Default value returned if the variable does not exist"),
            Param(
                "import",
                Kind.FILE_NAME,
                "Import variables from this JSON file in the gateway's files directory",
            ),
            Param(
                "export",
                Kind.FILE_NAME,
                "Export variables to this JSON file in the gateway's files directory",
            ),
            Param("delete", Kind.VAR_KEY, "Delete a variable"),
            OUTPUT,
        ),
    ),
    Api(
        "connections",
        "List/Add/Delete connections",
        (
            Param("list", Kind.BOOL, "List all connections"),
            Param("add", Kind.BOOL, "Add a connection"),
            Param("delete", Kind.BOOL, "Delete a connection"),
            Param("conn_id", Kind.CONN_ID, "Connection id, required to add/delete a connection"),
            Param("conn_uri", Kind.CONN_URI, "Connection URI, required to add a connection (or conn_type)"),
            Param("conn_type", Kind.CONN_TYPE, "Connection type, when adding without a URI"),
            Param("conn_extra", Kind.JSON_OBJECT, "Connection 'Extra' field (JSON), when adding"),
            OUTPUT,
        ),
    ),
    Api("pause", "Pauses a DAG", (DAG, SUBDIR, OUTPUT)),
    Api("unpause", "Resume a paused DAG", (DAG, SUBDIR, OUTPUT)),
    Api(
        "task_failed_deps",
        "Returns the unmet dependencies for a task instance from the perspective of the scheduler",
        (DAG, TASK, WHEN, SUBDIR, MAP_INDEX),
    ),
    Api(
        "trigger_dag",
        "Triggers a DAG run",
        (
            DAG,
            Param("run_id", Kind.RUN_ID, "The run id to use for the DAG run"),
            Param("conf", Kind.JSON_OBJECT, "Configuration (JSON object) passed to the DAG run"),
            Param(
                "exec_date",
                Kind.DATE,
                "The logical (execution) date of the run",
                aliases=("execution_date", "logical_date"),
            ),
            SUBDIR,
            OUTPUT,
        ),
    ),
    Api(
        "test",
        "Test a task instance: run it without checking dependencies",
        (
            DAG,
            TASK,
            WHEN,
            SUBDIR,
            Param("dry_run", Kind.BOOL, "Perform a dry run", aliases=("dryrun",)),
            Param("task_params", Kind.JSON_OBJECT, "A JSON params dict sent to the task"),
            MAP_INDEX,
        ),
    ),
    Api("dag_state", "Get the status of a DAG run", (DAG, WHEN, SUBDIR)),
    Api(
        "run",
        "Run a single task instance",
        (
            DAG,
            TASK,
            WHEN,
            SUBDIR,
            Param("mark_success", Kind.BOOL, "Mark jobs as succeeded without running them"),
            Param("force", Kind.BOOL, "Ignore previous task instance state, rerun regardless"),
            POOL,
            Param("cfg_path", Kind.SERVER_PATH, "Path to config file to use instead of airflow.cfg"),
            Param("local", Kind.BOOL, "Run the task using the LocalExecutor"),
            Param("ignore_all_dependencies", Kind.BOOL, "Ignores all non-critical dependencies"),
            Param("ignore_dependencies", Kind.BOOL, "Ignore task-specific dependencies"),
            Param("ignore_depends_on_past", Kind.BOOL, "Ignore depends_on_past dependencies"),
            Param("ship_dag", Kind.BOOL, "Pickles (serializes) the DAG and ships it to the worker"),
            Param("pickle", Kind.TEXT, "Serialized pickle object of the entire DAG (used internally)"),
        ),
    ),
    Api(
        "list_tasks",
        "List the tasks within a DAG",
        (DAG, Param("tree", Kind.BOOL, "Tree view"), SUBDIR),
    ),
    Api(
        "backfill",
        "Run subsections of a DAG for a specified date range",
        (
            DAG,
            TASK_REGEX,
            START,
            END,
            Param("mark_success", Kind.BOOL, "Mark jobs as succeeded without running them"),
            Param("local", Kind.BOOL, "Run the task using the LocalExecutor"),
            Param("donot_pickle", Kind.BOOL, "Do not attempt to pickle the DAG object"),
            Param("include_adhoc", Kind.BOOL, "Include DAGs with the adhoc argument"),
            Param("ignore_dependencies", Kind.BOOL, "Ignore task-specific dependencies"),
            Param("ignore_first_depends_on_past", Kind.BOOL, "Ignore depends_on_past for the first runs"),
            SUBDIR,
            POOL,
            Param("dry_run", Kind.BOOL, "Perform a dry run"),
            Param("conf", Kind.JSON_OBJECT, "Configuration (JSON object) for the created runs"),
            Param("run_backwards", Kind.BOOL, "Create runs from the latest date backwards"),
        ),
    ),
    Api(
        "list_dags",
        "List all the DAGs",
        (SUBDIR, Param("report", Kind.BOOL, "Show DagBag loading report"), OUTPUT),
    ),
    Api(
        "kerberos",
        "Start a kerberos ticket renewer",
        (
            Param("principal", Kind.PRINCIPAL, "Kerberos principal"),
            Param("keytab", Kind.SERVER_PATH, "Keytab"),
            *DAEMON_HOUSEKEEPING,
        ),
        kind=ApiKind.DAEMON,
    ),
    Api(
        "worker",
        "Start a Celery worker node",
        (
            Param("do_pickle", Kind.BOOL, "Attempt to pickle the DAG object to send over to the workers"),
            Param("queues", Kind.QUEUES, "Comma delimited list of queues to serve"),
            Param("concurrency", Kind.INT, "The number of worker processes"),
            *DAEMON_HOUSEKEEPING,
        ),
        kind=ApiKind.DAEMON,
    ),
    Api(
        "flower",
        "Start a Celery Flower",
        (
            Param("hostname", Kind.HOST, "Set the hostname on which to run the server"),
            Param("port", Kind.PORT, "The port on which to run the server"),
            Param("flower_conf", Kind.SERVER_PATH, "Configuration file for flower"),
            Param("broker_api", Kind.TEXT, "Broker api"),
            *DAEMON_HOUSEKEEPING,
        ),
        kind=ApiKind.DAEMON,
    ),
    Api(
        "scheduler",
        "Start a scheduler instance",
        (
            Param("dag_id", Kind.DAG_ID, "The id of the DAG"),
            SUBDIR,
            Param(
                "run-duration",
                Kind.INT,
                "Number of seconds to execute before exiting",
                aliases=("run_duration",),
            ),
            Param("num_runs", Kind.INT, "Set the number of runs to execute before exiting"),
            Param("do_pickle", Kind.BOOL, "Attempt to pickle the DAG object to send over to the workers"),
            *DAEMON_HOUSEKEEPING,
        ),
        kind=ApiKind.DAEMON,
    ),
    Api("task_state", "Get the status of a task instance", (DAG, TASK, WHEN, SUBDIR, MAP_INDEX)),
    Api(
        "pool",
        "CRUD operations on pools (no argument lists them)",
        (
            Param(
                "set",
                Kind.POOL_SET,
                "Set pool slot count and description: 'NAME SLOT_COUNT POOL_DESCRIPTION'",
            ),
            Param("get", Kind.POOL, "Get pool info"),
            Param("delete", Kind.POOL, "Delete a pool"),
            OUTPUT,
        ),
    ),
    Api("serve_logs", "Serve logs generated by workers", kind=ApiKind.DAEMON),
    Api(
        "clear",
        "Clear a set of task instances, as if they never ran",
        (
            DAG,
            TASK_REGEX,
            START,
            END,
            SUBDIR,
            Param("upstream", Kind.BOOL, "Include upstream tasks"),
            Param("downstream", Kind.BOOL, "Include downstream tasks"),
            Param(
                "no_confirm", Kind.BOOL, "Do not request confirmation (always on: the gateway never prompts)"
            ),
            Param("only_failed", Kind.BOOL, "Only failed jobs"),
            Param("only_running", Kind.BOOL, "Only running jobs"),
            Param("exclude_subdags", Kind.BOOL, "Exclude subdags"),
        ),
    ),
    Api(
        "deploy_dag",
        "Deploy a new DAG file (.py, or a .zip of DAG files) into the DAGs folder; Airflow parses it at once",
        (
            Param(
                "dag_file",
                Kind.UPLOAD,
                "Python file (or .zip of DAG files) to upload and deploy",
                required=True,
            ),
            Param("force", Kind.BOOL, "Replace the file if one with the same name already exists"),
            Param(
                "pause",
                Kind.BOOL,
                "Pause the file's DAGs once deployed (overrides dags_are_paused_at_creation)",
            ),
            Param(
                "unpause",
                Kind.BOOL,
                "Unpause the file's DAGs once deployed (overrides dags_are_paused_at_creation)",
            ),
            Param(
                "subfolder", Kind.SUBFOLDER, "Folder under the DAGs folder to write into (e.g. team_a/etl)"
            ),
        ),
        kind=ApiKind.BUILTIN,
        methods=("POST",),
    ),
    Api(
        "refresh_dag",
        "Re-parse the DAG files of the bundle holding this DAG into Airflow's database",
        (DAG,),
        kind=ApiKind.BUILTIN,
    ),
    Api(
        "refresh_all_dags",
        "Re-parse every DAG file into Airflow's database (airflow dags reserialize)",
        (Param("bundle", Kind.BUNDLE, "Only this DAG bundle (Airflow 3)"),),
    ),
    # --- read commands the original plugin lacked -------------------------------------
    Api(
        "list_dag_runs",
        "List the runs of a DAG",
        (
            DAG,
            Param("state", Kind.STATE, "Only runs in this state (queued, running, success, failed)"),
            START,
            END,
            OUTPUT,
        ),
        origin="gateway",
    ),
    Api(
        "list_task_states",
        "The state of every task instance of one DAG run",
        (DAG, WHEN, OUTPUT),
        origin="gateway",
    ),
    Api("list_import_errors", "DAG files that failed to import", (OUTPUT,), origin="gateway"),
    Api("list_variables", "List variable keys", (OUTPUT,), origin="gateway"),
    Api("list_pools", "List pools", (OUTPUT,), origin="gateway"),
    Api("list_connections", "List connection ids and types", (OUTPUT,), origin="gateway"),
    Api(
        "next_execution",
        "The next logical date(s) the scheduler will create for a DAG",
        (DAG, Param("num_executions", Kind.INT, "How many upcoming dates to show")),
        origin="gateway",
    ),
    Api("dag_details", "Details of a DAG", (DAG, OUTPUT), origin="gateway"),
    # --- daemons the modern CLI has, and the gateway's own daemon bookkeeping ---------
    Api(
        "triggerer",
        "Start a triggerer (runs deferred tasks)",
        (Param("capacity", Kind.INT, "Maximum number of triggers per triggerer"),),
        kind=ApiKind.DAEMON,
        origin="gateway",
    ),
    Api(
        "dag_processor",
        "Start a standalone DAG processor",
        (Param("num_runs", Kind.INT, "Number of parsing loops before exiting"),),
        kind=ApiKind.DAEMON,
        origin="gateway",
    ),
    Api(
        "list_daemons",
        "Daemons started by this gateway, alive or not, with pid and log file",
        kind=ApiKind.BUILTIN,
        origin="gateway",
    ),
    Api(
        "whoami",
        "Your principal (name, auth method, groups, claims) and the APIs the policies let you call",
        kind=ApiKind.BUILTIN,
        origin="gateway",
    ),
    Api(
        "stop_daemon",
        "Stop a daemon this gateway started (SIGTERM to its process group, then SIGKILL)",
        (Param("id", Kind.DAEMON_ID, "The daemon id from list_daemons or the start call", required=True),),
        kind=ApiKind.BUILTIN,
        origin="gateway",
    ),
)
