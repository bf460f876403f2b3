"""Warm Airflow processes that fork one child per CLI call."""
