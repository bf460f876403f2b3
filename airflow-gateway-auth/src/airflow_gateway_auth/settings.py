"""The ``[gateway_auth]`` section of Airflow's configuration, shared by the Airflow 3 and 2 pieces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from airflow_gateway_auth.roles import DagAccess, RoleMapping, parse_dag_access, parse_roles

SECTION = "gateway_auth"
DEFAULT_HEADER = "X-Gateway-Assertion"


class SettingsError(ValueError):
    """``[gateway_auth]`` is incomplete or invalid (raised at start-up, not per request)."""


@dataclass(frozen=True)
class Settings:
    """What the verifier and the Airflow pieces need; see docs/airflow-identity.md."""

    issuer: str
    audience: str = "airflow"
    jwks_url: str | None = None
    jwks_file: str | None = None
    header: str = DEFAULT_HEADER
    algorithms: tuple[str, ...] = ("ES256", "EdDSA")
    leeway: int = 10
    max_lifetime: int = 60
    jwks_cache_seconds: int = 300
    jwks_refetch_interval: float = 10.0
    jwks_timeout: float = 5.0
    roles: RoleMapping = field(default_factory=RoleMapping)
    dag_access: DagAccess = field(default_factory=DagAccess)
    login_url: str = "/admin/rest_api/login"
    logout_url: str = "/admin/rest_api/logout"
    require_assertion: bool = True

    @property
    def wsgi_header(self) -> str:
        """The header as a WSGI environ key (``HTTP_X_GATEWAY_ASSERTION``)."""
        return "HTTP_" + self.header.upper().replace("-", "_")


def load(get: Callable[[str], str | None]) -> Settings:
    """Build :class:`Settings` from ``get(key)`` (a ``[gateway_auth]`` lookup; None when unset)."""
    issuer = get("issuer")
    if not issuer:
        raise SettingsError(
            "[gateway_auth] issuer is required (the gateway's URL, as in its assertions' iss)"
        )
    jwks_url, jwks_file = get("jwks_url") or None, get("jwks_file") or None
    if bool(jwks_url) == bool(jwks_file):
        raise SettingsError("[gateway_auth] needs exactly one of jwks_url and jwks_file")
    algorithms = tuple(a.strip() for a in (get("algorithms") or "ES256,EdDSA").split(",") if a.strip())
    if not algorithms or not set(algorithms) <= {"ES256", "ES384", "ES512", "EdDSA"}:
        raise SettingsError("[gateway_auth] algorithms: only asymmetric ES256/ES384/ES512/EdDSA are accepted")

    def number(key: str, default: float) -> float:
        raw = get(key)
        try:
            value = float(raw) if raw not in (None, "") else default
        except ValueError:
            raise SettingsError(f"[gateway_auth] {key} must be a number, not {raw!r}") from None
        if value < 0:
            raise SettingsError(f"[gateway_auth] {key} must not be negative")
        return value

    require = (get("require_assertion") or "True").strip().lower()
    if require not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError(f"[gateway_auth] require_assertion must be True or False, not {require!r}")
    return Settings(
        issuer=issuer,
        audience=get("audience") or "airflow",
        jwks_url=jwks_url,
        jwks_file=jwks_file,
        header=get("header") or DEFAULT_HEADER,
        algorithms=algorithms,
        leeway=int(number("leeway", 10)),
        max_lifetime=int(number("max_lifetime", 60)),
        jwks_cache_seconds=int(number("jwks_cache_seconds", 300)),
        jwks_refetch_interval=number("jwks_refetch_interval", 10.0),
        jwks_timeout=number("jwks_timeout", 5.0),
        roles=parse_roles(get("roles")),
        dag_access=parse_dag_access(get("dag_access")),
        login_url=get("login_url") or "/admin/rest_api/login",
        logout_url=get("logout_url") or "/admin/rest_api/logout",
        require_assertion=require in ("true", "1", "yes"),
    )


def from_airflow() -> Settings:
    """:class:`Settings` from Airflow's own configuration (airflow.cfg, ``AIRFLOW__GATEWAY_AUTH__*``)."""
    from airflow.configuration import conf

    def get(key: str) -> str | None:
        value = conf.get(SECTION, key, fallback=None)
        return None if value is None else str(value)

    return load(get)
