"""The foundation's portal: every case by stage, the actions the foundation takes on each, the
approved auditors, the committee, and the licences (suspend, reinstate, revoke, slash).

What goes on chain is signed by the server's foundation key, and only when the foundation itself
is signed in (as the API's routes do); the MOU countersignature is the one act signed in the
foundation's wallet (EIP-712), through `static/committee.js`. Dangerous licence actions (revoke,
slash, a device licence's revocation proposal) need the licence id typed again and a reason,
whose SHA-256 is what the chain records.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from web3 import Web3

from devicemint.api.deps import Context, Principal
from devicemint.api.licence_routes import LicenceId
from devicemint.api.onboarding_routes import ApplicationId, server_key
from devicemint.auth.roles import Role
from devicemint.chain.tx import TxSender
from devicemint.licensing.registry import (
    DeviceLicenceStatus,
    ManufacturerStatus,
    read_device_licence,
    read_manufacturer_licence,
)
from devicemint.licensing.revocation import revoke_manufacturer
from devicemint.onboarding.auditors import AuditScope
from devicemint.onboarding.device import Stage as DeviceStage
from devicemint.onboarding.manufacturer import MouSignature
from devicemint.onboarding.manufacturer import Stage as ManufacturerStage
from devicemint.onboarding.models import DeviceApplication, ManufacturerApplication
from devicemint.onboarding.service import Onboarding
from devicemint.web.committee import all_proposals
from devicemint.web.pages import Viewer, refusal, render
from devicemint.web.review import (
    ROLE_NAMES,
    Form,
    Refused,
    actor,
    case_names,
    device_case_evidence,
    done,
    evidence_link,
    notice,
    onboarding,
    portal_of,
    status_of,
    text,
    timeline_rows,
    when,
)

router = APIRouter(include_in_schema=False)

AddressPath = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]
WHAT = "use the foundation's portal"
FoundationPage = Annotated[Principal, Depends(portal_of(Role.FOUNDATION, WHAT))]
TOKEN = 10**18
BASE = "/portal/foundation"
NOTICES = {
    "checklist": "Audit checklist issued: the manufacturer may now sign the MOU.",
    "countersigned": "MOU countersigned with your wallet's EIP-712 signature.",
    "stake": "Stake confirmed on chain.",
    "auditor": "Auditor assigned.",
    "granted": "Manufacturer licence granted on chain, with its root certificate.",
    "rejected": "Application rejected; the reason is on its timeline.",
    "proposed": "Proposal tabled on chain: the committee votes now.",
    "synced": "The case is up to date with the chain.",
    "approved": "Auditor approved.",
    "removed": "Auditor removed.",
    "seated": "Committee member seated on chain.",
    "unseated": "Committee member unseated on chain.",
    "quorum": "Quorum set on chain for proposals tabled from now on.",
    "suspended": "Licence suspended on chain: minting under it stops.",
    "reinstated": "Licence reinstated on chain.",
    "revoked": "Licence revoked for cause on chain; its root certificate is on the foundation's CRL.",
    "slashed": "Stake slashed to the treasury on chain.",
    "revocation-proposed": "Revocation tabled on chain: the committee votes on it.",
}


def _key(ctx: Context, who: Principal, what: str) -> TxSender:
    """The server's foundation key, used only for the foundation itself (as the API does)."""
    return server_key(ctx, who, what)


def _nav(current: str) -> list[tuple[str, str, bool]]:
    pages = (
        (BASE, "Cases"),
        (f"{BASE}/auditors", "Auditors"),
        (f"{BASE}/committee", "Committee"),
        (f"{BASE}/licences", "Licences"),
    )
    return [(href, label, href == current) for href, label in pages]


def _page(
    request: Request,
    ctx: Context,
    who: Principal,
    template: str,
    current: str,
    status: int = 200,
    **values: Any,
) -> Response:
    return render(
        request,
        ctx,
        who,
        template,
        status=status,
        nav=_nav(current),
        notice=notice(request, NOTICES),
        errors=values.pop("errors", {}),
        values=values.pop("values", {}),
        **values,
    )


# -- dashboard --------------------------------------------------------------------------------


