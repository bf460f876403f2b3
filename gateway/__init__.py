"""airflow-gateway: a security front door for Apache Airflow."""

from __future__ import annotations

__version__ = "0.1.0"
