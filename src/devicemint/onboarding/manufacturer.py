"""The manufacturer application: from intake questionnaire to manufacturer licence.

A state machine whose every transition records who made it, when, and on which evidence (case
events). Each action names the one party that may take it and the stage it needs; anything else
is refused with a message saying where the case stands and what is missing. The decisions that
matter (stake, licence) are read from or written to the chain.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import rfc8785
from eth_account import Account
from eth_account.messages import encode_typed_data
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from devicemint.chain import eip712
from devicemint.chain.deployments import Contracts
from devicemint.chain.tx import TxSender
from devicemint.db.session import transaction
from devicemint.errors import ChainError
from devicemint.licensing import actions
from devicemint.licensing.registry import read_manufacturer_licence
from devicemint.onboarding.auditors import AuditorRegistry, AuditScope, checksum
from devicemint.onboarding.cases import (
    COMMITTEE,
    FOUNDATION,
    Actor,
    CaseFile,
    NotPermitted,
    TransitionRefused,
    may_read,
    open_case,
    require_evidence,
    timeline,
)
from devicemint.onboarding.checklist import CURRENT_VERSION, load_checklist
from devicemint.onboarding.evidence import EvidenceKind, EvidenceStore
from devicemint.onboarding.models import ManufacturerApplication, UsedSignatureNonce
from devicemint.onboarding.questionnaire import parse_questionnaire
from devicemint.pki.authority import Authority
from devicemint.pki.profiles import fingerprint

CASE_KIND = "manufacturer"


class Stage(StrEnum):
    INTAKE_SUBMITTED = "intake_submitted"
    CHECKLIST_ISSUED = "checklist_issued"
    MOU_SIGNED = "mou_signed"
    MOU_COUNTERSIGNED = "mou_countersigned"
    STAKED = "staked"
    AUDITOR_APPROVED = "auditor_approved"
    LICENSED = "licensed"
    REJECTED = "rejected"


# What each stage still lacks, for the message of a refused transition.
_MISSING = {
    Stage.INTAKE_SUBMITTED: "the foundation to issue the audit checklist",
    Stage.CHECKLIST_ISSUED: "the manufacturer's signature on the MOU",
    Stage.MOU_SIGNED: "the foundation's countersignature on the MOU",
    Stage.MOU_COUNTERSIGNED: "the stake on chain (at least the minimum) to be confirmed",
    Stage.STAKED: "an approved hardware & security auditor's sign-off",
    Stage.AUDITOR_APPROVED: "the foundation to grant the licence on chain",
    Stage.LICENSED: "nothing: the licence is granted",
    Stage.REJECTED: "nothing: the application was rejected",
}
_BEFORE_SIGN_OFF = (
    Stage.INTAKE_SUBMITTED,
    Stage.CHECKLIST_ISSUED,
    Stage.MOU_SIGNED,
    Stage.MOU_COUNTERSIGNED,
    Stage.STAKED,
)


@dataclass(frozen=True)
class MouSignature:
    """An EIP-712 signature over the MOU's hash, bound to chain, contract, case, nonce, deadline."""

    mou_sha256: str
    nonce: int
    deadline: int
    signature: str


