"""Running Airflow CLI processes: cold subprocesses, warm forks, daemons, job routing."""
