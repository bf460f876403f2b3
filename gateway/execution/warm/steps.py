"""What a warm process imports and builds once, per Airflow CLI dialect.

Read by :func:`gateway.execution.warm.server.warm_up` in Airflow's own interpreter:

- ``imports``: modules imported once (Airflow, its configuration and settings, the CLI).
- ``import_packages``: packages whose every module is imported (the CLI command modules,
  which Airflow 2/3 import lazily per command; a module failing to import is skipped).
- ``memoize``: callables replaced by a cached version, one result per distinct call (1.10
  rebuilds its parser per call; every httpx client builds a TLS context from the CA bundle).
- ``calls``: callables run once: building the parser, importing every model, configuring
  the SQLAlchemy mappers (otherwise each child's first query would configure them).
- ``alembic_scripts``: functions ``f(config=None)`` returning the alembic
  ``ScriptDirectory`` of a config; replaced by a version that builds each script
  location's directory, with its revision map, once.  Every ``action_cli`` command checks
  the database against the installed heads, and reading the heads loads every migration
  file, a large part of a warm call's CPU (figures in docs/cli-runner.md).  The files can
  change only with the install, which replaces the warm process; each call still reads
  the database's own revision, so the check is the same.
- ``database``: Airflow functions every CLI child runs first (the schema check, the log
  template, the ``log`` row) and common reads (variable, pool, DAG run), run once in the
  parent on names that exist nowhere, nothing committed, so that SQLAlchemy's compiled
  statement cache and lazily built mapper structures are there before any fork.  The
  parent then closes every connection (``engine.dispose()``); a pool event makes any
  connection opened in another process unusable (``server._guard_connections``).
- ``optional``: calls and functions that may be missing in some releases.
- ``package``: the installed package whose directory (and site-packages) is watched for
  an upgrade; with it, its ``airflow.cfg`` and plugins folder are watched too.

Nothing here may parse DAG files: a child must see DAG files as they are at call time.
Only ``database`` connects, and closes its connections before any fork: a child must not
inherit a pooled connection.
"""

from __future__ import annotations

from typing import Final

# Every CLI command decorated with Airflow's action_cli checks that the database schema is
# at the installed heads (check_and_run_migrations): importing alembic for that in each
# child would be most of a warm call's time (figures in docs/cli-runner.md).
_ALEMBIC = [
    "airflow.utils.db", "alembic", "alembic.command", "alembic.config", "alembic.script",
    "alembic.runtime.migration", "alembic.runtime.environment", "alembic.autogenerate",
    "alembic.ddl.sqlite", "alembic.ddl.postgresql", "alembic.ddl.mysql", "alembic.ddl.mssql",
]  # fmt: skip

# Every httpx client (Airflow's API client, made by `pools get` and other commands even when
# it talks to the local database) builds a TLS context and parses the whole CA bundle into
# it: about 20 ms of each such call's CPU.  Built once in the parent, for each distinct set
# of arguments; the CA bundle is then read at warm-up (certifi's is in the watched install;
# a system bundle named by SSL_CERT_FILE is read once per warm process, up to cli.warm_max_age).
_HTTPX_TLS = "httpx._transports.default:create_ssl_context"

# Airflow 3 and 2 warm up the same way (their CLIs share cli_parser and the command modules).
_AIRFLOW_2_3: Final[dict[str, list[str]]] = {
    "imports": ["airflow", "airflow.settings", "airflow.__main__", "airflow.cli.cli_parser", *_ALEMBIC],
    "import_packages": ["airflow.cli.commands"],
    "memoize": [_HTTPX_TLS],
    "calls": [
        "airflow.cli.cli_parser:get_parser",
        "airflow.models:import_all_models",
        "sqlalchemy.orm:configure_mappers",
        _HTTPX_TLS,
    ],
    # Private functions of Airflow's and httpx's: a release without one warms up without that step.
    "optional": ["airflow.models:import_all_models", "airflow.utils.db:_get_script_object", _HTTPX_TLS],
    "alembic_scripts": ["airflow.utils.db:_get_script_object"],
    "database": ["schema_check", "log_template", "action_log", "variable", "pool", "dag_run"],
    "package": ["airflow"],
}

WARM_UP: Final[dict[str, dict[str, list[str]]]] = {
    "3": _AIRFLOW_2_3,
    "2": _AIRFLOW_2_3,
    "1.10": {
        "imports": ["airflow", "airflow.settings", "airflow.models", "airflow.bin.cli"],
        "import_packages": [],
        "memoize": ["airflow.bin.cli:CLIFactory.get_parser"],
        "calls": ["airflow.bin.cli:CLIFactory.get_parser", "sqlalchemy.orm:configure_mappers"],
        "optional": [],
        "package": ["airflow"],
    },
}


#: First CLI words that always run cold, whatever the dialect.  Servers and daemons run
#: for days: forked from the warm process they would pin its memory and share its
#: import-time state for their whole life, and they are not short calls anyway (the
#: daemon APIs start them through the daemon manager, never the runner).  ``db`` and the
#: 1.10 ``*db`` commands rewrite the schema that the warm process's mappers describe.
COLD_COMMANDS: Final[frozenset[str]] = frozenset(
    {
        "api-server", "celery", "dag-processor", "db", "flower", "internal-api", "kerberos",
        "scheduler", "serve_logs", "standalone", "triggerer", "webserver", "worker",
        "initdb", "resetdb", "upgradedb",
    }
)  # fmt: skip
