"""Airflow-side half of airflow-gateway's identity: Airflow trusts the gateway's signed assertion.

- Airflow 3: ``[core] auth_manager = airflow_gateway_auth.GatewayAuthManager``
- Airflow 2: ``webserver_config.py`` importing :mod:`airflow_gateway_auth.fab_config`, and
  ``[api] auth_backends = airflow_gateway_auth.fab_backend``

The Airflow 3 class is imported lazily, so this package imports on Airflow 2 (and without
Airflow, for the verifier).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("GatewayAuthManager", "GatewayUser"):
        from airflow_gateway_auth import airflow3

        return getattr(airflow3, name)
    raise AttributeError(name)
