"""What a warm process imports and builds once, per Airflow CLI dialect.

Read by :func:`gateway.execution.warm.server.warm_up` in Airflow's own interpreter:

- ``imports``: modules imported once (Airflow, its configuration and settings, the CLI).
- ``import_packages``: packages whose every module is imported (the CLI command modules,
  which Airflow 2/3 import lazily per command; a module failing to import is skipped).
- ``memoize``: callables replaced by a cached version (1.10 rebuilds its parser per call).
- ``calls``: callables run once: building the parser, importing every model, configuring
  the SQLAlchemy mappers (otherwise each child's first query would configure them).
- ``alembic_scripts``: functions ``f(config=None)`` returning the alembic
  ``ScriptDirectory`` of a config; replaced by a version that builds each script
  location's directory, with its revision map, once.  Every ``action_cli`` command checks
  the database against the installed heads, and reading the heads loads every migration
  file, a large part of a warm call's CPU (figures in docs/cli-runner.md).  The files can
  change only with the install, which replaces the warm process; each call still reads
  the database's own revision, so the check is the same.
- ``optional``: calls and functions that may be missing in some releases.
- ``package``: the installed package whose directory (and site-packages) is watched for
  an upgrade; with it, its ``airflow.cfg`` and plugins folder are watched too.

Nothing here may parse DAG files or connect to the database: a child must see DAG files
as they are at call time, and must not inherit a pooled connection.
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

# Airflow 3 and 2 warm up the same way (their CLIs share cli_parser and the command modules).
_AIRFLOW_2_3: Final[dict[str, list[str]]] = {
    "imports": ["airflow", "airflow.settings", "airflow.__main__", "airflow.cli.cli_parser", *_ALEMBIC],
    "import_packages": ["airflow.cli.commands"],
    "memoize": [],
    "calls": [
        "airflow.cli.cli_parser:get_parser",
        "airflow.models:import_all_models",
        "sqlalchemy.orm:configure_mappers",
    ],
    # A private function of Airflow's: a release without it warms up without that step.
    "optional": ["airflow.models:import_all_models", "airflow.utils.db:_get_script_object"],
    "alembic_scripts": ["airflow.utils.db:_get_script_object"],
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
