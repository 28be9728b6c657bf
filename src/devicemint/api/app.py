"""The FastAPI application, built from its settings and backends (no global state)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from devicemint.api.auth_routes import router as auth_router
from devicemint.api.certificate_routes import router as certificate_router
from devicemint.api.deps import ApiContext, ApiError
from devicemint.api.errors import answer_for
from devicemint.api.licence_routes import router as licence_router
from devicemint.api.onboarding_routes import router as onboarding_router
from devicemint.api.pki_routes import router as pki_router
from devicemint.api.rate_limit import RateLimiter
from devicemint.api.verify_fast_path import VerifyFastPath
from devicemint.api.webhook_routes import router as webhook_router
from devicemint.auth.roles import RoleResolver
from devicemint.auth.siwe import NONCE_TTL, SESSION_TTL
from devicemint.chain.tx import TxSender
from devicemint.config import Settings
from devicemint.devices.certificates import Certificates
from devicemint.errors import DevicemintError
from devicemint.onboarding.service import Onboarding
from devicemint.runtime import Runtime
from devicemint.web.pages import install as install_web


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ErrorOut(BaseModel):
    """The body of every refusal, whatever its status (see `_install_error_handlers`)."""

    error: str = Field(description="A stable code: invalid_request, unauthenticated, forbidden, ...")
    detail: str = Field(description="What was wrong, written for the person who sent it.")


# Documented for every route, in place of FastAPI's default 422 body (which this API never sends).
_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    "4XX": {"model": ErrorOut, "description": "Refused: the error code and the reason."},
}


def create_app(
    *,
    settings: Settings,
    sessions_factory: sessionmaker[Session],
    role_resolver: RoleResolver,
    siwe_domain: str | None = None,
    siwe_uri: str | None = None,
    clock: Callable[[], datetime] = _utc_now,
    session_ttl: timedelta = SESSION_TTL,
    nonce_ttl: timedelta = NONCE_TTL,
    runtime: Runtime | None = None,
    onboarding: Onboarding | None = None,
    foundation_signer: TxSender | None = None,
    minter_signer: TxSender | None = None,
) -> FastAPI:
    """The API app.

    `siwe_domain` is the EIP-4361 domain sign-in messages must name (default: host[:port] of
    `settings.public_base_url`); `siwe_uri`, when given, is the origin their URI must be on.
    `clock` is injectable so tests can move time.
    """
    app = FastAPI(
        title="devicemint", version="0.1.0", openapi_url="/openapi.json", responses=_ERROR_RESPONSES
    )
    app.state.devicemint = ApiContext(
        settings=settings,
        sessions=sessions_factory,
        role_resolver=role_resolver,
        siwe_domain=siwe_domain or urlsplit(settings.public_base_url).netloc,
        siwe_uri=siwe_uri,
        chain_id=settings.chain_id,
        clock=clock,
        session_ttl=session_ttl,
        nonce_ttl=nonce_ttl,
        secure_cookies=settings.public_base_url.startswith("https://"),
        runtime=runtime,
        onboarding=onboarding,
        foundation_signer=foundation_signer,
        minter_signer=minter_signer,
        certificates=Certificates.of(runtime) if runtime is not None else None,
        rate_limiter=RateLimiter(
            rate=settings.api_anonymous_rate_limit, storage_url=settings.rate_limit_storage
        ),
    )
    _install_error_handlers(app)
    ctx = app.state.devicemint
    if ctx.certificates is not None:
        app.add_middleware(VerifyFastPath, certificates=ctx.certificates, rate_limiter=ctx.rate_limiter)
    app.include_router(auth_router)
    app.include_router(onboarding_router)
    app.include_router(licence_router)
    app.include_router(pki_router)
    app.include_router(certificate_router)
    app.include_router(webhook_router)
    install_web(app)
    return app


def _error(status: int, error: str, detail: object) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error as JSON `{"error": code, "detail": message}`; bad input is never a 500."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.error, exc.detail)

    @app.exception_handler(DevicemintError)
    async def domain_error(_: Request, exc: DevicemintError) -> JSONResponse:
        status, code = answer_for(exc)
        return _error(status, code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Location and reason only: the input itself may be a secret.
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
            for err in exc.errors()
        ]
        return _error(422, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, code.get(exc.status_code, "error"), exc.detail)
