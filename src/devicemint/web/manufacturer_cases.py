"""The manufacturer application page: the case timeline, what is missing and who must act, and
the applicant's own steps: evidence, the MOU signed with the wallet, the stake sent from it.

The MOU is signed in the browser: the page asks for the EIP-712 typed data (the domain's, with
a fresh nonce and a deadline), the wallet signs it, and the signature comes back to the domain,
which recovers the signer. The stake is two transactions the wallet sends (approve the staking
token, then stake); the server prepares them and only reads the chain afterwards, when the
applicant asks the domain to confirm the stake.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData
from web3 import Web3
from web3.exceptions import TransactionNotFound

from devicemint.api.deps import Context
from devicemint.api.onboarding_routes import ApplicationId
from devicemint.errors import DevicemintError, UsageError
from devicemint.onboarding.evidence import EvidenceKind
from devicemint.onboarding.manufacturer import MouSignature, Stage
from devicemint.web.manufacturer_common import (
    PREFIX,
    Me,
    Step,
    accepted,
    acting,
    acting_json,
    attempt,
    evidence_rows,
    json_refusal,
    not_a_party,
    status_of,
    store,
    text,
)
from devicemint.web.pages import Viewer, uploads

router = APIRouter(include_in_schema=False)

TOKEN = 10**18
#: What an applicant may file with a manufacturer application.
CASE_KINDS = (EvidenceKind.MOU, EvidenceKind.DOCUMENT, EvidenceKind.ARCHIVE)
MOU_VALIDITY_SECONDS = 3600


_ORDER = (
    Stage.INTAKE_SUBMITTED,
    Stage.CHECKLIST_ISSUED,
    Stage.MOU_SIGNED,
    Stage.MOU_COUNTERSIGNED,
    Stage.STAKED,
    Stage.AUDITOR_APPROVED,
)


def steps(case: dict[str, Any], *, min_stake: int, auditor: str) -> list[Step]:
    """What is still missing, in order, with the party that must act for each step."""
    stage = Stage(case["stage"])
    if stage not in _ORDER:
        return []
    out: list[Step] = []
    for position, at in enumerate(_ORDER[_ORDER.index(stage) :]):
        now = position == 0
        if at is Stage.INTAKE_SUBMITTED:
            out.append(Step("Issue the audit checklist", "the foundation", now))
        elif at is Stage.CHECKLIST_ISSUED:
            out.append(Step("Sign the MOU with your wallet", "you", now))
        elif at is Stage.MOU_SIGNED:
            out.append(Step("Countersign the MOU", "the foundation", now))
        elif at is Stage.MOU_COUNTERSIGNED:
            out.append(
                Step(
                    f"Stake at least {min_stake / TOKEN:,.0f} tokens on chain, then confirm the stake",
                    "you",
                    now,
                )
            )
        elif at is Stage.STAKED:
            if case["auditor"] is None:
                out.append(Step("Assign the hardware & security auditor", "the foundation", now))
                now = False
            out.append(Step("Sign off the factory and security audit", auditor, now))
        else:
            out.append(Step("Grant the manufacturer licence on chain", "the foundation", now))
    return out


def _latest_mou(timeline: list[dict[str, Any]], me: Me) -> str | None:
    """The MOU the applicant filed last (the one its signature will cover)."""
    for event in reversed(timeline):
        for sha256 in event["evidence"]:
            if me.domain.evidence.exists(sha256) and me.domain.evidence.info(sha256).kind is EvidenceKind.MOU:
                return sha256
    return None


def _stake_figures(me: Me, applicant: str) -> dict[str, int]:
    contracts = me.runtime.contracts
    holder = Web3.to_checksum_address(applicant)
    licence = contracts.manufacturer_license
    return {
        "minimum": int(licence.functions.minStake().call()),
        "staked": int(licence.functions.stakeOf(holder).call()),
        "balance": int(contracts.staking_token.functions.balanceOf(holder).call()),
        "allowance": int(contracts.staking_token.functions.allowance(holder, licence.address).call()),
    }


def case_page(me: Me, application_id: int, *, status: int = 200, **problems: str) -> Response:
    """The application page; `problems` (upload, mou, stake) are shown beside their section."""
    flow = me.domain.manufacturers
    try:
        flow.require_readable(me.actor, application_id)
        case = flow.export(application_id)
    except DevicemintError as exc:
        return me.refuse_error(exc, f"Manufacturer application {application_id}")
    names = me.names()
    stake = _stake_figures(me, case["applicant"])
    return me.page(
        "manufacturer/application.html",
        status=status,
        case=case,
        names=names,
        waiting_for=flow.waiting_for[case["stage"]],
        steps=steps(
            case,
            min_stake=stake["minimum"],
            auditor=names(case["auditor"]) if case["auditor"] else "the assigned auditor",
        ),
        evidence=evidence_rows(me.domain, case["timeline"]),
        mou=_latest_mou(case["timeline"], me),
        stake=stake,
        shortfall=max(stake["minimum"] - stake["staked"], 0),
        token=TOKEN,
        kinds=[(k.value, accepted(k)) for k in CASE_KINDS],
        problems=problems,
        mine=me.is_me(case["applicant"]),
    )


@router.get("/applications/{application_id}", response_model=None)
def application(request: Request, ctx: Context, who: Viewer, application_id: ApplicationId) -> Response:
    me = acting(request, ctx, who)
    return case_page(me, application_id) if isinstance(me, Me) else me


@router.post("/applications/{application_id}/evidence", response_model=None)
async def add_evidence(
    request: Request, ctx: Context, who: Viewer, application_id: ApplicationId
) -> Response:
    me = acting(request, ctx, who)
    if not isinstance(me, Me):
        return me
    form = await request.form()
    return await run_in_threadpool(_add_evidence, me, application_id, form)


def _add_evidence(me: Me, application_id: int, form: FormData) -> Response:
    title = f"Manufacturer application {application_id}"
    if refused := not_a_party(me, me.domain.manufacturers, application_id, title):
        return refused
    files = uploads(form, "file")
    try:
        kind = EvidenceKind(text(form, "kind"))
        if kind not in CASE_KINDS:
            raise ValueError(kind)
    except ValueError:
        choices = ", ".join(k.value for k in CASE_KINDS)
        return case_page(me, application_id, status=422, upload=f"Kind: choose one of {choices}.")
    if not files:
        return case_page(me, application_id, status=422, upload="File: choose the file to upload.")

    def file_them() -> list[str]:
        stored = [store(me.domain, f, kind).sha256 for f in files]
        me.domain.manufacturers.add_evidence(
            me.actor, application_id, kind=kind, hashes=stored, note=text(form, "note").strip()[:500]
        )
        return stored

    outcome = attempt(file_them)
    if isinstance(outcome, DevicemintError):
        return case_page(me, application_id, status=status_of(outcome), upload=str(outcome))
    return RedirectResponse(f"{PREFIX}/applications/{application_id}#evidence", status_code=303)


# -- the MOU, signed in the browser ----------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MouIn(_Body):
    mou_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class MouSignatureIn(MouIn):
    nonce: int = Field(ge=0, le=2**256 - 1)
    deadline: int = Field(ge=0, le=2**64 - 1)
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


@router.post("/applications/{application_id}/mou/typed-data", response_model=None)
def mou_typed_data(
    request: Request, ctx: Context, who: Viewer, application_id: ApplicationId, body: MouIn
) -> JSONResponse:
    """The EIP-712 data the wallet signs: a fresh nonce (below 2^53, so a browser's JSON keeps
    it exact) and a deadline an hour away."""
    me = acting_json(request, ctx, who)
    if not isinstance(me, Me):
        return me
    nonce, deadline = secrets.randbelow(2**53), int(time.time()) + MOU_VALIDITY_SECONDS

    def prepare() -> dict[str, Any]:
        me.domain.manufacturers.require_readable(me.actor, application_id)
        return me.domain.manufacturers.mou_typed_data(
            application_id,
            mou_sha256=body.mou_sha256,
            signer=me.address,
            role="manufacturer",
            nonce=nonce,
            deadline=deadline,
        )

    data = attempt(prepare)
    if isinstance(data, DevicemintError):
        return json_refusal(status_of(data), str(data))
    data["message"]["mouSha256"] = "0x" + body.mou_sha256
    return JSONResponse({"typed_data": data, "nonce": nonce, "deadline": deadline})


@router.post("/applications/{application_id}/mou/signature", response_model=None)
def mou_signature(
    request: Request, ctx: Context, who: Viewer, application_id: ApplicationId, body: MouSignatureIn
) -> JSONResponse:
    me = acting_json(request, ctx, who)
    if not isinstance(me, Me):
        return me
    signed = MouSignature(body.mou_sha256, body.nonce, body.deadline, body.signature)
    outcome = attempt(lambda: me.domain.manufacturers.sign_mou(me.actor, application_id, signed))
    if isinstance(outcome, DevicemintError):
        return json_refusal(status_of(outcome), str(outcome))
    return JSONResponse({"location": f"{PREFIX}/applications/{application_id}#mou"})


# -- the stake, sent from the wallet --------------------------------------------------------------


@router.get("/applications/{application_id}/stake/transactions", response_model=None)
def stake_transactions(
    request: Request, ctx: Context, who: Viewer, application_id: ApplicationId
) -> JSONResponse:
    """The approve and stake calls that bring the applicant's stake up to the minimum."""
    me = acting_json(request, ctx, who)
    if not isinstance(me, Me):
        return me
    outcome = attempt(lambda: _stake_calls(me, application_id))
    if isinstance(outcome, DevicemintError):
        return json_refusal(status_of(outcome), str(outcome))
    return JSONResponse({"transactions": outcome})


