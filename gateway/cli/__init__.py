"""Translating the plugin's API into Airflow CLI calls: tables, interpreter, runner."""
