"""Airflow 2 (FAB): the asserted principal becomes a FAB user, for the UI and for ``/api/v1``.

Shared by :class:`GatewaySecurityManager` (UI) and :mod:`airflow_gateway_auth.fab_backend`
(REST API).  The user is found or auto-registered through FAB's own OAuth path
(``auth_user_oauth``): ``AUTH_USER_REGISTRATION`` creates it, ``AUTH_ROLES_MAPPING`` maps the
role key (the ``[gateway_auth] roles`` result: viewer, user, op, admin) to FAB roles, and
``AUTH_ROLES_SYNC_AT_LOGIN`` keeps them in step with the groups.  :mod:`.fab_config` sets these.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from airflow.providers.fab.auth_manager.security_manager.override import FabAirflowSecurityManagerOverride
from flask import Response, redirect, request, session
from flask_appbuilder import expose
from flask_appbuilder.security.views import AuthRemoteUserView
from flask_login import current_user, login_user, logout_user

from airflow_gateway_auth import settings as settings_mod
from airflow_gateway_auth.verify import Principal, Refused, Verifier

_lock = threading.Lock()
_verifier: Verifier | None = None
#: assertion (jti, sub) -> FAB user id, so an assertion's repeated API calls register/sync once
_users: OrderedDict[tuple[str, str], int] = OrderedDict()
SESSION_KEY = "gateway_assertion_jti"


def verifier() -> Verifier:
    """The process's verifier, built from ``[gateway_auth]`` on first use."""
    global _verifier
    with _lock:
        if _verifier is None:
            _verifier = Verifier(settings_mod.from_airflow())
        return _verifier


def unauthorized() -> Response:
    return Response(
        "Unauthorized: a valid gateway assertion is required", 401, {"WWW-Authenticate": "Bearer"}
    )


def fab_user(sm: Any, principal: Principal, role: str) -> Any:
    """The FAB user of ``principal``: found, or registered; roles synced from ``role``."""
    key = (principal.jti, principal.username)
    with _lock:
        user_id = _users.get(key)
    if user_id is not None:
        user = sm.get_user_by_id(user_id)
        if user is not None and user.is_active:
            return user
    user = sm.auth_user_oauth(
        {
            "username": principal.username,
            "email": principal.email or "",
            "first_name": principal.name,
            "last_name": "-",
            "role_keys": [role],
        }
    )
    if user is not None:
        with _lock:
            _users[key] = user.id
            while len(_users) > 4096:
                _users.popitem(last=False)
    return user


def user_from_request(sm: Any) -> Any:
    """The FAB user of the request's assertion, or None (no assertion, refused, or inactive)."""
    v = verifier()
    token = request.headers.get(v.settings.header)
    try:
        principal, role = v.authenticate(token, request.path)
    except Refused:
        return None
    return fab_user(sm, principal, role)


class GatewayAuthView(AuthRemoteUserView):
    """``/login/``: signed in at the gateway -> back to ``next``; else to the gateway's sign-in."""

    @expose("/login/")
    def login(self) -> Any:
        next_url = request.args.get("next", "")
        if current_user.is_authenticated:
            from flask_appbuilder.utils.base import get_safe_redirect

            return redirect(get_safe_redirect(next_url))
        settings = verifier().settings
        if request.headers.get(settings.header):
            return unauthorized()  # present but refused (the before_request hook logs why)
        from urllib.parse import urlencode

        back = request.full_path if request.query_string else request.path
        return redirect(f"{settings.login_url}?{urlencode({'next': back})}")

    @expose("/logout/")
    def logout(self) -> Any:
        logout_user()
        session.pop(SESSION_KEY, None)
        return redirect(verifier().settings.logout_url)


class GatewaySecurityManager(FabAirflowSecurityManagerOverride):
    """Logs the asserted principal in on every UI request (like ``AUTH_REMOTE_USER``, but verified).

    With an assertion: verified (refused -> 401), and the session's user becomes the
    principal (re-registered/synced once per assertion).  Without one, and
    ``require_assertion`` on: any session login is dropped, so the request is anonymous.
    ``/api/`` is left to the REST API's auth backend (:mod:`.fab_backend`).
    """

    authremoteuserview = GatewayAuthView

    def __init__(self, appbuilder: Any) -> None:
        super().__init__(appbuilder)
        app = appbuilder.get_app
        app.before_request_funcs.setdefault(None, []).insert(0, self._gateway_login)

    def _gateway_login(self) -> Response | None:
        path = request.path
        if path.startswith(("/api/", "/static/")) or path == "/health":
            return None
        v = verifier()
        token = request.headers.get(v.settings.header)
        if not token:
            if v.settings.require_assertion and current_user.is_authenticated:
                logout_user()
                session.pop(SESSION_KEY, None)
            return None
        try:
            principal, role = v.authenticate(token, path)
        except Refused:
            return unauthorized()
        if (
            current_user.is_authenticated
            and current_user.username == principal.username
            and session.get(SESSION_KEY) == principal.jti
        ):
            return None
        user = fab_user(self, principal, role)
        if user is None:
            return unauthorized()
        login_user(user, remember=False)
        session[SESSION_KEY] = principal.jti
        return None