@router.get(BASE, response_class=HTMLResponse, response_model=None)
def dashboard(request: Request, ctx: Context, who: FoundationPage) -> Response:
    domain = onboarding(ctx)
    with domain.manufacturers.sessions() as session:
        manufacturers = [
            {
                "id": c.id,
                "company": c.questionnaire.get("company_name", c.applicant),
                "applicant": c.applicant,
                "stage": c.stage,
                "licence_id": c.licence_id,
                "updated": when(c.updated_at),
            }
            for c in session.scalars(select(ManufacturerApplication).order_by(ManufacturerApplication.id))
        ]
        devices = [
            {
                "id": c.id,
                "design": f"{c.model} {c.revision}",
                "applicant": c.applicant,
                "stage": c.stage,
                "licence_id": c.licence_id,
                "updated": when(c.updated_at),
            }
            for c in session.scalars(select(DeviceApplication).order_by(DeviceApplication.id))
        ]
    companies = {m["applicant"]: m["company"] for m in manufacturers}
    for d in devices:
        d["company"] = companies.get(d["applicant"], d["applicant"])
    return _page(
        request,
        ctx,
        who,
        "foundation/dashboard.html",
        BASE,
        manufacturer_stages=_by_stage(manufacturers, ManufacturerStage, domain.manufacturers.waiting_for),
        device_stages=_by_stage(devices, DeviceStage, domain.devices.waiting_for),
        counts={"manufacturer": len(manufacturers), "device": len(devices)},
    )


def _by_stage(cases: list[dict[str, Any]], stages: Any, waiting_for: Any) -> list[dict[str, Any]]:
    """Every stage in the pipeline's order, with its cases and count (empty stages too, so the
    pipeline reads whole)."""
    return [
        {
            "stage": stage.value,
            "waiting_for": waiting_for[stage],
            "cases": [c for c in cases if c["stage"] == stage.value],
        }
        for stage in stages
    ]


# -- manufacturer applications ------------------------------------------------------------------


def _manufacturer_case(
    request: Request,
    ctx: Context,
    who: Principal,
    application_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    domain = onboarding(ctx)
    try:
        case = domain.manufacturers.export(application_id)
    except Refused as exc:
        return refusal(request, ctx, who, status_of(exc), "Manufacturer application", str(exc))
    functions = domain.manufacturers.contracts.manufacturer_license.functions
    applicant = Web3.to_checksum_address(case["applicant"])
    stage = ManufacturerStage(case["stage"])
    return _page(
        request,
        ctx,
        who,
        "foundation/manufacturer_case.html",
        BASE,
        status=status,
        case=case,
        stage=stage,
        waiting_for=domain.manufacturers.waiting_for[stage],
        mou=evidence_link(domain.evidence, case["mou_sha256"]) if case["mou_sha256"] else None,
        stake=int(functions.stakeOf(applicant).call()) / TOKEN,
        min_stake=int(functions.minStake().call()) / TOKEN,
        auditors=[a for a in domain.auditors.list() if AuditScope.HARDWARE_SECURITY.value in a["scopes"]],
        timeline=timeline_rows(domain.evidence, case["timeline"], case_names(domain, case)),
        can={
            "checklist": stage is ManufacturerStage.INTAKE_SUBMITTED,
            "countersign": stage is ManufacturerStage.MOU_SIGNED,
            "stake": stage is ManufacturerStage.MOU_COUNTERSIGNED,
            "auditor": stage
            in (
                ManufacturerStage.INTAKE_SUBMITTED,
                ManufacturerStage.CHECKLIST_ISSUED,
                ManufacturerStage.MOU_SIGNED,
                ManufacturerStage.MOU_COUNTERSIGNED,
                ManufacturerStage.STAKED,
            ),
            "grant": stage is ManufacturerStage.AUDITOR_APPROVED,
            "reject": stage not in (ManufacturerStage.LICENSED, ManufacturerStage.REJECTED),
        },
        errors=errors or {},
        values=values or {},
    )


@router.get(f"{BASE}/manufacturers/{{application_id}}", response_class=HTMLResponse, response_model=None)
def manufacturer_case(
    request: Request, ctx: Context, who: FoundationPage, application_id: ApplicationId
) -> Response:
    return _manufacturer_case(request, ctx, who, application_id)


class CountersignatureIn(BaseModel):
    mou_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    nonce: int = Field(ge=0, le=2**256 - 1)
    deadline: int = Field(ge=0, le=2**64 - 1)
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


def _json_refusal(ctx: Context, who: Principal | None) -> JSONResponse | None:
    if who is None:
        return JSONResponse({"detail": "sign in first"}, status_code=401)
    if Role.FOUNDATION not in who.roles:
        return JSONResponse(
            {"detail": f"only {ROLE_NAMES[Role.FOUNDATION]} may countersign an MOU"}, status_code=403
        )
    if ctx.onboarding is None:
        return JSONResponse({"detail": "this server has no chain deployment"}, status_code=503)
    return None


@router.get(f"{BASE}/manufacturers/{{application_id}}/mou-typed-data", response_model=None)
def mou_typed_data(ctx: Context, who: Viewer, application_id: ApplicationId) -> JSONResponse:
    """The EIP-712 data the foundation's wallet signs to countersign the MOU the manufacturer
    signed: a fresh nonce (below 2^53, so JavaScript keeps it exact) and a deadline in an hour."""
    if (refused := _json_refusal(ctx, who)) is not None:
        return refused
    assert who is not None
    domain = onboarding(ctx)
    try:
        case = domain.manufacturers.export(application_id)
    except Refused as exc:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))
    if not case["mou_sha256"]:
        return JSONResponse({"detail": "the manufacturer has not signed an MOU yet"}, status_code=409)
    nonce, deadline = secrets.randbelow(2**53), int(time.time()) + 3600
    data = domain.manufacturers.mou_typed_data(
        application_id,
        mou_sha256=case["mou_sha256"],
        signer=Web3.to_checksum_address(who.address),
        role="foundation",
        nonce=nonce,
        deadline=deadline,
    )
    data["message"]["mouSha256"] = "0x" + case["mou_sha256"]
    return JSONResponse(
        {"typed_data": data, "mou_sha256": case["mou_sha256"], "nonce": nonce, "deadline": deadline}
    )


