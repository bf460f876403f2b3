"""Test DAG for jobs: ``lines`` prints a numbered line every half second.

``params.n`` sets how many lines (default 20: about 10 s), so tests can watch output
arrive before the task ends, and cancel it midway.  ``params.width`` pads each line with
that many ``x`` and ``params.pause`` sets the pause, so a test can print megabytes fast.
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
    except ImportError:  # 1.10
        from airflow.operators.bash_operator import BashOperator

# Paused at creation; a schedule lets the jobs tests backfill it (1.10 calls it schedule_interval).
SCHEDULE = {"schedule_interval" if version.version.startswith("1.") else "schedule": "@daily"}

with DAG(
    dag_id="gw_slow",
    **SCHEDULE,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    params={"n": 20, "width": 0, "pause": 0.5},
    tags=["gateway-tests"],
) as slow:
    BashOperator(
        task_id="lines",
        bash_command=(
            'for i in $(seq 1 {{ params.n }}); do echo "gw-line ${i}{{ "x" * params.width }}";'
            " sleep {{ params.pause }}; done"
        ),
    )
