"""Sign-In with Ethereum in the browser, the portal's front door, and the development wallet.

The browser asks for a message (`POST /sign-in/message`: this server's EIP-4361 text with a fresh
nonce and the address checksummed), has the wallet sign it, and posts both to the API's
`POST /auth/sign-in`, which sets the session cookie. The wallet is the injected one
(`window.ethereum`, EIP-1193); on the local chain 31337 only, a development wallet signs with the
dev accounts' keys here, so a demo or a test needs no browser extension. It is marked as such on
every page, and does not exist on any other chain.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from siwe import SiweMessage
from siwe.siwe import ISO8601Datetime
from web3 import Web3
from web3.exceptions import ContractLogicError

from devicemint.api.deps import SESSION_COOKIE, ApiError, Context
from devicemint.auth.roles import Role
from devicemint.auth.siwe import issue_nonce, revoke_session
from devicemint.chain import keys
from devicemint.chain.tx import TxSender, explain_revert
from devicemint.web.pages import Viewer, render, sign_in_first

router = APIRouter(include_in_schema=False)

#: The parties the development wallet offers, as the demo casts them.
DEV_PARTIES: tuple[tuple[keys.DevRole, str], ...] = (
    (keys.DevRole.FOUNDATION, "Foundation"),
    (keys.DevRole.MANUFACTURER, "Manufacturer (Acme Telematics)"),
    (keys.DevRole.AUDITOR, "Hardware & security auditor (Prüfwerk AG)"),
    (keys.DevRole.CX_AUDITOR, "CX auditor (Northwind UX Lab)"),
    (keys.DevRole.COMMITTEE_1, "Committee member 1"),
    (keys.DevRole.COMMITTEE_2, "Committee member 2"),
    (keys.DevRole.COMMITTEE_3, "Committee member 3"),
    (keys.DevRole.OWNER, "Device owner"),
)

#: Where each role's work is, in the order the portal lists them.
ROLE_PAGES: tuple[tuple[Role, str, str], ...] = (
    (Role.FOUNDATION, "/portal/foundation", "Foundation dashboard"),
    (Role.COMMITTEE, "/portal/committee", "Committee: open proposals"),
    (Role.AUDITOR, "/portal/auditor", "Auditor: your queue"),
    (Role.MANUFACTURER, "/portal/manufacturer", "Manufacturer: applications and batches"),
)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would let a link send people elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/portal"


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, ctx: Context, who: Viewer, next: str | None = None) -> HTMLResponse:
    parties = [(keys.dev_account(int(role)).address, label) for role, label in DEV_PARTIES]
    return render(
        request,
        ctx,
        who,
        "sign_in.html",
        next=_safe_next(next),
        parties=parties if ctx.settings.is_local_chain else [],
    )


class MessageIn(BaseModel):
    address: str = Field(max_length=42, description="The wallet's account, 0x-hex (any case).")


@router.post("/sign-in/message")
def sign_in_message(body: MessageIn, request: Request, ctx: Context) -> dict[str, str]:
    """The EIP-4361 message for `address` to sign: this server's domain, URI, chain and a fresh nonce."""
    if not Web3.is_address(body.address):
        raise ApiError(422, "invalid_request", f"{body.address!r} is not a 0x address of 40 hex digits")
    now = ctx.clock()
    with ctx.transaction() as session:
        nonce, expires_at = issue_nonce(session, now=now, ttl=ctx.nonce_ttl)
    message = SiweMessage(
        domain=ctx.siwe_domain,
        address=Web3.to_checksum_address(body.address),
        statement="Sign in to the devicemint portal.",
        uri=ctx.siwe_uri or str(request.base_url).rstrip("/"),
        version="1",
        chain_id=ctx.chain_id,
        nonce=nonce,
        issued_at=ISO8601Datetime.from_datetime(now),
        expiration_time=ISO8601Datetime.from_datetime(expires_at),
    )
    return {"message": message.prepare_message()}


@router.post("/sign-out")
def sign_out(ctx: Context, request: Request) -> RedirectResponse:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with ctx.transaction() as session:
            revoke_session(session, token, now=ctx.clock())
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=ctx.secure_cookies
    )
    return response


@router.get("/portal", response_class=HTMLResponse, response_model=None)
def portal(request: Request, ctx: Context, who: Viewer) -> HTMLResponse | RedirectResponse:
    if who is None:
        return sign_in_first(request)
    pages = [(href, label) for role, href, label in ROLE_PAGES if role in who.roles]
    return render(request, ctx, who, "portal/home.html", pages=pages)


# -- the development wallet (chain 31337 only) --------------------------------------------------------


class WalletRequest(BaseModel):
    """An EIP-1193 request, as the page's wallet shim forwards it."""

    address: str = Field(max_length=42)
    method: Literal[
        "eth_requestAccounts",
        "eth_accounts",
        "eth_chainId",
        "personal_sign",
        "eth_signTypedData_v4",
        "eth_sendTransaction",
    ]
    params: list[Any] = Field(default_factory=list, max_length=4)


def _dev_account(ctx: Context, address: str) -> LocalAccount:
    if not ctx.settings.is_local_chain:
        raise ApiError(404, "not_found", "the development wallet exists only on the local chain 31337")
    for role, _ in DEV_PARTIES:
        account = keys.dev_account(int(role))
        if account.address.lower() == address.lower():
            return account
    raise ApiError(403, "forbidden", f"{address} is not one of the development wallet's accounts")


@router.post("/dev-wallet")
def dev_wallet(body: WalletRequest, ctx: Context) -> JSONResponse:
    """Answer one wallet request with a dev account's key; JSON-RPC-like `{"result": ...}`."""
    account = _dev_account(ctx, body.address)
    try:
        return JSONResponse({"result": _answer(ctx, account, body.method, body.params)})
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ApiError(422, "invalid_request", f"{body.method}: {exc}") from exc


def _answer(ctx: Context, account: LocalAccount, method: str, params: list[Any]) -> Any:
    if method in ("eth_requestAccounts", "eth_accounts"):
        return [account.address]
    if method == "eth_chainId":
        return hex(ctx.chain_id)
    if method == "personal_sign":
        message = bytes.fromhex(str(params[0]).removeprefix("0x"))
        return account.sign_message(encode_defunct(primitive=message)).signature.to_0x_hex()
    if method == "eth_signTypedData_v4":
        data = params[1] if isinstance(params[1], dict) else json.loads(params[1])
        return account.sign_message(encode_typed_data(full_message=data)).signature.to_0x_hex()
    return _send(ctx, account, params[0])


def _send(ctx: Context, account: LocalAccount, tx: dict[str, Any]) -> str:
    """eth_sendTransaction: estimate (a revert is refused with its reason), sign, send, wait."""
    if ctx.runtime is None:
        raise ApiError(503, "not_configured", "this server has no chain")
    sender = TxSender(w3=ctx.runtime.w3, account=account, chain_id=ctx.chain_id)
    call = {"from": account.address, "to": Web3.to_checksum_address(tx["to"]), "data": tx.get("data", "0x")}
    try:
        gas = int(ctx.runtime.w3.eth.estimate_gas(call) * 1.25) + 10_000  # type: ignore[arg-type]
    except ContractLogicError as exc:
        raise ApiError(409, "refused_by_contract", f"the contract refused: {explain_revert(exc)}") from exc
    data = bytes.fromhex(str(call["data"]).removeprefix("0x"))
    signed = sender.sign_data(to=call["to"], data=data, nonce=sender.next_nonce(), gas=gas)
    sender.broadcast(signed)
    sender.wait(signed.tx_hash)
    return signed.tx_hash
