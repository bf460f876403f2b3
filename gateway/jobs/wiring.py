"""Build the job store, service and endpoints for one gateway worker process."""

from __future__ import annotations

from gateway.config.loader import GatewayConfig
from gateway.jobs.endpoints import JobEndpoints
from gateway.jobs.service import Dispatch, JobService, instance_id
from gateway.jobs.store import JobStore
from gateway.observability.audit import AuditLog
from gateway.observability.metrics import Metrics
from gateway.policy.engine import PolicyEngine
from gateway.ratelimit.limiter import RateLimits

SQLITE_NAME = "jobs.sqlite3"


def open_store(config: GatewayConfig) -> JobStore:
    """PostgreSQL when ``jobs.database_url`` is set, else SQLite in the state directory."""
    if config.jobs.database_url is not None:
        return JobStore(url=config.jobs.database_url.value)
    return JobStore(sqlite_path=config.gateway.state_dir / SQLITE_NAME)


def start_jobs(
    config: GatewayConfig,
    *,
    dispatch: Dispatch,
    policy: PolicyEngine | None,
    metrics: Metrics | None,
    audit: AuditLog,
    limits: RateLimits | None = None,
) -> JobEndpoints:
    """Open the store, recover this instance's orphaned jobs, start the job threads.

    The endpoints' ``service`` takes the API's job submissions."""
    service = JobService(
        open_store(config), config.jobs, dispatch=dispatch, instance=instance_id(config.gateway.state_dir),
        audit=audit.event, metrics=metrics, limits=limits,
    )  # fmt: skip
    service.start()
    return JobEndpoints(service, policy=policy)
