"""Job actions as policy targets: reading and cancelling *other principals'* jobs.

The principal that submitted a job may always read and cancel it.  Anyone else needs an
allow rule naming ``job_read_any`` (read one, list all) or ``job_cancel_any`` in ``apis``;
``dag_ids`` constraints apply to the job's DAG.  ``apis = ["*"]`` covers them too.
"""

from __future__ import annotations

from gateway.cli.apis import DAG
from gateway.cli.spec import Api, ApiKind, Param
from gateway.identity.client import IPAddress
from gateway.identity.principal import Principal
from gateway.policy.engine import PolicyEngine, Target

_DAG = Param(DAG.name, DAG.kind, "The job's DAG")
JOB_ACTIONS: dict[str, Api] = {
    "job_read_any": Api(
        "job_read_any",
        "Read any principal's jobs and their output",
        (_DAG,),
        kind=ApiKind.BUILTIN,
        origin="gateway",
    ),
    "job_cancel_any": Api(
        "job_cancel_any", "Cancel any principal's jobs", (_DAG,), kind=ApiKind.BUILTIN, origin="gateway"
    ),
}
JOB_ACTION_NAMES = frozenset(JOB_ACTIONS)


def owns(principal: Principal, owner: tuple[str, str]) -> bool:
    """Whether ``principal`` submitted a job recorded with ``owner`` (name, auth method)."""
    return (principal.name, principal.method) == owner


def may(
    engine: PolicyEngine | None,
    principal: Principal,
    action: str,
    *,
    owner: tuple[str, str] | None,
    dag_id: str | None,
    address: IPAddress | None,
) -> bool:
    """Whether ``principal`` may do ``action`` on a job (``owner`` None: on every job, for listing)."""
    if owner is not None and owns(principal, owner):
        return True
    if engine is None:
        return False
    values = {"dag_id": dag_id} if dag_id else {}
    # Shadow mode does not apply: ownership is not a policy being tried out.
    return engine.decide(principal, Target(api=JOB_ACTIONS[action], values=values), address).allowed