@router.post(f"{BASE}/manufacturers/{{application_id}}/mou-countersignature", response_model=None)
def countersign(
    ctx: Context, who: Viewer, application_id: ApplicationId, body: CountersignatureIn
) -> JSONResponse:
    if (refused := _json_refusal(ctx, who)) is not None:
        return refused
    assert who is not None
    domain = onboarding(ctx)
    signed = MouSignature(body.mou_sha256, body.nonce, body.deadline, body.signature)
    try:
        domain.manufacturers.countersign_mou(actor(domain, who), application_id, signed)
    except Refused as exc:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))
    return JSONResponse({"application": application_id, "stage": ManufacturerStage.MOU_COUNTERSIGNED.value})


@router.post(
    f"{BASE}/manufacturers/{{application_id}}/{{action}}", response_class=HTMLResponse, response_model=None
)
def manufacturer_action(
    request: Request,
    ctx: Context,
    who: FoundationPage,
    form: Form,
    application_id: ApplicationId,
    action: str,
) -> Response:
    """One form per action on the case page; a refusal re-renders the page with the message at
    the form and what was typed kept."""
    domain = onboarding(ctx)
    me, flow = actor(domain, who), domain.manufacturers
    values = {
        "auditor": text(form, "auditor"),
        "reason": text(form, "reason"),
        "csr_pem": text(form, "csr_pem"),
    }
    try:
        if action == "checklist":
            flow.issue_checklist(me, application_id)
        elif action == "stake-confirmation":
            flow.confirm_stake(me, application_id)
            action = "stake"
        elif action == "auditor":
            if not values["auditor"]:
                return _manufacturer_case(
                    request,
                    ctx,
                    who,
                    application_id,
                    errors={"auditor": "choose an approved auditor"},
                    values=values,
                    status=422,
                )
            flow.assign_auditor(me, application_id, auditor=values["auditor"])
        elif action == "grant":
            csr = values["csr_pem"].encode() or None
            flow.grant(
                me, application_id, foundation=_key(ctx, who, "grant manufacturer licences"), csr_pem=csr
            )
            action = "granted"
        elif action == "rejection":
            if not values["reason"]:
                return _manufacturer_case(
                    request,
                    ctx,
                    who,
                    application_id,
                    errors={
                        "rejection": "reason: say why the application is rejected; the manufacturer reads it"
                    },
                    values=values,
                    status=422,
                )
            flow.reject(me, application_id, reason=values["reason"])
            action = "rejected"
        else:
            return refusal(
                request,
                ctx,
                who,
                404,
                "Not found",
                f"there is no action {action!r} on a manufacturer application",
            )
    except Refused as exc:
        form_name = {"stake-confirmation": "stake"}.get(action, action)
        return _manufacturer_case(
            request,
            ctx,
            who,
            application_id,
            errors={form_name: str(exc)},
            values=values,
            status=status_of(exc),
        )
    return done(f"{BASE}/manufacturers/{application_id}", action)


