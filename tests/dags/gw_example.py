"""Test DAG for the gateway's end-to-end tests (Airflow 3, 2 and 1.10).

The DAG object is deliberately not called ``dag``.  ``first`` renders templated fields,
``boom`` fails when its ``rc`` param is non-zero.
"""

from __future__ import annotations

import datetime

from airflow import version

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2 and 1.10
    from airflow import DAG

    try:
        from airflow.operators.bash import BashOperator
    except ImportError:  # Airflow 1.10
        from airflow.operators.bash_operator import BashOperator

# 1.10 calls it schedule_interval; 3.x knows only schedule.
SCHEDULE = {"schedule_interval" if version.version.startswith("1.") else "schedule": "@daily"}

with DAG(
    dag_id="gw_example",
    **SCHEDULE,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={"x": "default-x", "rc": 0},
    tags=["gateway-tests"],
) as example:
    first = BashOperator(task_id="first", bash_command="echo first ds={{ ds }} x={{ params.x }}")
    second = BashOperator(task_id="second", bash_command="echo second")
    boom = BashOperator(task_id="boom", bash_command="exit {{ params.rc }}")
    first >> second
