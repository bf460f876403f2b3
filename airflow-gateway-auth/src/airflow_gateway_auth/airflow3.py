"""Airflow 3: ``[core] auth_manager = airflow_gateway_auth.GatewayAuthManager``.

How a request becomes an Airflow user (the design, see docs/airflow-identity.md):

- Airflow 3's API (``/api/v2``, ``/ui``) authenticates by Airflow's own JWT (``Authorization:
  Bearer`` first, else the ``_token`` cookie; ``core_api.security.get_user``).  This auth
  manager adds one ASGI middleware, in front of Airflow's own, that decides which of those
  credentials Airflow gets to see:

  * a request **with** the assertion header: the assertion is verified (cached per assertion);
    refused -> ``401`` before any route runs; valid -> the request's ``Authorization`` is
    replaced by ``Bearer <an Airflow JWT minted for the asserted user>`` (cached per assertion)
    and any ``_token`` cookie is dropped, so the route's user is the gateway's principal and
    nothing the client sent can override it;
  * a request **without** it (``[gateway_auth] require_assertion``, the default): its
    ``Authorization`` header and ``_token`` cookie are removed, so it is anonymous to Airflow:
    protected endpoints answer ``401``, public ones (health, version, the UI's static files,
    the login redirect) still work.  ``/execution/`` (the task SDK's own tokens) is left alone.

- The auth manager's own app (mounted on ``/auth``) issues Airflow JWTs only from a valid
  assertion: ``GET /auth/login`` sets the UI's ``_token`` cookie and redirects (no assertion:
  to the gateway's sign-in, back here afterwards), ``POST /auth/token`` and ``/auth/token/cli``
  return a token.  There is no password login at all.

Roles and their permissions are SimpleAuthManager's (viewer < user < op < admin): this class
derives from it and reuses its ``is_authorized_*`` logic; only DAG access by group is added.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import anyio.to_thread
from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN, BaseAuthManager
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.configuration import conf

from airflow_gateway_auth import settings as settings_mod
from airflow_gateway_auth.roles import ROLES
from airflow_gateway_auth.verify import Principal, Refused, Verifier, log

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from fastapi import FastAPI

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class GatewayUser(SimpleAuthManagerUser):
    """A gateway principal with the role its groups map to (SimpleAuthManager's user, plus groups)."""

    def __init__(
        self,
        *,
        username: str,
        role: str | None,
        groups: list[str] | None = None,
        email: str | None = None,
        display_name: str | None = None,
    ) -> None:
        super().__init__(username=username, role=role, teams=None)
        self.groups = list(groups or [])
        self.email = email
        self.display_name = display_name or username

    @classmethod
    def of(cls, principal: Principal, role: str) -> GatewayUser:
        return cls(
            username=principal.username,
            role=role,
            groups=list(principal.groups),
            email=principal.email,
            display_name=principal.name,
        )


class GatewayAuthManager(SimpleAuthManager):
    """Trusts the gateway's signed assertion; roles from groups by ``[gateway_auth] roles``."""

    _minted_lock = threading.Lock()

    @cached_property
    def settings(self) -> settings_mod.Settings:
        return settings_mod.from_airflow()

    @cached_property
    def verifier(self) -> Verifier:
        return Verifier(self.settings)

    @cached_property
    def _minted(self) -> OrderedDict[bytes, str]:
        return OrderedDict()

    def init(self) -> None:
        """Check ``[gateway_auth]`` at start-up (SimpleAuthManager's password files are not used)."""
        if conf.getboolean("core", "multi_team", fallback=False):
            raise ValueError("GatewayAuthManager does not support [core] multi_team")
        BaseAuthManager.init(self)
        _ = self.settings
        if not self.settings.roles.groups:
            log.warning("[gateway_auth] roles is empty: every assertion will be refused (no role)")

    # -- users and tokens -------------------------------------------------------------------

    def deserialize_user(self, token: dict[str, Any]) -> GatewayUser:
        role = token["role"]
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        return GatewayUser(
            username=token["sub"],
            role=role,
            groups=list(token.get("groups") or []),
            email=token.get("email"),
            display_name=token.get("name"),
        )

    def serialize_user(self, user: SimpleAuthManagerUser) -> dict[str, Any]:
        claims: dict[str, Any] = {"sub": user.username, "role": user.role}
        if isinstance(user, GatewayUser):
            claims.update(groups=user.groups, email=user.email, name=user.display_name)
        return claims

    def user_for(self, principal: Principal, role: str) -> GatewayUser:
        return GatewayUser.of(principal, role)

    def request_token(self, principal: Principal, role: str) -> str:
        """An Airflow JWT for one assertion's requests, minted once per assertion (by its jti)."""
        key = hashlib.sha256(f"{principal.jti}\0{principal.username}".encode()).digest()
        with self._minted_lock:
            token = self._minted.get(key)
            if token is not None:
                return token
        lifetime = self.settings.max_lifetime + self.settings.leeway
        token = self.generate_jwt(self.user_for(principal, role), expiration_time_in_seconds=lifetime)
        with self._minted_lock:
            self._minted[key] = token
            while len(self._minted) > 4096:
                self._minted.popitem(last=False)
        return token

    async def authenticate(self, assertion: str | None, where: str) -> tuple[Principal, str]:
        """Verify without blocking the event loop (the cache answers most calls; else a thread)."""
        if assertion and (principal := self.verifier.cached(assertion)) is not None:
            role = self.settings.roles.role_for(principal.groups)
            if role is not None:
                return principal, role
        return await anyio.to_thread.run_sync(self.verifier.authenticate, assertion, where)

    # -- URLs -------------------------------------------------------------------------------

    def get_url_login(self, **kwargs: Any) -> str:
        url = f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/login"
        next_url = kwargs.get("next_url")
        return f"{url}?{urlencode({'next': next_url})}" if next_url else url

    def get_url_logout(self) -> str | None:
        return self.settings.logout_url

    # -- authorization: SimpleAuthManager's, plus DAG access by group -----------------------

    def is_authorized_dag(
        self,
        *,
        method: ResourceMethod,
        user: SimpleAuthManagerUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
    ) -> bool:
        access = self.settings.dag_access
        if (
            access.enabled
            and details is not None
            and details.id
            and not self._is_admin(user)
            and not access.allows(getattr(user, "groups", ()), details.id)
        ):
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )

    def _get_teams(self) -> set[str]:
        return set()

    # -- FastAPI: the middleware and the token exchange -------------------------------------

    def get_fastapi_middlewares(self) -> list[tuple[Any, dict[str, Any]]]:
        return [(AssertionMiddleware, {"manager": self})]

    def get_fastapi_app(self) -> FastAPI | None:
        from airflow_gateway_auth.airflow3_routes import create_app

        return create_app(self)