# -- device applications -------------------------------------------------------------------------


def _device_case(
    request: Request,
    ctx: Context,
    who: Principal,
    application_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    domain = onboarding(ctx)
    try:
        case = domain.devices.export(application_id)
    except Refused as exc:
        return refusal(request, ctx, who, status_of(exc), "Device application", str(exc))
    stage = DeviceStage(case["stage"])
    before_vote = stage not in (DeviceStage.COMMITTEE_VOTE, DeviceStage.LICENSED, DeviceStage.REJECTED)
    auditors = domain.auditors.list()
    names = case_names(domain, case)
    return _page(
        request,
        ctx,
        who,
        "foundation/device_case.html",
        BASE,
        status=status,
        case=case,
        stage=stage,
        waiting_for=domain.devices.waiting_for[stage],
        evidence=device_case_evidence(domain.evidence, case, names),
        timeline=timeline_rows(domain.evidence, case["timeline"], names),
        scopes=[
            (
                AuditScope.HARDWARE_SECURITY.value,
                "Hardware & security auditor",
                case["hardware_auditor"],
                [a for a in auditors if AuditScope.HARDWARE_SECURITY.value in a["scopes"]],
            ),
            (
                AuditScope.CX.value,
                "CX auditor",
                case["cx_auditor"],
                [a for a in auditors if AuditScope.CX.value in a["scopes"]],
            ),
        ],
        can={
            "auditors": before_vote,
            "propose": stage is DeviceStage.INTEGRATION_REVIEW,
            "sync": stage is DeviceStage.COMMITTEE_VOTE,
            "reject": before_vote,
        },
        errors=errors or {},
        values=values or {},
    )


@router.get(f"{BASE}/devices/{{application_id}}", response_class=HTMLResponse, response_model=None)
def device_case(
    request: Request, ctx: Context, who: FoundationPage, application_id: ApplicationId
) -> Response:
    return _device_case(request, ctx, who, application_id)


@router.post(
    f"{BASE}/devices/{{application_id}}/{{action}}", response_class=HTMLResponse, response_model=None
)
def device_action(
    request: Request,
    ctx: Context,
    who: FoundationPage,
    form: Form,
    application_id: ApplicationId,
    action: str,
) -> Response:
    domain = onboarding(ctx)
    me, flow = actor(domain, who), domain.devices
    scope = text(form, "scope")
    values = {"reason": text(form, "reason"), f"auditor:{scope}": text(form, "auditor")}
    form_name = f"auditor:{scope}" if action == "auditors" else action
    try:
        if action == "auditors":
            if scope not in (AuditScope.HARDWARE_SECURITY.value, AuditScope.CX.value):
                raise _Invalid(f"scope {scope!r}: assign a hardware_security or a cx auditor")
            if not text(form, "auditor"):
                raise _Invalid(f"choose an approved auditor with the {scope} scope")
            flow.assign_auditor(me, application_id, scope=AuditScope(scope), auditor=text(form, "auditor"))
            action = "auditor"
        elif action == "proposal":
            flow.propose(me, application_id, proposer=_key(ctx, who, "table proposals"))
            action = "proposed"
        elif action == "sync":
            flow.sync(me, application_id)
            action = "synced"
        elif action == "rejection":
            if not values["reason"]:
                raise _Invalid("reason: say why the application is rejected; the manufacturer reads it")
            flow.reject(me, application_id, reason=values["reason"])
            action = "rejected"
        else:
            return refusal(
                request, ctx, who, 404, "Not found", f"there is no action {action!r} on a device application"
            )
    except _Invalid as exc:
        return _device_case(
            request, ctx, who, application_id, errors={form_name: str(exc)}, values=values, status=422
        )
    except Refused as exc:
        return _device_case(
            request,
            ctx,
            who,
            application_id,
            errors={form_name: str(exc)},
            values=values,
            status=status_of(exc),
        )
    return done(f"{BASE}/devices/{application_id}", action)


class _Invalid(Exception):
    """A form field is missing or wrong (422, before the domain is asked)."""


# -- auditors -----------------------------------------------------------------------------------


def _auditors_page(
    request: Request,
    ctx: Context,
    who: Principal,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    domain = onboarding(ctx)
    return _page(
        request,
        ctx,
        who,
        "foundation/auditors.html",
        f"{BASE}/auditors",
        status=status,
        auditors=domain.auditors.list(),
        scopes=[s.value for s in AuditScope],
        errors=errors or {},
        values=values or {"scopes": []},
    )


@router.get(f"{BASE}/auditors", response_class=HTMLResponse, response_model=None)
def auditors(request: Request, ctx: Context, who: FoundationPage) -> Response:
    return _auditors_page(request, ctx, who)


@router.post(f"{BASE}/auditors", response_class=HTMLResponse, response_model=None)
def approve_auditor(request: Request, ctx: Context, who: FoundationPage, form: Form) -> Response:
    domain = onboarding(ctx)
    values: dict[str, Any] = {
        "address": text(form, "address"),
        "name": text(form, "name"),
        "scopes": [s for s in form.getlist("scopes") if isinstance(s, str)],
    }
    errors = {}
    if not Web3.is_address(values["address"]):
        errors["address"] = (
            "address: give the auditor's 0x address (40 hexadecimal digits, EIP-55 checksummed if mixed case)"
        )
    if not values["name"]:
        errors["name"] = "name: give the auditor's name as it should appear on its reports"
    if not values["scopes"]:
        errors["scopes"] = "scopes: choose at least one scope the auditor may audit in"
    if errors:
        return _auditors_page(request, ctx, who, errors=errors, values=values, status=422)
    try:
        domain.auditors.approve(
            actor(domain, who), values["address"], name=values["name"], scopes=values["scopes"]
        )
    except Refused as exc:
        return _auditors_page(
            request, ctx, who, errors={"approve": str(exc)}, values=values, status=status_of(exc)
        )
    return done(f"{BASE}/auditors", "approved")


@router.post(f"{BASE}/auditors/{{address}}/removal", response_class=HTMLResponse, response_model=None)
def remove_auditor(
    request: Request, ctx: Context, who: FoundationPage, form: Form, address: AddressPath
) -> Response:
    domain = onboarding(ctx)
    try:
        domain.auditors.remove(actor(domain, who), address)
    except Refused as exc:
        return _auditors_page(request, ctx, who, errors={"remove": str(exc)}, status=status_of(exc))
    return done(f"{BASE}/auditors", "removed")


# -- committee ----------------------------------------------------------------------------------


def _committee_page(
    request: Request,
    ctx: Context,
    who: Principal,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    domain = onboarding(ctx)
    state = domain.committee.sync()
    return _page(
        request,
        ctx,
        who,
        "foundation/committee.html",
        f"{BASE}/committee",
        status=status,
        committee=state,
        errors=errors or {},
        values=values or {"quorum": str(state.quorum)},
    )


@router.get(f"{BASE}/committee", response_class=HTMLResponse, response_model=None)
def committee(request: Request, ctx: Context, who: FoundationPage) -> Response:
    return _committee_page(request, ctx, who)


@router.post(f"{BASE}/committee/{{action}}", response_class=HTMLResponse, response_model=None)
def committee_action(
    request: Request, ctx: Context, who: FoundationPage, form: Form, action: str
) -> Response:
    """Seat a member (`members`) or set the quorum (`quorum`), on chain with the foundation key."""
    domain = onboarding(ctx)
    values = {"address": text(form, "address"), "quorum": text(form, "quorum")}
    try:
        if action == "members":
            if not Web3.is_address(values["address"]):
                raise _Invalid("address: give the member's 0x address (40 hexadecimal digits)")
            key = _key(ctx, who, "seat committee members")
            domain.committee.set_member(key, Web3.to_checksum_address(values["address"]), member=True)
            code = "seated"
        elif action == "quorum":
            if not values["quorum"].isdigit() or not 1 <= int(values["quorum"]) <= 1000:
                raise _Invalid(
                    "quorum: give a whole number of yes votes, at least 1 and at most the committee's size"
                )
            domain.committee.set_quorum(_key(ctx, who, "set the quorum"), int(values["quorum"]))
            code = "quorum"
        else:
            return refusal(request, ctx, who, 404, "Not found", f"there is no committee action {action!r}")
    except _Invalid as exc:
        return _committee_page(request, ctx, who, errors={action: str(exc)}, values=values, status=422)
    except Refused as exc:
        return _committee_page(
            request, ctx, who, errors={action: str(exc)}, values=values, status=status_of(exc)
        )
    return done(f"{BASE}/committee", code)


@router.post(
    f"{BASE}/committee/members/{{address}}/removal", response_class=HTMLResponse, response_model=None
)
def unseat(request: Request, ctx: Context, who: FoundationPage, form: Form, address: AddressPath) -> Response:
    domain = onboarding(ctx)
    try:
        key = _key(ctx, who, "unseat committee members")
        domain.committee.set_member(key, Web3.to_checksum_address(address), member=False)
    except Refused as exc:
        return _committee_page(request, ctx, who, errors={"unseat": str(exc)}, status=status_of(exc))
    return done(f"{BASE}/committee", "unseated")


# -- licences -----------------------------------------------------------------------------------


def _manufacturer_licences(domain: Onboarding) -> list[dict[str, Any]]:
    contracts = domain.manufacturers.contracts
    functions = contracts.manufacturer_license.functions
    rows = []
    for licence_id in range(1, int(functions.licenceCount().call()) + 1):
        licence = read_manufacturer_licence(contracts, licence_id)
        rows.append(
            {
                "licence": licence,
                "status": licence.status.name.lower(),
                "stake": int(functions.stakeOf(licence.holder).call()) / TOKEN,
            }
        )
    return rows


def _device_licences(domain: Onboarding) -> list[dict[str, Any]]:
    contracts = domain.devices.contracts
    count = int(contracts.device_license.functions.licenceCount().call())
    licences = [read_device_licence(contracts, i) for i in range(1, count + 1)]
    return [{"licence": licence, "status": licence.status.name.lower()} for licence in licences]


@router.get(f"{BASE}/licences", response_class=HTMLResponse, response_model=None)
def licences(request: Request, ctx: Context, who: FoundationPage) -> Response:
    domain = onboarding(ctx)
    return _page(
        request,
        ctx,
        who,
        "foundation/licences.html",
        f"{BASE}/licences",
        manufacturer_licences=_manufacturer_licences(domain),
        device_licences=_device_licences(domain),
    )


def _history(domain: Onboarding, licence_id: int, holder: str) -> list[dict[str, Any]]:
    """What the foundation did to a manufacturer licence, from the chain's events."""
    events = domain.manufacturers.contracts.manufacturer_license.events
    logs = [
        *(
            ("suspended", log)
            for log in events.Suspended().get_logs(from_block=0, argument_filters={"licenceId": licence_id})
        ),
        *(
            ("reinstated", log)
            for log in events.Reinstated().get_logs(from_block=0, argument_filters={"licenceId": licence_id})
        ),
        *(
            ("revoked", log)
            for log in events.Revoked().get_logs(from_block=0, argument_filters={"licenceId": licence_id})
        ),
        *(
            ("slashed", log)
            for log in events.Slashed().get_logs(from_block=0, argument_filters={"manufacturer": holder})
        ),
    ]
    logs.sort(key=lambda pair: (pair[1]["blockNumber"], pair[1]["logIndex"]))
    return [
        {
            "what": what,
            "block": int(log["blockNumber"]),
            "tx_hash": log["transactionHash"].to_0x_hex(),
            "reason_hash": bytes(log["args"]["reasonHash"]).hex() if "reasonHash" in log["args"] else "",
            "amount": int(log["args"]["amount"]) / TOKEN if "amount" in log["args"] else None,
        }
        for what, log in logs
    ]


def _manufacturer_licence_page(
    request: Request,
    ctx: Context,
    who: Principal,
    licence_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    domain = onboarding(ctx)
    contracts = domain.manufacturers.contracts
    try:
        licence = read_manufacturer_licence(contracts, licence_id)
    except Refused as exc:
        return refusal(request, ctx, who, status_of(exc), f"Manufacturer licence {licence_id}", str(exc))
    functions = contracts.manufacturer_license.functions
    return _page(
        request,
        ctx,
        who,
        "foundation/manufacturer_licence.html",
        f"{BASE}/licences",
        status=status,
        licence=licence,
        status_name=licence.status.name.lower(),
        granted=when(licence.granted_at),
        reason=licence.reason_hash.hex() if any(licence.reason_hash) else "",
        stake=int(functions.stakeOf(licence.holder).call()) / TOKEN,
        min_stake=int(functions.minStake().call()) / TOKEN,
        treasury=functions.treasury().call(),
        history=_history(domain, licence_id, licence.holder),
        device_licences=[d for d in _device_licences(domain) if d["licence"].holder == licence.holder],
        can={
            "suspend": licence.status is ManufacturerStatus.ACTIVE,
            "reinstate": licence.status is ManufacturerStatus.SUSPENDED,
            "revoke": licence.status is not ManufacturerStatus.REVOKED,
        },
        errors=errors or {},
        values=values or {},
    )


@router.get(f"{BASE}/licences/manufacturer/{{licence_id}}", response_class=HTMLResponse, response_model=None)
def manufacturer_licence(
    request: Request, ctx: Context, who: FoundationPage, licence_id: LicenceId
) -> Response:
    return _manufacturer_licence_page(request, ctx, who, licence_id)


@router.post(
    f"{BASE}/licences/manufacturer/{{licence_id}}/{{action}}",
    response_class=HTMLResponse,
    response_model=None,
)
def manufacturer_licence_action(
    request: Request, ctx: Context, who: FoundationPage, form: Form, licence_id: LicenceId, action: str
) -> Response:
    """suspension, reinstatement, revocation (for cause) or slash; the reason's SHA-256 goes on chain."""
    domain = onboarding(ctx)
    contracts = domain.manufacturers.contracts
    functions = contracts.manufacturer_license.functions
    values = {f"{action}.{f}": text(form, f) for f in ("reason", "confirm", "amount")}
    reason = text(form, "reason")
    try:
        if action not in ("suspension", "reinstatement", "revocation", "slash"):
            return refusal(request, ctx, who, 404, "Not found", f"there is no licence action {action!r}")
        if action != "reinstatement" and not reason:
            raise _FieldInvalid(
                f"{action}.reason", "reason: say why; its SHA-256 is recorded on chain with the action"
            )
        if action in ("revocation", "slash") and text(form, "confirm") != str(licence_id):
            raise _FieldInvalid(
                f"{action}.confirm",
                f"confirm: type the licence id {licence_id} to confirm this cannot be undone",
            )
        reason_hash = hashlib.sha256(reason.encode()).digest()
        if action == "suspension":
            _key(ctx, who, "suspend licences").transact(
                functions.suspend(licence_id, reason_hash),
                what=f"suspending manufacturer licence {licence_id}",
            )
            code = "suspended"
        elif action == "reinstatement":
            _key(ctx, who, "reinstate licences").transact(
                functions.reinstate(licence_id), what=f"reinstating manufacturer licence {licence_id}"
            )
            code = "reinstated"
        elif action == "revocation":
            revoke_manufacturer(
                contracts,
                domain.manufacturers.authority,
                _key(ctx, who, "revoke licences"),
                licence_id,
                reason=reason,
            )
            code = "revoked"
        else:
            holder = read_manufacturer_licence(contracts, licence_id).holder
            amount = _amount(text(form, "amount"), int(functions.stakeOf(holder).call()))
            _key(ctx, who, "slash stake").transact(
                functions.slash(holder, amount, reason_hash),
                what=f"slashing {amount / TOKEN:,} tokens of {holder}'s stake",
            )
            code = "slashed"
    except _FieldInvalid as exc:
        return _manufacturer_licence_page(
            request, ctx, who, licence_id, errors={exc.field: exc.message}, values=values, status=422
        )
    except Refused as exc:
        return _manufacturer_licence_page(
            request, ctx, who, licence_id, errors={action: str(exc)}, values=values, status=status_of(exc)
        )
    return done(f"{BASE}/licences/manufacturer/{licence_id}", code)


class _FieldInvalid(Exception):
    """A named field of a licence form is missing or wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _amount(raw: str, stake: int) -> int:
    """Tokens (up to 18 decimals) to slash, as the token's smallest unit; within the stake."""
    try:
        tokens = Decimal(raw.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise _FieldInvalid("slash.amount", f"amount: {raw!r} is not a number of tokens") from None
    amount = tokens * TOKEN
    if not tokens.is_finite() or amount <= 0 or amount != amount.to_integral_value():
        raise _FieldInvalid("slash.amount", "amount: give a positive number of tokens, at most 18 decimals")
    if amount > stake:
        raise _FieldInvalid(
            "slash.amount",
            f"amount: {tokens:,} tokens is more than the stake of {Decimal(stake) / TOKEN:,} tokens",
        )
    return int(amount)


def _device_licence_page(
    request: Request,
    ctx: Context,
    who: Principal,
    licence_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    domain = onboarding(ctx)
    try:
        licence = read_device_licence(domain.devices.contracts, licence_id)
    except Refused as exc:
        return refusal(request, ctx, who, status_of(exc), f"Device licence {licence_id}", str(exc))
    with domain.devices.sessions() as session:
        application = session.scalar(
            select(DeviceApplication.id).where(DeviceApplication.licence_id == licence_id)
        )
    proposals = [p for p in all_proposals(domain) if p.kind == "revoke" and p.licence_id == licence_id]
    return _page(
        request,
        ctx,
        who,
        "foundation/device_licence.html",
        f"{BASE}/licences",
        status=status,
        licence=licence,
        status_name=licence.status.name.lower(),
        issued=when(licence.issued_at),
        application=application,
        proposals=proposals,
        can_propose=licence.status is DeviceLicenceStatus.ACTIVE and not any(p.open for p in proposals),
        when=when,
        errors=errors or {},
        values=values or {},
    )


@router.get(f"{BASE}/licences/device/{{licence_id}}", response_class=HTMLResponse, response_model=None)
def device_licence(request: Request, ctx: Context, who: FoundationPage, licence_id: LicenceId) -> Response:
    return _device_licence_page(request, ctx, who, licence_id)


@router.post(
    f"{BASE}/licences/device/{{licence_id}}/revocation-proposal",
    response_class=HTMLResponse,
    response_model=None,
)
def propose_device_revocation(
    request: Request, ctx: Context, who: FoundationPage, form: Form, licence_id: LicenceId
) -> Response:
    """A device licence is revoked only by the committee's vote: the foundation tables it."""
    domain = onboarding(ctx)
    reason = text(form, "reason")
    values = {"revoke.reason": reason, "revoke.confirm": text(form, "confirm")}
    errors = {}
    if not reason:
        errors["revoke.reason"] = "reason: say why; its SHA-256 is recorded on chain with the proposal"
    if text(form, "confirm") != str(licence_id):
        errors["revoke.confirm"] = f"confirm: type the licence id {licence_id} to confirm"
    if errors:
        return _device_licence_page(request, ctx, who, licence_id, errors=errors, values=values, status=422)
    functions = domain.devices.contracts.device_license.functions
    try:
        _key(ctx, who, "table proposals").transact(
            functions.proposeRevoke(licence_id, hashlib.sha256(reason.encode()).digest()),
            what=f"tabling the revocation of device licence {licence_id}",
        )
    except Refused as exc:
        return _device_licence_page(
            request, ctx, who, licence_id, errors={"revoke": str(exc)}, values=values, status=status_of(exc)
        )
    return done(f"{BASE}/licences/device/{licence_id}", "revocation-proposed")