def mou_typed_data(
    *,
    chain_id: int,
    verifying_contract: str,
    application_id: int,
    mou_sha256: str,
    signer: str,
    role: str,
    nonce: int,
    deadline: int,
) -> dict[str, Any]:
    """The typed data a wallet signs to sign (manufacturer) or countersign (foundation) the MOU."""
    return eip712.typed_data(
        domain={
            "name": "devicemint onboarding",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": verifying_contract,
        },
        primary_type="MouSignature",
        fields=(
            {"name": "applicationId", "type": "uint256"},
            {"name": "mouSha256", "type": "bytes32"},
            {"name": "signer", "type": "address"},
            {"name": "role", "type": "string"},
            {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"},
        ),
        message={
            "applicationId": application_id,
            "mouSha256": bytes.fromhex(mou_sha256),
            "signer": signer,
            "role": role,
            "nonce": nonce,
            "deadline": deadline,
        },
    )


class ManufacturerOnboarding(CaseFile[ManufacturerApplication]):
    """The manufacturer application's actions; each one is a single database transaction."""

    kind = CASE_KIND
    table = ManufacturerApplication
    waiting_for = _MISSING

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        contracts: Contracts,
        chain_id: int,
        auditors: AuditorRegistry,
        evidence: EvidenceStore,
        authority: Authority,
    ) -> None:
        self.sessions = sessions
        self.evidence = evidence
        self.contracts = contracts
        self.chain_id = chain_id
        self.auditors = auditors
        self.authority = authority

    # -- actions ----------------------------------------------------------------------------

    def submit_intake(self, actor: Actor, answers: object) -> int:
        questionnaire = parse_questionnaire(answers)
        with transaction(self.sessions) as session:
            existing = session.scalar(
                select(ManufacturerApplication.id).where(
                    ManufacturerApplication.applicant == actor.address,
                    ManufacturerApplication.stage.not_in([Stage.REJECTED.value]),
                )
            )
            if existing is not None:
                raise TransitionRefused(
                    f"{actor.address} already has application {existing}; one per manufacturer"
                )
            case = ManufacturerApplication(
                applicant=actor.address,
                stage=Stage.INTAKE_SUBMITTED.value,
                questionnaire=questionnaire.model_dump(mode="json"),
            )
            open_case(session, CASE_KIND, case, action="submit_intake", actor=actor)
            return case.id

    def issue_checklist(self, actor: Actor, application_id: int, version: int = CURRENT_VERSION) -> None:
        actor.require(FOUNDATION, "issue the audit checklist")
        checklist = load_checklist(version)
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_stage(case, "issue_checklist", Stage.INTAKE_SUBMITTED)
            case.checklist_version = checklist.version
            self._move(
                session,
                case,
                action="issue_checklist",
                to=Stage.CHECKLIST_ISSUED,
                actor=actor,
                note=f"{checklist.title} v{checklist.version}",
            )

    def mou_typed_data(
        self, application_id: int, *, mou_sha256: str, signer: str, role: str, nonce: int, deadline: int
    ) -> dict[str, Any]:
        return mou_typed_data(
            chain_id=self.chain_id,
            verifying_contract=self.contracts.manufacturer_license.address,
            application_id=application_id,
            mou_sha256=mou_sha256,
            signer=signer,
            role=role,
            nonce=nonce,
            deadline=deadline,
        )

    def _check_signature(
        self, session: Session, application_id: int, actor: Actor, role: str, signed: MouSignature
    ) -> None:
        if signed.deadline < int(time.time()):
            raise TransitionRefused(
                f"the MOU signature expired at {signed.deadline}; sign again with a later deadline"
            )
        data = self.mou_typed_data(
            application_id,
            mou_sha256=signed.mou_sha256,
            signer=actor.address,
            role=role,
            nonce=signed.nonce,
            deadline=signed.deadline,
        )
        try:
            signer = Account.recover_message(encode_typed_data(full_message=data), signature=signed.signature)
        except (ValueError, TypeError) as exc:
            raise TransitionRefused(f"the MOU signature is malformed: {exc}") from exc
        if signer.lower() != actor.address.lower():
            raise NotPermitted(f"the MOU signature was made by {signer}, not by {actor.address}")
        if session.get(UsedSignatureNonce, (actor.address, str(signed.nonce))) is not None:
            raise TransitionRefused(
                f"nonce {signed.nonce} of {actor.address} was already used; a signature works once"
            )
        session.add(UsedSignatureNonce(signer=actor.address, nonce=str(signed.nonce)))

    def sign_mou(self, actor: Actor, application_id: int, signed: MouSignature) -> None:
        require_evidence(self.evidence, [signed.mou_sha256], "the MOU", EvidenceKind.MOU)
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_applicant(case=case, actor=actor, action="sign the MOU")
            self._require_stage(case, "sign_mou", Stage.CHECKLIST_ISSUED)
            self._check_signature(session, application_id, actor, "manufacturer", signed)
            case.mou_sha256, case.mou_signature = signed.mou_sha256, signed.signature
            self._move(
                session,
                case,
                action="sign_mou",
                to=Stage.MOU_SIGNED,
                actor=actor,
                evidence=[signed.mou_sha256],
            )

    def countersign_mou(self, actor: Actor, application_id: int, signed: MouSignature) -> None:
        actor.require(FOUNDATION, "countersign the MOU")
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_stage(case, "countersign_mou", Stage.MOU_SIGNED)
            if signed.mou_sha256 != case.mou_sha256:
                raise TransitionRefused(
                    f"the countersignature covers MOU {signed.mou_sha256}, but the manufacturer "
                    f"signed {case.mou_sha256}"
                )
            self._check_signature(session, application_id, actor, FOUNDATION, signed)
            case.mou_countersignature = signed.signature
            self._move(
                session,
                case,
                action="countersign_mou",
                to=Stage.MOU_COUNTERSIGNED,
                actor=actor,
                evidence=[signed.mou_sha256],
            )

    def confirm_stake(self, actor: Actor, application_id: int) -> int:
        """Anyone may ask; the chain decides. Returns the stake found."""
        functions = self.contracts.manufacturer_license.functions
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_stage(case, "confirm_stake", Stage.MOU_COUNTERSIGNED)
            stake = int(functions.stakeOf(Web3.to_checksum_address(case.applicant)).call())
            minimum = int(functions.minStake().call())
            if stake < minimum:
                raise TransitionRefused(
                    f"{case.applicant} has staked {stake / 10**18:,.0f} of the "
                    f"{minimum / 10**18:,.0f} tokens required; stake the rest first"
                )
            self._move(
                session,
                case,
                action="confirm_stake",
                to=Stage.STAKED,
                actor=actor,
                note=f"stake {stake} on chain",
            )
            return stake

    def assign_auditor(self, actor: Actor, application_id: int, *, auditor: str) -> None:
        """The foundation names the hardware & security auditor who will sign the applicant off."""
        actor.require(FOUNDATION, "assign auditors")
        auditor = checksum(auditor, "auditor address")
        self.auditors.require(
            auditor, AuditScope.HARDWARE_SECURITY, f"audit manufacturer application {application_id}"
        )
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_stage(case, "assign_auditor", *_BEFORE_SIGN_OFF)
            case.auditor = auditor
            self._move(
                session, case, action="assign_auditor", to=Stage(case.stage), actor=actor, note=auditor
            )

    def approve(self, actor: Actor, application_id: int, *, report_sha256: str, note: str = "") -> None:
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            if case.auditor is None or not actor.is_(case.auditor):
                raise NotPermitted(
                    f"{actor.address} may not sign off manufacturer application {case.id}: its auditor is "
                    f"{case.auditor or 'not yet assigned'}"
                )
            self.auditors.require(actor.address, AuditScope.HARDWARE_SECURITY, "sign off a manufacturer")
            self._require_stage(case, "approve", Stage.STAKED)
            require_evidence(
                self.evidence, [report_sha256], "the auditor's sign-off", EvidenceKind.AUDIT_REPORT
            )
            self._move(
                session,
                case,
                action="approve",
                to=Stage.AUDITOR_APPROVED,
                actor=actor,
                evidence=[report_sha256],
                note=note,
            )

    def grant(
        self, actor: Actor, application_id: int, *, foundation: TxSender, csr_pem: bytes | None = None
    ) -> int:
        """The foundation issues the manufacturer root certificate (for the CSR's key, or a key made
        in the manufacturer's encrypted keystore) and grants the licence on chain with the
        certificate's SHA-256 and the case's whole file as evidence. Re-run after a crash, it
        reuses the certificate and adopts a grant that reached the chain."""
        actor.require(FOUNDATION, "grant a manufacturer licence")
        if foundation.account.address.lower() != actor.address.lower():
            raise NotPermitted("the licence must be granted with the acting foundation key")
        with self.sessions() as session:
            case = self._case(session, application_id)
            self._require_stage(case, "grant", Stage.AUDITOR_APPROVED)
            holder, name = Web3.to_checksum_address(case.applicant), case.questionnaire["company_name"]
        functions = self.contracts.manufacturer_license.functions
        granted = int(functions.licenceIdOf(holder).call())
        # The certificate names the licence id, so it is issued for the id the grant will get.
        licence_id = granted or int(functions.licenceCount().call()) + 1
        root = self.authority.issue_manufacturer_root(
            holder=holder, name=name, licence_id=licence_id, csr_pem=csr_pem
        )
        root_fingerprint = fingerprint(root)
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_stage(case, "grant", Stage.AUDITOR_APPROVED)
            anchored = rfc8785.dumps(self._export(session, case))
            evidence = hashlib.sha256(anchored).digest()
            if granted:
                self._adopt_grant(granted, root_fingerprint, evidence)
            else:
                granted = actions.grant_manufacturer_licence(
                    self.contracts,
                    foundation,
                    manufacturer=holder,
                    name=name,
                    root_cert_fingerprint=root_fingerprint,
                    evidence_hash=evidence,
                )
                if granted != licence_id:
                    raise ChainError(
                        f"the chain granted licence {granted}, but the root certificate names licence "
                        f"{licence_id}: another grant came in between; revoke licence {granted} and re-run"
                    )
            case.licence_id, case.root_cert_fingerprint = licence_id, root_fingerprint.hex()
            case.anchored_case_file = anchored.decode()
            self._move(
                session,
                case,
                action="grant",
                to=Stage.LICENSED,
                actor=actor,
                evidence=[evidence.hex()],
                note=f"manufacturer licence {licence_id}, root certificate SHA-256 {root_fingerprint.hex()}",
            )
            return licence_id

    def _adopt_grant(self, licence_id: int, root_fingerprint: bytes, evidence: bytes) -> None:
        """An earlier run's grant reached the chain but not the database: it must be this case's."""
        licence = read_manufacturer_licence(self.contracts, licence_id)
        if (licence.root_cert_fingerprint, licence.evidence_hash) != (root_fingerprint, evidence):
            raise ChainError(
                f"manufacturer licence {licence_id} on chain records another root certificate or case "
                "file than this application's; it was not granted from this case"
            )

    def reject(self, actor: Actor, application_id: int, *, reason: str) -> None:
        actor.require(FOUNDATION, "reject an application")
        if not reason.strip():
            raise TransitionRefused("a rejection needs its reasons")
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_stage(
                case, "reject", *(s for s in Stage if s not in (Stage.LICENSED, Stage.REJECTED))
            )
            self._move(session, case, action="reject", to=Stage.REJECTED, actor=actor, note=reason)

    # -- reading ----------------------------------------------------------------------------

    def can_read(self, actor: Actor, application_id: int) -> bool:
        with self.sessions() as session:
            case = self._case(session, application_id)
            return may_read(actor, case.applicant, case.auditor)

    def visible_to(self, actor: Actor) -> list[dict[str, Any]]:
        """The applications an actor may see (see `may_read`)."""
        with self.sessions() as session:
            query = select(ManufacturerApplication).order_by(ManufacturerApplication.id)
            if not ({FOUNDATION, COMMITTEE} & actor.roles):
                query = query.where(
                    (ManufacturerApplication.applicant == actor.address)
                    | (ManufacturerApplication.auditor == actor.address)
                )
            return [
                {"application": c.id, "applicant": c.applicant, "stage": c.stage, "licence_id": c.licence_id}
                for c in session.scalars(query)
            ]

    def _export(self, session: Session, case: ManufacturerApplication) -> dict[str, Any]:
        return {
            "application": case.id,
            "applicant": case.applicant,
            "stage": case.stage,
            "questionnaire": case.questionnaire,
            "checklist_version": case.checklist_version,
            "mou_sha256": case.mou_sha256,
            "mou_signature": case.mou_signature,
            "mou_countersignature": case.mou_countersignature,
            "auditor": case.auditor,
            "licence_id": case.licence_id,
            "root_cert_fingerprint": case.root_cert_fingerprint,
            "timeline": timeline(session, CASE_KIND, case.id),
        }
