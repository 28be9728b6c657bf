"""Onboarding over HTTP: evidence, auditors, committee, manufacturer and device applications.

Each route names who may call it; the domain then checks the finer rules (the applicant, the
assigned auditor, the stage) and its refusals come back as JSON with the reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from web3 import Web3

from devicemint.api.deps import ApiError, Context, Principal, require_role, require_scope
from devicemint.auth.api_keys import Scope
from devicemint.auth.roles import Role
from devicemint.chain.tx import TxSender
from devicemint.onboarding.auditors import AuditScope
from devicemint.onboarding.cases import Actor, NotPermitted
from devicemint.onboarding.design import (
    CertificationIn,
    CxAssessmentIn,
    DesignSubmission,
    HardwareAuditIn,
    RemediationIn,
    Sha256,
)
from devicemint.onboarding.evidence import EvidenceKind
from devicemint.onboarding.manufacturer import MouSignature
from devicemint.onboarding.service import Onboarding

router = APIRouter(tags=["onboarding"])

Writer = Annotated[Principal, Depends(require_scope(Scope.ONBOARDING_WRITE))]
Reader = Annotated[Principal, Depends(require_scope(Scope.READ))]
Foundation = Annotated[Principal, Depends(require_role(Role.FOUNDATION))]
ApplicationId = Annotated[int, Path(ge=1, le=2**31 - 1)]
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


def _checksummed(address: str) -> str:
    """An address in its EIP-55 form; mixed case must already carry a valid checksum (a typo in
    one letter is caught here, not sent to the chain)."""
    if not Web3.is_address(address):
        raise ValueError("mixed-case address with an invalid EIP-55 checksum")
    return Web3.to_checksum_address(address)


Address = Annotated[str, Path(pattern=ADDRESS_PATTERN), AfterValidator(_checksummed)]
AddressField = Annotated[str, Field(pattern=ADDRESS_PATTERN), AfterValidator(_checksummed)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def onboarding(ctx: Context) -> Onboarding:
    if ctx.onboarding is None:
        raise ApiError(503, "not_configured", "this server has no chain deployment to onboard against")
    return ctx.onboarding


Domain = Annotated[Onboarding, Depends(onboarding)]


def actor(domain: Onboarding, principal: Principal) -> Actor:
    return domain.actor(principal.address, (r.value for r in principal.roles))


def server_key(ctx: Context, principal: Principal, what: str) -> TxSender:
    """The server's foundation key, used only when the foundation itself is calling."""
    signer = ctx.foundation_signer
    if signer is None:
        raise ApiError(503, "not_configured", f"this server holds no foundation key to {what}")
    if signer.account.address.lower() != principal.address.lower():
        raise NotPermitted(f"{principal.address} may not {what}: the server signs only for the foundation")
    return signer


# -- evidence ----------------------------------------------------------------------------------


@router.post("/evidence", status_code=201, summary="Upload a piece of evidence (content-addressed)")
def upload_evidence(
    domain: Domain,
    _: Writer,
    kind: Annotated[EvidenceKind, Form()],
    file: Annotated[UploadFile, File()],
) -> dict[str, Any]:
    stored = domain.evidence.put(file.file, kind=kind, filename=file.filename or "upload")
    return {
        "sha256": stored.sha256,
        "size": stored.size,
        "media_type": stored.media_type,
        "kind": stored.kind.value,
        "filename": stored.filename,
    }


@router.get("/evidence/{sha256}", summary="Download evidence (foundation, committee, auditors)")
def download_evidence(
    domain: Domain,
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    _: Annotated[Principal, Depends(require_role(Role.FOUNDATION, Role.COMMITTEE, Role.AUDITOR))],
) -> Response:
    info = domain.evidence.info(sha256)
    with domain.evidence.open(sha256, verify=True) as f:
        return Response(content=f.read(), media_type=info.media_type)


# -- auditors and committee ------------------------------------------------------------------


class AuditorIn(_Body):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[AuditScope] = Field(min_length=1)


@router.get("/auditors", summary="The approved auditors and their scopes")
def list_auditors(domain: Domain) -> list[dict[str, Any]]:
    return domain.auditors.list()


@router.put("/auditors/{address}", summary="Approve an auditor or change its scopes (foundation)")
def approve_auditor(
    domain: Domain, principal: Foundation, address: Address, body: AuditorIn
) -> dict[str, Any]:
    return domain.auditors.approve(
        actor(domain, principal), address, name=body.name, scopes=[s.value for s in body.scopes]
    )


@router.delete("/auditors/{address}", status_code=204, summary="Remove an approved auditor (foundation)")
def remove_auditor(domain: Domain, principal: Foundation, address: Address) -> None:
    domain.auditors.remove(actor(domain, principal), address)


class QuorumIn(_Body):
    quorum: int = Field(ge=1, le=1000)