def _stake_calls(me: Me, application_id: int) -> list[dict[str, str]]:
    flow = me.domain.manufacturers
    flow.require_readable(me.actor, application_id)
    case = flow.export(application_id)
    if not me.is_me(case["applicant"]):
        raise UsageError(f"only the applicant {case['applicant']} stakes for application {application_id}")
    figures = _stake_figures(me, case["applicant"])
    shortfall = figures["minimum"] - figures["staked"]
    if shortfall <= 0:
        return []
    if figures["balance"] < shortfall:
        raise UsageError(
            f"your balance is {figures['balance'] / TOKEN:,.0f} tokens; staking needs "
            f"{shortfall / TOKEN:,.0f}. Get the rest of the staking token first"
        )
    contracts = me.runtime.contracts
    licence = contracts.manufacturer_license
    calls: list[dict[str, str]] = []
    if figures["allowance"] < shortfall:
        approve = contracts.staking_token.functions.approve(licence.address, shortfall)
        calls.append(
            {
                "to": contracts.staking_token.address,
                "data": approve._encode_transaction_data(),
                "what": f"approve {shortfall / TOKEN:,.0f} tokens for the licence contract",
            }
        )
    stake = licence.functions.stake(shortfall)
    calls.append(
        {
            "to": licence.address,
            "data": stake._encode_transaction_data(),
            "what": f"stake {shortfall / TOKEN:,.0f} tokens",
        }
    )
    return calls


