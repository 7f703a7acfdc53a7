"""Dependencies: the app's services, who is calling, and what they may see.

Access control lives here and nowhere else. Each guard below is a dependency carrying the roles
it admits in a ``roles`` attribute; every route depends on exactly one guard, so the roles of a
route can be read from ``app.routes`` (the OpenAPI document lists them and the authorization
matrix test derives its cases from them).

Roles: a *customer* account is the owner of the sites it created and a supporter of the sites
it was granted; ``factory_service`` accounts reach sites whose factory-service switch is on;
``trader`` and ``analyst`` accounts use the trading routes; a *box* authenticates with its own
token. A site the caller has no relation to is answered 404, exactly as one that does not exist.

The guards are ``async``: their work is a JWT check or a digest plus an indexed SQLite lookup
(microseconds), cheaper on the event loop than a hop to the thread pool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pwdlib import PasswordHash

from adapters.store import TelemetryStore
from api.accounts_store import AccountStore, Box, Site, User
from api.errors import ApiError, forbidden, not_found, unauthorized
from api.mailer import Mailer
from api.observability import Metrics, RequestLog
from api.schedule import PlanCache
from api.security import decode_access_token, token_digest
from api.settings import Settings
from api.throttle import Throttles
from notifications import NotificationStore, Notifier
from scheduler.inputs import LiveInputs
from scheduler.plan_store import PlanStore

Clock = Callable[[], datetime]
SiteRoleName = Literal["owner", "supporter", "factory_service"]
ROLE_ATTRIBUTE = "roles"
#: Every role name a guard may declare. ``customer`` = any customer account regardless of site.
ROLE_NAMES = (
    "public",
    "customer",
    "owner",
    "supporter",
    "factory_service",
    "trader",
    "analyst",
    "box",
)


@dataclass
class Services:
    """What the lifespan opens and the handlers use; one per app on ``app.state.services``."""

    settings: Settings
    accounts: AccountStore
    hasher: PasswordHash
    mailer: Mailer
    clock: Clock
    metrics: Metrics
    request_log: RequestLog
    plan_cache: PlanCache
    throttles: Throttles
    #: Plans and setpoints, in the service database.
    plans: PlanStore
    telemetry: TelemetryStore | None = None
    #: Price store, price jobs and weather feed (None: bundled data and estimates only).
    inputs: LiveInputs | None = None
    notifications: NotificationStore | None = None
    notifier: Notifier | None = None

    def store(self) -> TelemetryStore:
        """The telemetry store, or a 503 when this deployment runs without one."""
        if self.telemetry is None:
            raise ApiError(503, "store_unavailable", "no telemetry store is configured")
        return self.telemetry

    def now(self) -> datetime:
        return self.clock()


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

_user_bearer = HTTPBearer(
    scheme_name="UserToken", description="Access JWT from /v1/auth/token", auto_error=False
)
_box_bearer = HTTPBearer(
    scheme_name="BoxToken", description="Box token from pairing", auto_error=False
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_user_bearer)]
BoxBearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_box_bearer)]


def _guard(roles: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    unknown = set(roles) - set(ROLE_NAMES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        setattr(fn, ROLE_ATTRIBUTE, roles)
        return fn

    return mark


def _authenticated_user(request: Request, credentials: BearerDep, services: Services) -> User:
    if credentials is None:
        raise unauthorized()
    claims = decode_access_token(
        credentials.credentials, services.now(), services.settings.jwt_secret.get_secret_value()
    )
    if claims is None:
        raise unauthorized("access token invalid or expired")
    user = services.accounts.get_user(claims.user_id)
    if user is None:
        raise unauthorized("account no longer exists")
    if claims.epoch != user.token_epoch:
        raise unauthorized("signed out; sign in again")
    request.state.principal = user.id
    return user


def _account_guard(*roles: str) -> Callable[..., Awaitable[User]]:
    @_guard(roles)
    async def guard(request: Request, credentials: BearerDep, services: ServicesDep) -> User:
        user = _authenticated_user(request, credentials, services)
        if user.role not in roles:
            raise forbidden()
        return user

    return guard


@_guard(("public",))
async def public() -> None:
    """Marks a route that needs no credentials."""


any_account = _account_guard("customer", "factory_service", "trader", "analyst")
customer_account = _account_guard("customer")
site_lister = _account_guard("customer", "factory_service")
trader_account = _account_guard("trader")
trading_reader = _account_guard("trader", "analyst")

CurrentUser = Annotated[User, Depends(any_account)]
Customer = Annotated[User, Depends(customer_account)]
SiteLister = Annotated[User, Depends(site_lister)]
Trader = Annotated[User, Depends(trader_account)]
TradingReader = Annotated[User, Depends(trading_reader)]


def site_role(accounts: AccountStore, user: User, site: Site) -> SiteRoleName | None:
    """How ``user`` relates to ``site``: owner, supporter, factory_service, or None (no access)."""
    if user.role == "customer":
        if site.owner_id == user.id:
            return "owner"
        if accounts.get_grant(site.id, user.id) is not None:
            return "supporter"
    if user.role == "factory_service" and site.factory_service:
        return "factory_service"
    return None


@dataclass(frozen=True)
class SiteContext:
    """A site the caller may use, with the caller and the relation that admitted them."""

    site: Site
    user: User
    role: SiteRoleName


SiteIdPath = Annotated[str, Path(min_length=1, max_length=64, description="Site ID")]


def _site_guard(*roles: SiteRoleName) -> Callable[..., Awaitable[SiteContext]]:
    @_guard(roles)
    async def guard(
        request: Request, site_id: SiteIdPath, credentials: BearerDep, services: ServicesDep
    ) -> SiteContext:
        user = _authenticated_user(request, credentials, services)
        site = services.accounts.get_site(site_id)
        role = None if site is None else site_role(services.accounts, user, site)
        if site is None or role is None:
            raise not_found("site")
        if role not in roles:
            raise forbidden(f"the {role} of a site may not do this")
        return SiteContext(site=site, user=user, role=role)

    return guard


site_viewer = _site_guard("owner", "supporter", "factory_service")
site_owner = _site_guard("owner")
SiteViewer = Annotated[SiteContext, Depends(site_viewer)]
SiteOwner = Annotated[SiteContext, Depends(site_owner)]


@_guard(("box",))
async def current_box(request: Request, credentials: BoxBearerDep, services: ServicesDep) -> Box:
    """The paired, unrevoked box whose token is presented."""
    if credentials is None:
        raise unauthorized()
    box = services.accounts.box_by_token(token_digest(credentials.credentials))
    if box is None:
        raise unauthorized("box token invalid or revoked")
    request.state.principal = box.id
    return box


CurrentBox = Annotated[Box, Depends(current_box)]


def route_roles(dependant: Any) -> tuple[str, ...] | None:
    """The roles declared by the guard among a route's dependencies (searched depth-first)."""
    for sub in dependant.dependencies:
        roles = getattr(sub.call, ROLE_ATTRIBUTE, None)
        if roles is not None:
            return tuple(roles)
        found = route_roles(sub)
        if found is not None:
            return found
    return None


factory_service_account = _account_guard("factory_service")
FactoryService = Annotated[User, Depends(factory_service_account)]
