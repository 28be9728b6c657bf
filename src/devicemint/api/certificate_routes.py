"""Certificates over HTTP: public reads (a certificate's view, its verification, filtered lists
with cursor pagination, all with ETags; anonymous clients are rate limited), and lifecycle
records relayed from attestations their parties signed (EIP-712, nonce, deadline).

The server relays with its own key and pays the gas; the contract checks the signature, so
the server can relay nothing its parties did not sign. Transfers are not relayed: ERC-721 has
no signed transfer, so the owner sends its own `transferFrom` (or `devicemint device transfer`).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from devicemint.api.deps import SESSION_COOKIE, ApiError, Context, optional_principal
from devicemint.api.licence_routes import Chain
from devicemint.api.verify_fast_path import CACHE_CONTROL
from devicemint.chain.tx import TxSender
from devicemint.devices.certificates import STANDINGS, Answer, Certificates
from devicemint.devices.lifecycle import (
    ATTESTATION_SECONDS,
    Attestation,
    Lifecycle,
    Permission,
    Stage,
    lifecycle_typed_data,
    token_id,
)
from devicemint.errors import UsageError

router = APIRouter(tags=["certificates"])

DeviceQuery = Annotated[
    str, Path(min_length=1, max_length=80, description="0x address, token id, serial number or IMEI")
]


# -- rate limiting and caching ----------------------------------------------------------------------


def certificates(ctx: Context) -> Certificates:
    if ctx.certificates is None:
        raise ApiError(503, "not_configured", "this server has no chain deployment")
    return ctx.certificates


Registry = Annotated[Certificates, Depends(certificates)]


async def anonymous_limit(request: Request, ctx: Context) -> None:
    """Anonymous clients share a budget per address (the `api_anonymous_rate_limit` setting);
    signed-in people and API keys are not limited here. Async, and the credential checked only
    when one is presented, so an anonymous read never waits for a worker thread."""
    if ctx.rate_limiter is None:
        return
    credentials = (
        request.headers.get("x-api-key"),
        request.headers.get("authorization"),
        request.cookies.get(SESSION_COOKIE),
    )
    if any(credentials):
        bearer = request.headers.get("authorization", "")
        token = bearer.removeprefix("Bearer ").strip() if bearer.startswith("Bearer ") else None
        principal = await run_in_threadpool(optional_principal, ctx, credentials[0], token or credentials[2])
        if principal is not None:
            return
    client = request.client.host if request.client else "unknown"
    if not ctx.rate_limiter.hit(client):
        raise ApiError(429, "rate_limited", ctx.rate_limiter.refusal(client))


Limited = Depends(anonymous_limit)


def _answer(request: Request, body: bytes, etag: str) -> Response:
    """JSON with a strong ETag; 304 when the client already holds this exact body."""
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _tagged(request: Request, data: Any) -> Response:
    answer = Answer.of(data)
    return _answer(request, answer.body, answer.etag)


# -- public reads -----------------------------------------------------------------------------------


@router.get(
    "/certificates",
    summary="Certificates filtered by manufacturer, licence, batch or standing (cursor pagination)",
    dependencies=[Limited],
)
def list_certificates(
    request: Request,
    registry: Registry,
    manufacturer: Annotated[
        str | None, Query(max_length=42, description="Manufacturer licence id or holder 0x address")
    ] = None,
    licence: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Device licence id")] = None,
    batch: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="On-chain batch id")] = None,
    standing: Annotated[Literal["genuine", "not_in_good_standing", "not_genuine"] | None, Query()] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    page = registry.page(
        manufacturer=manufacturer, licence=licence, batch=batch, standing=standing, cursor=cursor, limit=limit
    )
    return _tagged(request, {"items": page.items, "next_cursor": page.next_cursor, "standings": STANDINGS})


@router.get(
    "/certificates/{query}",
    summary="A certificate: document, on-chain state, lifecycle timeline, standing and proof",
    dependencies=[Limited],
)
def certificate_view(request: Request, registry: Registry, query: DeviceQuery) -> Response:
    return _tagged(request, registry.view(query))


@router.get(
    "/certificates/{query}/verify",
    summary="Is this device genuine, licensed and in good standing? (every check, as the CLI's verify)",
    dependencies=[Limited],
)
async def verify_certificate(request: Request, registry: Registry, query: DeviceQuery) -> Response:
    # An unchanged device is answered from the cache in the event loop; a new or changed one is
    # verified in a worker thread.
    answer = registry.cached(query)
    if answer is None:
        answer = await run_in_threadpool(registry.verification, query)
    return _answer(request, answer.body, answer.etag)


# -- lifecycle records, relayed ---------------------------------------------------------------------

Action = Literal["authorize", "revoke", "factory-reset", "firmware-update", "end-of-life"]
_TYPED = {
    "authorize": "Authorize",
    "revoke": "RevokeAuthorization",
    "factory-reset": "FactoryReset",
    "firmware-update": "FirmwareUpdate",
    "end-of-life": "EndOfLife",
}


class RecordFields(BaseModel):
    """The fields of a lifecycle record; which are needed depends on the action."""

    model_config = ConfigDict(extra="forbid")

    grantee: str | None = Field(None, description="authorize, revoke: the organisation's 0x address")
    permissions: list[Literal["read_data", "manage", "ota", "factory_reset"]] | None = Field(
        None, description="authorize"
    )
    expires_at: int | None = Field(None, ge=1, le=2**63 - 1, description="authorize: unix time")
    from_version: str | None = Field(None, max_length=64, description="firmware-update")
    to_version: str | None = Field(None, max_length=64, description="firmware-update")
    image_sha256: str | None = Field(None, pattern=r"^(0x)?[0-9a-fA-F]{64}$", description="firmware-update")
    stage: Literal["decommissioned", "recycled", "disposed"] | None = Field(None, description="end-of-life")
    evidence_sha256: str | None = Field(None, pattern=r"^(0x)?[0-9a-fA-F]{64}$", description="end-of-life")


class AttestationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signer: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    deadline: int = Field(ge=0, le=2**63 - 1)
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


class RecordIn(RecordFields):
    attestation: AttestationIn


def _bytes32(value: str | None, name: str) -> bytes:
    if value is None:
        raise UsageError(f"{name} is required for this action")
    return bytes.fromhex(value.removeprefix("0x"))


def _need(value: Any, name: str) -> Any:
    if value is None:
        raise UsageError(f"{name} is required for this action")
    return value


def _message(action: str, device: str, fields: RecordFields) -> dict[str, Any]:
    """The EIP-712 message fields (before nonce and deadline) of `action` on `device`."""
    token = token_id(device)
    if action == "authorize":
        permissions = Permission.parse(",".join(_need(fields.permissions, "permissions")))
        return {
            "tokenId": token,
            "grantee": _need(fields.grantee, "grantee"),
            "permissions": int(permissions),
            "expiresAt": _need(fields.expires_at, "expires_at"),
        }
    if action == "revoke":
        return {"tokenId": token, "grantee": _need(fields.grantee, "grantee")}
    if action == "factory-reset":
        return {"tokenId": token}
    if action == "firmware-update":
        return {
            "tokenId": token,
            "fromVersion": _need(fields.from_version, "from_version"),
            "toVersion": _need(fields.to_version, "to_version"),
            "imageHash": _bytes32(fields.image_sha256, "image_sha256"),
        }
    stage = Stage[_need(fields.stage, "stage").upper()]
    return {
        "tokenId": token,
        "stage": int(stage),
        "evidenceHash": _bytes32(fields.evidence_sha256, "evidence_sha256"),
    }


@router.post(
    "/certificates/{query}/lifecycle/{action}/typed-data",
    summary="The EIP-712 typed data a party signs for a lifecycle record (its next nonce, a deadline)",
)
def lifecycle_typed_data_route(
    chain: Chain,
    registry: Registry,
    query: DeviceQuery,
    action: Action,
    fields: RecordFields,
    signer: str = Query(
        pattern=r"^0x[0-9a-fA-F]{40}$", description="Who will sign: owner, device or manufacturer"
    ),
) -> dict[str, Any]:
    device = registry.address_of(query)
    message = _message(action, device, fields)
    nonce = int(chain.contracts.device_certificate.functions.nonces(signer).call())
    message |= {"nonce": nonce, "deadline": int(time.time()) + ATTESTATION_SECONDS}
    typed = lifecycle_typed_data(chain.contracts, _TYPED[action], message)
    # bytes as 0x hex; integers as decimal strings, which JSON.parse in a browser cannot round
    # (a token id is ~2**160) and wallets and eth_account accept for uint types.
    typed["message"] = {
        k: "0x" + v.hex() if isinstance(v, bytes) else str(v) if isinstance(v, int) else v
        for k, v in typed["message"].items()
    }
    return typed


@router.post(
    "/certificates/{query}/lifecycle/{action}",
    summary="Relay a lifecycle record its party signed; the contract checks who may attest it",
)
def relay_lifecycle(
    ctx: Context, chain: Chain, registry: Registry, query: DeviceQuery, action: Action, record: RecordIn
) -> dict[str, Any]:
    relayer: TxSender | None = ctx.foundation_signer
    if relayer is None:
        raise ApiError(503, "not_configured", "this server holds no key to relay transactions with")
    device = registry.address_of(query)
    message = _message(action, device, record)
    signed = record.attestation
    attestation = Attestation(signed.signer, signed.deadline, bytes.fromhex(signed.signature[2:]))
    life = Lifecycle(contracts=chain.contracts, sender=relayer)
    receipt = life.record(_TYPED[action], message, attestation)
    return {
        "device": device,
        "action": action,
        "attested_by": signed.signer,
        "tx_hash": receipt["transactionHash"].to_0x_hex(),
        "block_number": receipt["blockNumber"],
    }
