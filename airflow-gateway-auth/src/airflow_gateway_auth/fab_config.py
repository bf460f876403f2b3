"""FAB settings for Airflow 2's ``webserver_config.py``: ``from airflow_gateway_auth.fab_config import *``.

Names may be overridden after the import (e.g. ``AUTH_ROLES_MAPPING["op"] = ["Op", "MyRole"]``).
"""

from __future__ import annotations

from flask_appbuilder.const import AUTH_REMOTE_USER

from airflow_gateway_auth.fab import GatewaySecurityManager
from airflow_gateway_auth.roles import FAB_ROLES

#: no password form: the login view sends people to the gateway's sign-in
AUTH_TYPE = AUTH_REMOTE_USER
SECURITY_MANAGER_CLASS = GatewaySecurityManager
#: a principal's first request registers its FAB user
AUTH_USER_REGISTRATION = True
#: every mapped role includes Viewer; principals whose groups map to no role are refused before FAB
AUTH_USER_REGISTRATION_ROLE = "Viewer"
#: role key (the [gateway_auth] roles result) -> FAB roles
AUTH_ROLES_MAPPING = {role: [fab_role] for role, fab_role in FAB_ROLES.items()}
#: roles follow the groups in each new assertion
AUTH_ROLES_SYNC_AT_LOGIN = True
WTF_CSRF_ENABLED = True

__all__ = [
    "AUTH_ROLES_MAPPING",
    "AUTH_ROLES_SYNC_AT_LOGIN",
    "AUTH_TYPE",
    "AUTH_USER_REGISTRATION",
    "AUTH_USER_REGISTRATION_ROLE",
    "SECURITY_MANAGER_CLASS",
    "WTF_CSRF_ENABLED",
]
