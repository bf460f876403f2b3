"""Airflow 2 REST API auth backend: ``[api] auth_backends = airflow_gateway_auth.fab_backend``.

Every ``/api/v1`` call needs a valid assertion; its principal becomes the request's FAB user
(auto-registered, roles mapped; see :mod:`airflow_gateway_auth.fab`).  No assertion, or a
refused one: ``401`` (raised, so that FAB's ``AUTH_ROLE_PUBLIC`` fallback, which would turn an
anonymous call into a ``403`` of the Public role, does not apply: the API has no anonymous
access).  Airflow's own credentials (basic auth, session) are not consulted.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from airflow.api_connexion.exceptions import Unauthenticated
from airflow.www.extensions.init_auth_manager import get_auth_manager
from flask_login import login_user

from airflow_gateway_auth.fab import user_from_request

CLIENT_AUTH: Any = None
T = TypeVar("T", bound=Callable[..., Any])


def init_app(_: Any) -> None:
    """Nothing to set up: keys and settings load on first use."""


def requires_authentication(function: T) -> T:
    """Run ``function`` as the asserted principal, or answer 401."""

    @wraps(function)
    def decorated(*args: Any, **kwargs: Any) -> Any:
        user = user_from_request(get_auth_manager().security_manager)
        if user is None:
            raise Unauthenticated(detail="a valid gateway assertion is required")
        login_user(user, remember=False)
        return function(*args, **kwargs)

    return cast(T, decorated)