def _committee_view(state: Any) -> dict[str, Any]:
    return {
        "members": list(state.members),
        "quorum": state.quorum,
        "voting_period_seconds": state.voting_period_seconds,
    }


@router.get("/committee", summary="The committee as recorded on chain")
def committee(domain: Domain) -> dict[str, Any]:
    return _committee_view(domain.committee.sync())


@router.put("/committee/members/{address}", summary="Seat a committee member (foundation, on chain)")
def seat_member(ctx: Context, domain: Domain, principal: Foundation, address: Address) -> dict[str, Any]:
    key = server_key(ctx, principal, "seat committee members")
    return _committee_view(domain.committee.set_member(key, address, member=True))


@router.delete("/committee/members/{address}", summary="Unseat a committee member (foundation, on chain)")
def unseat_member(ctx: Context, domain: Domain, principal: Foundation, address: Address) -> dict[str, Any]:
    key = server_key(ctx, principal, "unseat committee members")
    return _committee_view(domain.committee.set_member(key, address, member=False))


@router.put("/committee/quorum", summary="Set the committee quorum (foundation, on chain)")
def set_quorum(ctx: Context, domain: Domain, principal: Foundation, body: QuorumIn) -> dict[str, Any]:
    key = server_key(ctx, principal, "set the quorum")
    return _committee_view(domain.committee.set_quorum(key, body.quorum))


# -- manufacturer applications -----------------------------------------------------------------

manufacturer = APIRouter(prefix="/manufacturer-applications", tags=["manufacturer applications"])


@manufacturer.post("", status_code=201, summary="Submit the intake questionnaire")
def submit_intake(domain: Domain, principal: Writer, answers: dict[str, Any]) -> dict[str, Any]:
    return {"application": domain.manufacturers.submit_intake(actor(domain, principal), answers)}


@manufacturer.get("", summary="The manufacturer applications the caller may see")
def list_manufacturer_applications(domain: Domain, principal: Reader) -> list[dict[str, Any]]:
    return domain.manufacturers.visible_to(actor(domain, principal))


@manufacturer.get("/{application_id}", summary="The whole case file with its timeline")
def manufacturer_application(
    domain: Domain, principal: Reader, application_id: ApplicationId
) -> dict[str, Any]:
    domain.manufacturers.require_readable(actor(domain, principal), application_id)
    return domain.manufacturers.export(application_id)


class ChecklistIn(_Body):
    version: int = Field(default=1, ge=1, le=1000)


@manufacturer.post("/{application_id}/checklist", summary="Issue the audit checklist (foundation)")
def issue_checklist(
    domain: Domain, principal: Foundation, application_id: ApplicationId, body: ChecklistIn
) -> dict[str, Any]:
    domain.manufacturers.issue_checklist(actor(domain, principal), application_id, body.version)
    return domain.manufacturers.export(application_id)


@manufacturer.get("/{application_id}/mou-typed-data", summary="The EIP-712 data to sign the MOU with")
def mou_typed_data(
    domain: Domain,
    principal: Reader,
    application_id: ApplicationId,
    mou_sha256: Annotated[str, Query(pattern=r"^[0-9a-f]{64}$")],
    role: Annotated[str, Query(pattern=r"^(manufacturer|foundation)$")],
    nonce: Annotated[int, Query(ge=0, le=2**256 - 1)],
    deadline: Annotated[int, Query(ge=0, le=2**64 - 1)],
) -> dict[str, Any]:
    domain.manufacturers.require_readable(actor(domain, principal), application_id)
    data = domain.manufacturers.mou_typed_data(
        application_id,
        mou_sha256=mou_sha256,
        signer=principal.address,
        role=role,
        nonce=nonce,
        deadline=deadline,
    )
    data["message"]["mouSha256"] = "0x" + mou_sha256
    return data


class MouSignatureIn(_Body):
    mou_sha256: Sha256
    nonce: int = Field(ge=0, le=2**256 - 1)
    deadline: int = Field(ge=0, le=2**64 - 1)
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")

    def signed(self) -> MouSignature:
        return MouSignature(self.mou_sha256, self.nonce, self.deadline, self.signature)


@manufacturer.post("/{application_id}/mou-signature", summary="Sign the MOU (the applicant's wallet)")
def sign_mou(
    domain: Domain, principal: Writer, application_id: ApplicationId, body: MouSignatureIn
) -> dict[str, Any]:
    domain.manufacturers.sign_mou(actor(domain, principal), application_id, body.signed())
    return domain.manufacturers.export(application_id)


@manufacturer.post("/{application_id}/mou-countersignature", summary="Countersign the MOU (foundation)")
def countersign_mou(
    domain: Domain, principal: Foundation, application_id: ApplicationId, body: MouSignatureIn
) -> dict[str, Any]:
    domain.manufacturers.countersign_mou(actor(domain, principal), application_id, body.signed())
    return domain.manufacturers.export(application_id)


