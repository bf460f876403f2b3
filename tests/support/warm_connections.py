"""Imported first into a warm server under test (Airflow's own Python): who opens and uses which
database connection.  Standard library and SQLAlchemy only; never imported by the gateway.

Every connection any pool opens is tagged with the opening pid and logged (``open PID``) to
the file named by ``GATEWAY_TEST_CONNECTIONS``; a checkout of a connection opened by another
process is logged as ``foreign OPENER USER``.  Listeners are class-level and registered before
Airflow creates its engine, so they see every pool, and fire before the engine's own.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

LOG = os.environ["GATEWAY_TEST_CONNECTIONS"]
_leaked: list[Any] = []


def _log(line: str) -> None:
    with open(LOG, "a") as handle:
        handle.write(line + "\n")


@event.listens_for(Pool, "connect")
def _opened(dbapi_connection: Any, record: Any) -> None:
    record.info["test_opened_by"] = os.getpid()
    _log(f"open {os.getpid()}")


@event.listens_for(Pool, "checkout")
def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    opener = record.info.get("test_opened_by")
    if opener != os.getpid():
        _log(f"foreign {opener} {os.getpid()}")


def leak() -> None:
    """The negative control: the parent opens a connection and keeps it (a warm-up step bug)."""
    from airflow import settings  # type: ignore[import-not-found]

    _leaked.append(settings.engine.connect())