def _header(scope: Scope, name: bytes) -> list[bytes]:
    return [value for key, value in scope["headers"] if key == name]


def _without_token_cookie(value: bytes) -> bytes | None:
    """A Cookie header without ``_token`` (None when nothing else is left)."""
    kept = [
        part
        for part in value.split(b";")
        if part.strip() and part.strip().split(b"=", 1)[0].strip() != COOKIE_NAME_JWT_TOKEN.encode()
    ]
    return b";".join(kept).strip() or None


class AssertionMiddleware:
    """Turns the gateway's assertion into the request's Airflow credentials (see the module doc)."""

    def __init__(self, app: ASGIApp, manager: GatewayAuthManager) -> None:
        self.app = app
        self.manager = manager
        self.header = manager.settings.header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        if path.startswith("/execution/") or path == "/execution":
            await self.app(scope, receive, send)
            return
        values = _header(scope, self.header)
        authorization: bytes | None = None
        if values:
            try:
                if len(values) > 1:
                    log.warning("gateway assertion refused on %s: %d assertion headers", path, len(values))
                    raise Refused("more than one assertion header")
                principal, role = await self.manager.authenticate(values[0].decode("latin-1"), path)
            except Refused:
                await _unauthorized(send)
                return
            token = self.manager.request_token(principal, role)
            authorization = f"Bearer {token}".encode()
        elif not self.manager.settings.require_assertion:
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = []
        for key, value in scope["headers"]:
            if key == b"authorization":
                continue
            if key == b"cookie":
                kept = _without_token_cookie(value)
                if kept is not None:
                    headers.append((key, kept))
                continue
            headers.append((key, value))
        if authorization is not None:
            headers.append((b"authorization", authorization))
        await self.app({**scope, "headers": headers}, receive, send)


async def _unauthorized(send: Send) -> None:
    body = b'{"detail":"Not authenticated: invalid gateway assertion"}'
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="airflow-gateway"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = ["AssertionMiddleware", "GatewayAuthManager", "GatewayUser"]
