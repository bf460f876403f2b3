"""DAG files: deployment, refresh and read-backs on every Airflow version."""
