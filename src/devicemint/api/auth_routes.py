"""/auth: Sign-In with Ethereum, sessions, and the caller's API keys."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, Field

from devicemint.api.deps import (
    SESSION_COOKIE,
    Context,
    Principal,
    current_principal,
    require_session,
    session_token,
)
from devicemint.auth.api_keys import KEY_PREFIX, Scope, create_api_key, list_api_keys, revoke_api_key
from devicemint.auth.roles import Role
from devicemint.auth.siwe import (
    MAX_MESSAGE_LENGTH,
    create_session,
    issue_nonce,
    revoke_session,
    verify_sign_in,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/auth", tags=["auth"])


class NonceOut(BaseModel):
    """A nonce to put in the EIP-4361 message, with what the message must say to be accepted."""

    nonce: str
    expires_at: datetime
    domain: str
    uri: str | None
    chain_id: int


class SignIn(BaseModel):
    message: str = Field(
        max_length=MAX_MESSAGE_LENGTH, description="The EIP-4361 message, exactly as signed."
    )
    signature: str = Field(max_length=200, description="The EIP-191 signature of the message, 0x-hex.")


class SessionOut(BaseModel):
    token: str = Field(description="Bearer token of the session; also set as an HttpOnly cookie.")
    address: str
    expires_at: datetime


class Me(BaseModel):
    address: str
    roles: list[Role]
    via: Literal["session", "api_key"]
    scopes: list[Scope] | None = Field(description="The API key's scopes; null for a person signed in.")


class NewApiKey(BaseModel):
    scopes: list[Scope] = Field(min_length=1)


class ApiKeyCreated(BaseModel):
    id: str
    key: str = Field(description="The key itself: shown this once, store it now.")
    prefix: str
    scopes: list[Scope]


class ApiKeyOut(BaseModel):
    id: str
    prefix: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


@router.get("/nonce", response_model=NonceOut)
def get_nonce(ctx: Context) -> NonceOut:
    with ctx.transaction() as session:
        nonce, expires_at = issue_nonce(session, now=ctx.clock(), ttl=ctx.nonce_ttl)
    return NonceOut(
        nonce=nonce, expires_at=expires_at, domain=ctx.siwe_domain, uri=ctx.siwe_uri, chain_id=ctx.chain_id
    )


@router.post("/sign-in", response_model=SessionOut)
def sign_in(body: SignIn, ctx: Context, response: Response) -> SessionOut:
    now = ctx.clock()
    with ctx.transaction() as session:
        address = verify_sign_in(
            session,
            body.message,
            body.signature,
            domain=ctx.siwe_domain,
            uri=ctx.siwe_uri,
            chain_id=ctx.chain_id,
            now=now,
        )
        token = create_session(session, address, now=now, ttl=ctx.session_ttl)
    expires_at = now + ctx.session_ttl
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ctx.session_ttl.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=ctx.secure_cookies,
        path="/",
    )
    log.info("signed in: %s", address)
    return SessionOut(token=token, address=address, expires_at=expires_at)


@router.post("/sign-out", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(
    ctx: Context,
    _: Annotated[Principal, Depends(require_session)],
    token: Annotated[str | None, Depends(session_token)],
) -> Response:
    if token is not None:
        with ctx.transaction() as session:
            revoke_session(session, token, now=ctx.clock())
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=ctx.secure_cookies
    )
    return response


@router.get("/me", response_model=Me)
def me(principal: Annotated[Principal, Depends(current_principal)]) -> Me:
    return Me(
        address=principal.address,
        roles=sorted(principal.roles),
        via=principal.via,
        scopes=sorted(principal.api_key.scopes) if principal.api_key else None,
    )


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
def new_api_key(
    body: NewApiKey, ctx: Context, principal: Annotated[Principal, Depends(require_session)]
) -> ApiKeyCreated:
    with ctx.transaction() as session:
        key_id, key = create_api_key(session, owner=principal.address, scopes=body.scopes, now=ctx.clock())
    log.info("API key %s created for %s", key_id, principal.address)
    return ApiKeyCreated(id=key_id, key=key, prefix=f"{KEY_PREFIX}_{key_id}", scopes=sorted(set(body.scopes)))


@router.get("/api-keys", response_model=list[ApiKeyOut])
def my_api_keys(ctx: Context, principal: Annotated[Principal, Depends(require_session)]) -> list[ApiKeyOut]:
    with ctx.transaction() as session:
        keys = list_api_keys(session, owner=principal.address)
    return [
        ApiKeyOut(
            id=k.id,
            prefix=k.prefix,
            scopes=list(k.scopes),
            created_at=k.created_at,
            revoked_at=k.revoked_at,
            last_used_at=k.last_used_at,
        )
        for k in keys
    ]


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_api_key(
    key_id: str, ctx: Context, principal: Annotated[Principal, Depends(require_session)]
) -> Response:
    with ctx.transaction() as session:
        revoke_api_key(
            session,
            key_id=key_id,
            by=principal.address,
            by_foundation=Role.FOUNDATION in principal.roles,
            now=ctx.clock(),
        )
    log.info("API key %s revoked by %s", key_id, principal.address)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