@router.post("/applications/{application_id}/stake-confirmation", response_model=None)
def confirm_stake(request: Request, ctx: Context, who: Viewer, application_id: ApplicationId) -> Response:
    me = acting(request, ctx, who)
    if not isinstance(me, Me):
        return me

    def confirm() -> int:
        flow = me.domain.manufacturers
        flow.require_readable(me.actor, application_id)
        return flow.confirm_stake(me.actor, application_id)

    outcome = attempt(confirm)
    if isinstance(outcome, DevicemintError):
        return case_page(me, application_id, status=status_of(outcome), stake=str(outcome))
    return RedirectResponse(f"{PREFIX}/applications/{application_id}#stake", status_code=303)


@router.get("/transactions/{tx_hash}", response_model=None)
def transaction_status(
    request: Request, ctx: Context, who: Viewer, tx_hash: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]
) -> JSONResponse:
    """Whether a transaction the wallet sent is mined yet, for the scripts to wait on."""
    me = acting_json(request, ctx, who)
    if not isinstance(me, Me):
        return me
    try:
        receipt = me.runtime.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    except TransactionNotFound:
        return JSONResponse({"status": "pending"})
    status = "confirmed" if receipt["status"] == 1 else "reverted"
    return JSONResponse({"status": status, "block": receipt["blockNumber"]})
