"""Example DAG for a local gateway set-up (Airflow 2 and 3).

The DAG object is deliberately not called ``dag``.  ``first`` renders templated fields,
``boom`` fails when its ``rc`` param is non-zero.
"""

from __future__ import annotations

import datetime

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.bash import BashOperator

with DAG(
    dag_id="example_gateway",
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={"x": "default-x", "rc": 0},
    tags=["example"],
) as example:
    # Airflow 3 runs triggered without a logical date have no ``ds``: render "none" then.
    first = BashOperator(
        task_id="first", bash_command="echo first ds={{ ds | default('none') }} x={{ params.x }}"
    )
    second = BashOperator(task_id="second", bash_command="echo second")
    boom = BashOperator(task_id="boom", bash_command="exit {{ params.rc }}")
    first >> second