@manufacturer.post("/{application_id}/stake-confirmation", summary="Confirm the stake on chain")
def confirm_stake(domain: Domain, principal: Writer, application_id: ApplicationId) -> dict[str, Any]:
    domain.manufacturers.require_readable(actor(domain, principal), application_id)
    stake = domain.manufacturers.confirm_stake(actor(domain, principal), application_id)
    return {"stake": str(stake), **domain.manufacturers.export(application_id)}


class AssignAuditorIn(_Body):
    auditor: AddressField


@manufacturer.post("/{application_id}/auditor", summary="Assign the hardware & security auditor (foundation)")
def assign_manufacturer_auditor(
    domain: Domain, principal: Foundation, application_id: ApplicationId, body: AssignAuditorIn
) -> dict[str, Any]:
    domain.manufacturers.assign_auditor(actor(domain, principal), application_id, auditor=body.auditor)
    return domain.manufacturers.export(application_id)


class SignOffIn(_Body):
    report_sha256: Sha256
    note: str = Field(default="", max_length=5000)


@manufacturer.post("/{application_id}/approval", summary="Sign the manufacturer off (assigned auditor)")
def approve_manufacturer(
    domain: Domain, principal: Writer, application_id: ApplicationId, body: SignOffIn
) -> dict[str, Any]:
    domain.manufacturers.approve(
        actor(domain, principal), application_id, report_sha256=body.report_sha256, note=body.note
    )
    return domain.manufacturers.export(application_id)


class GrantIn(_Body):
    csr_pem: str | None = Field(
        default=None,
        min_length=1,
        max_length=20_000,
        description="PEM PKCS#10 request (P-256) for the manufacturer root certificate; "
        "without it a key is made in the manufacturer's encrypted keystore on this server",
    )


@manufacturer.post("/{application_id}/grant", summary="Grant the manufacturer licence on chain (foundation)")
def grant_manufacturer_licence(
    ctx: Context, domain: Domain, principal: Foundation, application_id: ApplicationId, body: GrantIn
) -> dict[str, Any]:
    key = server_key(ctx, principal, "grant manufacturer licences")
    licence_id = domain.manufacturers.grant(
        actor(domain, principal),
        application_id,
        foundation=key,
        csr_pem=body.csr_pem.encode() if body.csr_pem is not None else None,
    )
    return {"licence_id": licence_id, **domain.manufacturers.export(application_id)}


class RejectionIn(_Body):
    reason: str = Field(min_length=1, max_length=5000)


@manufacturer.post("/{application_id}/rejection", summary="Reject the application, with reasons (foundation)")
def reject_manufacturer(
    domain: Domain, principal: Foundation, application_id: ApplicationId, body: RejectionIn
) -> dict[str, Any]:
    domain.manufacturers.reject(actor(domain, principal), application_id, reason=body.reason)
    return domain.manufacturers.export(application_id)


@manufacturer.get(
    "/{application_id}/anchored-case-file", summary="The case file whose SHA-256 the licence anchors"
)
def manufacturer_anchored(domain: Domain, principal: Reader, application_id: ApplicationId) -> Response:
    domain.manufacturers.require_readable(actor(domain, principal), application_id)
    return Response(domain.manufacturers.anchored_case_file(application_id), media_type="application/json")


# -- device applications -----------------------------------------------------------------------

device = APIRouter(prefix="/device-applications", tags=["device applications"])


@device.post("", status_code=201, summary="Submit a design dossier (a licensed manufacturer)")
def submit_design(domain: Domain, principal: Writer, body: DesignSubmission) -> dict[str, Any]:
    application_id = domain.devices.submit(actor(domain, principal), body)
    return domain.devices.export(application_id)


@device.get("", summary="The device applications the caller may see")
def list_device_applications(domain: Domain, principal: Reader) -> list[dict[str, Any]]:
    return domain.devices.visible_to(actor(domain, principal))


@device.get("/{application_id}", summary="The whole case file with audits and timeline")
def device_application(domain: Domain, principal: Reader, application_id: ApplicationId) -> dict[str, Any]:
    domain.devices.require_readable(actor(domain, principal), application_id)
    return domain.devices.export(application_id)


@device.get("/{application_id}/diff", summary="A design change against the licensed design's dossier")
def design_diff(domain: Domain, principal: Reader, application_id: ApplicationId) -> dict[str, Any]:
    domain.devices.require_readable(actor(domain, principal), application_id)
    return domain.devices.diff(application_id)


@device.post("/{application_id}/certifications", summary="Add a certification (the applicant)")
def add_certification(
    domain: Domain, principal: Writer, application_id: ApplicationId, body: CertificationIn
) -> dict[str, Any]:
    domain.devices.add_certification(actor(domain, principal), application_id, body)
    return domain.devices.export(application_id)


