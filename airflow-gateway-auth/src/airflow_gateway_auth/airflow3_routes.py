"""The auth manager's FastAPI app (mounted on ``/auth``): Airflow JWTs issued only from a valid assertion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX, get_cookie_path
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.core_api.security import is_safe_url
from airflow.configuration import conf
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import RedirectResponse

from airflow_gateway_auth.verify import Refused

if TYPE_CHECKING:
    from airflow_gateway_auth.airflow3 import GatewayAuthManager, GatewayUser


def create_app(manager: GatewayAuthManager) -> FastAPI:
    """Login (cookie for the UI), token and CLI token; no passwords anywhere."""
    app = FastAPI(
        title="Gateway auth manager",
        description="Issues Airflow's own JWT from the gateway's signed identity assertion.",
    )
    header = manager.settings.header

    async def user_of(request: Request) -> GatewayUser:
        try:
            principal, role = await manager.authenticate(request.headers.get(header), request.url.path)
        except Refused:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="Not authenticated: a valid gateway assertion is required",
            ) from None
        return manager.user_for(principal, role)

    @app.get("/login", status_code=status.HTTP_307_TEMPORARY_REDIRECT, include_in_schema=False)
    async def login(request: Request, next: str | None = None) -> RedirectResponse:
        """With an assertion: set the UI's ``_token`` and go to ``next``; without: the gateway's sign-in."""
        if next and not is_safe_url(next, request=request):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="Invalid or unsafe next URL")
        if header not in request.headers:
            back = f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/login" + (
                f"?{urlencode({'next': next})}" if next else ""
            )
            return RedirectResponse(f"{manager.settings.login_url}?{urlencode({'next': back})}")
        user = await user_of(request)
        response = RedirectResponse(next or conf.get("api", "base_url", fallback="/") or "/")
        secure = request.base_url.scheme == "https" or bool(conf.get("api", "ssl_cert", fallback=""))
        response.set_cookie(
            COOKIE_NAME_JWT_TOKEN,
            manager.generate_jwt(user),
            path=get_cookie_path(),
            secure=secure,
            httponly=True,
            samesite="lax",
        )
        return response

    @app.post("/token", status_code=status.HTTP_201_CREATED)
    async def create_token(request: Request) -> dict[str, Any]:
        """An Airflow JWT for the asserted principal (request body ignored)."""
        return {"access_token": manager.generate_jwt(await user_of(request))}

    @app.post("/token/cli", status_code=status.HTTP_201_CREATED)
    async def create_token_cli(request: Request) -> dict[str, Any]:
        """As ``/token``, with Airflow's CLI token lifetime."""
        seconds = conf.getint("api_auth", "jwt_cli_expiration_time")
        return {
            "access_token": manager.generate_jwt(await user_of(request), expiration_time_in_seconds=seconds)
        }

    return app
