"""The registry of dialect tables, by dialect name."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.cli.airflow2 import AIRFLOW2
from gateway.cli.airflow3 import AIRFLOW3
from gateway.cli.airflow110 import AIRFLOW110
from gateway.cli.spec import Dialect

DIALECTS: Mapping[str, Dialect] = {d.name: d for d in (AIRFLOW3, AIRFLOW2, AIRFLOW110)}