@device.post("/{application_id}/submission", summary="Submit the design for audit (the applicant)")
def submit_for_audit(domain: Domain, principal: Writer, application_id: ApplicationId) -> dict[str, Any]:
    domain.devices.submit_for_audit(actor(domain, principal), application_id)
    return domain.devices.export(application_id)


class DeviceAuditorIn(_Body):
    scope: AuditScope
    auditor: AddressField


@device.post("/{application_id}/auditors", summary="Assign an auditor for a scope (foundation)")
def assign_device_auditor(
    domain: Domain, principal: Foundation, application_id: ApplicationId, body: DeviceAuditorIn
) -> dict[str, Any]:
    domain.devices.assign_auditor(
        actor(domain, principal), application_id, scope=body.scope, auditor=body.auditor
    )
    return domain.devices.export(application_id)


@device.post(
    "/{application_id}/hardware-audits", summary="Record the hardware & security audit (assigned auditor)"
)
def record_hardware_audit(
    domain: Domain, principal: Writer, application_id: ApplicationId, body: HardwareAuditIn
) -> dict[str, Any]:
    passed = domain.devices.record_hardware_audit(actor(domain, principal), application_id, body)
    return {"passed": passed, **domain.devices.export(application_id)}


@device.post("/{application_id}/cx-assessments", summary="Record the CX assessment (assigned CX auditor)")
def record_cx_assessment(
    domain: Domain, principal: Writer, application_id: ApplicationId, body: CxAssessmentIn
) -> dict[str, Any]:
    passed = domain.devices.record_cx_assessment(actor(domain, principal), application_id, body)
    return {"passed": passed, **domain.devices.export(application_id)}


@device.post("/{application_id}/remediations", summary="Remediate a failed audit (the applicant)")
def remediate(
    domain: Domain, principal: Writer, application_id: ApplicationId, body: RemediationIn
) -> dict[str, Any]:
    domain.devices.remediate(actor(domain, principal), application_id, body)
    return domain.devices.export(application_id)


@device.post("/{application_id}/proposal", summary="Table the Device License on chain (foundation)")
def propose(
    ctx: Context, domain: Domain, principal: Foundation, application_id: ApplicationId
) -> dict[str, Any]:
    key = server_key(ctx, principal, "table proposals")
    domain.devices.propose(actor(domain, principal), application_id, proposer=key)
    return domain.devices.export(application_id)


@device.get(
    "/{application_id}/vote-transaction", summary="The call a committee member's wallet signs to vote"
)
def vote_transaction(
    domain: Domain, principal: Reader, application_id: ApplicationId, support: bool
) -> dict[str, Any]:
    domain.devices.require_readable(actor(domain, principal), application_id)
    return domain.devices.vote_call(application_id, support=support, voter=principal.address)


class VoteIn(_Body):
    signed_transaction: str = Field(
        pattern=r"^0x[0-9a-fA-F]{2,20000}$", description="the member's signed vote"
    )
    reason: str = Field(default="", max_length=5000)


@device.post("/{application_id}/votes", summary="Cast a committee member's signed vote")
def cast_vote(
    domain: Domain,
    principal: Annotated[Principal, Depends(require_role(Role.COMMITTEE))],
    application_id: ApplicationId,
    body: VoteIn,
) -> dict[str, Any]:
    tx_hash = domain.devices.cast_vote(
        actor(domain, principal),
        application_id,
        signed_transaction=body.signed_transaction,
        reason=body.reason,
    )
    return {"tx_hash": tx_hash, **domain.devices.export(application_id)}


@device.post("/{application_id}/sync", summary="Bring the case up to the chain (votes, quorum, expiry)")
def sync(domain: Domain, principal: Reader, application_id: ApplicationId) -> dict[str, Any]:
    domain.devices.require_readable(actor(domain, principal), application_id)
    domain.devices.sync(actor(domain, principal), application_id)
    return domain.devices.export(application_id)


@device.post("/{application_id}/rejection", summary="Reject the application, with reasons (foundation)")
def reject_device(
    domain: Domain, principal: Foundation, application_id: ApplicationId, body: RejectionIn
) -> dict[str, Any]:
    domain.devices.reject(actor(domain, principal), application_id, reason=body.reason)
    return domain.devices.export(application_id)


@device.get(
    "/{application_id}/anchored-case-file", summary="The case file whose SHA-256 the proposal anchors"
)
def device_anchored(domain: Domain, principal: Reader, application_id: ApplicationId) -> Response:
    domain.devices.require_readable(actor(domain, principal), application_id)
    return Response(domain.devices.anchored_case_file(application_id), media_type="application/json")


router.include_router(manufacturer)
router.include_router(device)
