"""FastAPI dependencies: who is calling, and may they.

Credentials, in this order, the first one present deciding (a bad one is refused, never
skipped): `X-API-Key: dmk_...` (automation), `Authorization: Bearer <session token>`, the
session cookie set at sign-in. A person signed in acts with their roles; an API key acts with
its owner's roles but only on routes that name a scope the key holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from devicemint.api.rate_limit import RateLimiter
from devicemint.auth.api_keys import ApiKeyPrincipal, Scope, authenticate_api_key
from devicemint.auth.roles import Role, RoleResolver
from devicemint.auth.siwe import session_address
from devicemint.chain.tx import TxSender
from devicemint.config import Settings
from devicemint.db.session import transaction
from devicemint.devices.certificates import Certificates
from devicemint.onboarding.service import Onboarding
from devicemint.runtime import Runtime

SESSION_COOKIE = "devicemint_session"


class ApiError(Exception):
    """An error answered as JSON `{"error": code, "detail": message}` with `status`."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


def unauthenticated(detail: str) -> ApiError:
    return ApiError(401, "unauthenticated", detail)


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "forbidden", detail)


@dataclass(frozen=True, kw_only=True)
class ApiContext:
    """What the routes need, built once by `create_app` (no global state)."""

    settings: Settings
    sessions: sessionmaker[Session]
    role_resolver: RoleResolver
    siwe_domain: str
    siwe_uri: str | None
    chain_id: int
    clock: Callable[[], datetime]
    session_ttl: timedelta
    nonce_ttl: timedelta
    secure_cookies: bool
    # The chain deployment and the domains over it; None on a server without one.
    runtime: Runtime | None = None
    onboarding: Onboarding | None = None
    # Keys the server signs with, only for the party that owns them (see each route).
    foundation_signer: TxSender | None = None
    minter_signer: TxSender | None = None
    # Public certificate reads (over the indexer's database) and the anonymous clients' limit.
    certificates: Certificates | None = None
    rate_limiter: RateLimiter | None = None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.sessions) as session:
            yield session


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.devicemint
    return ctx


Context = Annotated[ApiContext, Depends(context)]


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is calling: a signed-in person, or an API key acting for its owner."""

    address: str
    roles: frozenset[Role]
    api_key: ApiKeyPrincipal | None = None

    @property
    def via(self) -> Literal["session", "api_key"]:
        return "session" if self.api_key is None else "api_key"


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="A scoped API key (dmk_...).")
_bearer = HTTPBearer(auto_error=False, description="A session token from POST /auth/sign-in.")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="The session cookie set at sign-in."
)


def session_token(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    cookie: Annotated[str | None, Security(_cookie)],
) -> str | None:
    """The session token the caller presented, if any (bearer first, then cookie)."""
    if bearer is not None:
        return bearer.credentials
    return cookie or None


def optional_principal(
    ctx: Context,
    api_key: Annotated[str | None, Security(_api_key_header)],
    token: Annotated[str | None, Depends(session_token)],
) -> Principal | None:
    """The caller, or None for an anonymous one; a credential that does not check out is a 401."""
    now = ctx.clock()
    if api_key is not None:
        with ctx.transaction() as session:
            key = authenticate_api_key(session, api_key, now=now)
        if key is None:
            raise unauthenticated("the API key is unknown or revoked")
        return Principal(address=key.owner, roles=ctx.role_resolver.roles_of(key.owner), api_key=key)
    if token is not None:
        with ctx.transaction() as session:
            address = session_address(session, token, now=now)
        if address is None:
            raise unauthenticated("the session has expired or was ended; sign in again")
        return Principal(address=address, roles=ctx.role_resolver.roles_of(address))
    return None


def current_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise unauthenticated("sign in (POST /auth/sign-in) or present an API key (X-API-Key)")
    return principal


def require_session(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """Only a person signed in (API keys cannot manage keys or sessions)."""
    if principal.api_key is not None:
        raise forbidden("this needs a person signed in with Ethereum; an API key cannot do it")
    return principal


def _role_names(roles: tuple[Role, ...]) -> str:
    return " or ".join(f"the {r.value}" if r is Role.FOUNDATION else r.value for r in roles)


def require_role(*roles: Role, scope: Scope | None = None) -> Callable[[Principal], Principal]:
    """A dependency admitting callers with one of `roles`.

    API keys are admitted only where `scope` is named and the key holds it.
    """
    if not roles:
        raise ValueError("require_role needs at least one role")
    wanted = frozenset(roles)

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.api_key is not None:
            if scope is None:
                raise forbidden("this needs a person signed in with Ethereum; an API key cannot do it")
            if scope not in principal.api_key.scopes:
                raise forbidden(f"this API key lacks the scope {scope.value!r}")
        if not principal.roles & wanted:
            raise forbidden(f"only {_role_names(roles)} may do this")
        return principal

    return dependency


def require_scope(scope: Scope) -> Callable[[Principal], Principal]:
    """A dependency admitting any signed-in person, and API keys holding `scope`."""

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.api_key is not None and scope not in principal.api_key.scopes:
            raise forbidden(f"this API key lacks the scope {scope.value!r}")
        return principal

    return dependency
