"""The device application: one hardware design from its dossier to a Device License.

Stages: the manufacturer submits the dossier (its files give the `design_hash`) and its
certifications; the foundation assigns approved auditors; the hardware & security auditor marks
every checklist item (a failure sends the design to remediation and back, each round kept); the
CX auditor assesses the experience from unboxing to onboarding; then the foundation or a
committee member tables a proposal on chain anchoring the whole case file, the committee votes,
and quorum issues the Device License (or the votes reject it, with reasons).

A design change is a new application naming the licence it changes; the old licence stays in
force for the old design only, since the chain binds each licence to exactly one design hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import date
from enum import StrEnum
from typing import Any

import rfc8785
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_keys.exceptions import BadSignature
from hexbytes import HexBytes
from rlp.exceptions import RLPException
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception

from devicemint.chain.deployments import Contracts
from devicemint.chain.tx import TxSender, explain_revert
from devicemint.db.session import transaction
from devicemint.errors import ChainError, NotFound
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
from devicemint.onboarding.checklist import CURRENT_VERSION, ItemResult, check_results, load_checklist
from devicemint.onboarding.design import (
    CertificationIn,
    CxAssessmentIn,
    DesignSubmission,
    DossierFile,
    HardwareAuditIn,
    RemediationIn,
    design_hash,
    dossier_diff,
    load_cx_rubric,
    score_cx,
)
from devicemint.onboarding.evidence import EvidenceKind, EvidenceStore
from devicemint.onboarding.models import AuditRound, CaseEvent, Certification, DeviceApplication

CASE_KIND = "device"


class Stage(StrEnum):
    DOSSIER_SUBMITTED = "dossier_submitted"
    HARDWARE_AUDIT = "hardware_audit"
    HARDWARE_REMEDIATION = "hardware_remediation"
    CX_ASSESSMENT = "cx_assessment"
    CX_REMEDIATION = "cx_remediation"
    INTEGRATION_REVIEW = "integration_review"
    COMMITTEE_VOTE = "committee_vote"
    LICENSED = "licensed"
    REJECTED = "rejected"


_MISSING = {
    Stage.DOSSIER_SUBMITTED: "the manufacturer to add a current certification and submit the design for audit",
    Stage.HARDWARE_AUDIT: "the assigned hardware & security auditor's audit",
    Stage.HARDWARE_REMEDIATION: "the manufacturer's remediation of the failed hardware & security audit",
    Stage.CX_ASSESSMENT: "the assigned CX auditor's assessment",
    Stage.CX_REMEDIATION: "the manufacturer's remediation of the failed CX assessment",
    Stage.INTEGRATION_REVIEW: "the foundation or a committee member to table the proposal on chain",
    Stage.COMMITTEE_VOTE: "the committee's votes to reach quorum",
    Stage.LICENSED: "nothing: the Device License is issued",
    Stage.REJECTED: "nothing: the application was rejected",
}
_OPEN = tuple(s for s in Stage if s not in (Stage.LICENSED, Stage.REJECTED))
_BEFORE_VOTE = tuple(s for s in _OPEN if s is not Stage.COMMITTEE_VOTE)
# On-chain ProposalStatus values.
_PENDING, _EXECUTED, _REJECTED = 1, 2, 3
_LICENCE_ACTIVE = 1  # LicenceStatus.Active


class DeviceOnboarding(CaseFile[DeviceApplication]):
    """The device application's actions; each one is a single database transaction."""

    kind = CASE_KIND
    table = DeviceApplication
    waiting_for = _MISSING

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        contracts: Contracts,
        evidence: EvidenceStore,
        auditors: AuditorRegistry,
        w3: Web3,
    ) -> None:
        self.sessions = sessions
        self.contracts = contracts
        self.evidence = evidence
        self.auditors = auditors
        self.w3 = w3

    # -- helpers ----------------------------------------------------------------------------

    def _check_dossier(self, files: list[DossierFile]) -> None:
        for f in files:
            require_evidence(self.evidence, [f.sha256], f"dossier file {f.name!r}", f.role.evidence_kind)

    def _require_assigned(
        self, actor: Actor, case: DeviceApplication, scope: AuditScope, action: str
    ) -> None:
        assigned = case.hardware_auditor if scope is AuditScope.HARDWARE_SECURITY else case.cx_auditor
        if assigned is None or not actor.is_(assigned):
            raise NotPermitted(
                f"{actor.address} may not {action}: device application {case.id}'s {scope.value} "
                f"auditor is {assigned or 'not yet assigned'}"
            )
        self.auditors.require(actor.address, scope, action)

    def _design_licence(self, design: str) -> int:
        return int(self.contracts.device_license.functions.licenceOfDesign(bytes.fromhex(design)).call())

    # -- the manufacturer's dossier -----------------------------------------------------------

    def submit(self, actor: Actor, submission: DesignSubmission) -> int:
        """Open a device application; only a licensed manufacturer may, for its own designs."""
        functions = self.contracts.manufacturer_license.functions
        applicant = Web3.to_checksum_address(actor.address)
        licence_id = int(functions.licenceIdOf(applicant).call())
        if licence_id == 0 or not functions.isActive(applicant).call():
            raise NotPermitted(
                f"{actor.address} may not submit a design: it holds no active manufacturer licence"
            )
        self._check_dossier(submission.files)
        design = design_hash(submission.model, submission.revision, submission.files)
        if existing := self._design_licence(design):
            raise TransitionRefused(f"design {design} is already licensed (device licence {existing})")
        if submission.supersedes_licence_id is not None:
            self._check_supersedes(applicant, submission.supersedes_licence_id, design)
        with transaction(self.sessions) as session:
            open_dup = session.scalar(
                select(DeviceApplication.id).where(
                    DeviceApplication.design_hash == design,
                    DeviceApplication.stage.in_([s.value for s in _OPEN]),
                )
            )
            if open_dup is not None:
                raise TransitionRefused(
                    f"design {design} is already under review in device application {open_dup}"
                )
            case = DeviceApplication(
                applicant=applicant,
                manufacturer_licence_id=licence_id,
                stage=Stage.DOSSIER_SUBMITTED.value,
                model=submission.model,
                revision=submission.revision,
                dossier=[f.model_dump(mode="json") for f in submission.files],
                design_hash=design,
                supersedes_licence_id=submission.supersedes_licence_id,
            )
            evidence = [f.sha256 for f in submission.files]
            open_case(session, CASE_KIND, case, action="submit_design", actor=actor, evidence=evidence)
            return case.id

    def _check_supersedes(self, applicant: str, licence_id: int, design: str) -> None:
        licence = self.contracts.device_license.functions.licenceSummary(licence_id).call()
        holder, licensed_design, active = licence[0], bytes(licence[1]).hex(), licence[2] == _LICENCE_ACTIVE
        if int(holder, 16) == 0:
            raise TransitionRefused(
                f"device licence {licence_id} does not exist; a design change names a licence"
            )
        if holder.lower() != applicant.lower():
            raise NotPermitted(f"device licence {licence_id} is held by {holder}, not {applicant}")
        if not active:
            raise TransitionRefused(
                f"device licence {licence_id} is not active; a design change changes a licensed design"
            )
        if licensed_design == design:
            raise TransitionRefused(f"the dossier is the design device licence {licence_id} already covers")

    def add_certification(self, actor: Actor, application_id: int, cert: CertificationIn) -> None:
        require_evidence(
            self.evidence,
            [cert.document_sha256],
            f"{cert.scheme.value} certification",
            EvidenceKind.CERTIFICATION,
        )
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_applicant(actor, case, "add a certification")
            self._require_stage(case, "add_certification", *_BEFORE_VOTE)
            session.add(Certification(application_id=case.id, **cert.model_dump()))
            self._move(
                session,
                case,
                action="add_certification",
                to=Stage(case.stage),
                actor=actor,
                evidence=[cert.document_sha256],
                note=f"{cert.scheme.value} {cert.identifier}",
            )

    def submit_for_audit(self, actor: Actor, application_id: int, *, today: date | None = None) -> None:
        today = today or date.today()
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_applicant(actor, case, "submit the design for audit")
            self._require_stage(case, "submit_for_audit", Stage.DOSSIER_SUBMITTED)
            certs = session.scalars(
                select(Certification).where(Certification.application_id == case.id)
            ).all()
            if not any(c.expires_on is None or c.expires_on >= today for c in certs):
                raise TransitionRefused(
                    f"device application {case.id} has no current certification; add one (FCC, CE, ...) first"
                )
            self._move(session, case, action="submit_for_audit", to=Stage.HARDWARE_AUDIT, actor=actor)

    # -- the foundation's assignments -------------------------------------------------------------

    def assign_auditor(self, actor: Actor, application_id: int, *, scope: AuditScope, auditor: str) -> None:
        actor.require(FOUNDATION, "assign auditors")
        if scope is AuditScope.INTEGRATION:
            raise TransitionRefused(
                "the integration audit is the committee's vote; assign hardware_security or cx"
            )
        auditor = checksum(auditor, "auditor address")
        self.auditors.require(auditor, scope, f"audit device application {application_id}")
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_stage(case, "assign_auditor", *_BEFORE_VOTE)
            if scope is AuditScope.HARDWARE_SECURITY:
                case.hardware_auditor = auditor
            else:
                case.cx_auditor = auditor
            self._move(
                session,
                case,
                action="assign_auditor",
                to=Stage(case.stage),
                actor=actor,
                note=f"{scope.value}: {auditor}",
            )

    # -- the auditors' rounds -----------------------------------------------------------------

    def _next_round(self, session: Session, case: DeviceApplication, scope: AuditScope) -> int:
        rounds = session.scalars(
            select(AuditRound.round).where(
                AuditRound.application_id == case.id, AuditRound.scope == scope.value
            )
        ).all()
        return max(rounds, default=0) + 1

    def record_hardware_audit(self, actor: Actor, application_id: int, audit: HardwareAuditIn) -> bool:
        """Returns whether the design passed; a failure sends it to remediation."""
        checklist = load_checklist(CURRENT_VERSION)
        results = [ItemResult(i.item_id, i.mark, tuple(i.evidence), i.note) for i in audit.items]
        passed = check_results(checklist, results)
        evidence = [audit.report_sha256, *sorted({h for i in audit.items for h in i.evidence})]
        require_evidence(self.evidence, evidence, "the hardware & security audit")
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_assigned(
                actor, case, AuditScope.HARDWARE_SECURITY, "record the hardware & security audit"
            )
            self._require_stage(case, "record_hardware_audit", Stage.HARDWARE_AUDIT)
            number = self._next_round(session, case, AuditScope.HARDWARE_SECURITY)
            failed = [i.item_id for i in audit.items if i.mark.value == "fail"]
            session.add(
                AuditRound(
                    application_id=case.id,
                    scope=AuditScope.HARDWARE_SECURITY.value,
                    round=number,
                    auditor=actor.address,
                    passed=passed,
                    results={
                        "checklist_version": checklist.version,
                        "design_hash": case.design_hash,
                        "items": [i.model_dump(mode="json") for i in audit.items],
                    },
                    report_sha256=audit.report_sha256,
                    summary=audit.summary,
                )
            )
            self._move(
                session,
                case,
                action="record_hardware_audit",
                to=Stage.CX_ASSESSMENT if passed else Stage.HARDWARE_REMEDIATION,
                actor=actor,
                evidence=evidence,
                note=f"round {number}: " + ("pass" if passed else f"fail ({', '.join(failed)})"),
            )
            return passed

    def record_cx_assessment(self, actor: Actor, application_id: int, assessment: CxAssessmentIn) -> bool:
        rubric = load_cx_rubric()
        passed, problems = score_cx(rubric, assessment)
        if problems:
            raise TransitionRefused("the CX assessment is incomplete: " + "; ".join(problems))
        require_evidence(
            self.evidence,
            [v.sha256 for v in assessment.videos],
            "the CX assessment videos",
            EvidenceKind.CX_VIDEO,
        )
        require_evidence(self.evidence, [assessment.report_sha256], "the CX assessment report")
        evidence = [assessment.report_sha256, *(v.sha256 for v in assessment.videos)]
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_assigned(actor, case, AuditScope.CX, "record the CX assessment")
            self._require_stage(case, "record_cx_assessment", Stage.CX_ASSESSMENT)
            number = self._next_round(session, case, AuditScope.CX)
            session.add(
                AuditRound(
                    application_id=case.id,
                    scope=AuditScope.CX.value,
                    round=number,
                    auditor=actor.address,
                    passed=passed,
                    results={
                        "rubric_version": rubric.version,
                        **assessment.model_dump(mode="json", exclude={"report_sha256", "summary"}),
                    },
                    report_sha256=assessment.report_sha256,
                    summary=assessment.summary,
                )
            )
            self._move(
                session,
                case,
                action="record_cx_assessment",
                to=Stage.INTEGRATION_REVIEW if passed else Stage.CX_REMEDIATION,
                actor=actor,
                evidence=evidence,
                note=f"round {number}: {'pass' if passed else 'fail'}",
            )
            return passed

    def remediate(self, actor: Actor, application_id: int, remediation: RemediationIn) -> str:
        """Answer a failed audit; returns the stage the design goes back to. A new dossier gives
        a new design hash and always goes back to the hardware & security audit."""
        require_evidence(self.evidence, remediation.evidence, "the remediation")
        if remediation.files is not None:
            self._check_dossier(remediation.files)
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_applicant(actor, case, "remediate")
            self._require_stage(case, "remediate", Stage.HARDWARE_REMEDIATION, Stage.CX_REMEDIATION)
            back_to = (
                Stage.HARDWARE_AUDIT if case.stage == Stage.HARDWARE_REMEDIATION else Stage.CX_ASSESSMENT
            )
            note = remediation.note
            if remediation.files is not None:
                new_hash = design_hash(case.model, case.revision, remediation.files)
                if licence := self._design_licence(new_hash):
                    raise TransitionRefused(
                        f"design {new_hash} is already licensed (device licence {licence})"
                    )
                note += f" (dossier changed: design {case.design_hash} -> {new_hash})"
                case.dossier = [f.model_dump(mode="json") for f in remediation.files]
                case.design_hash, back_to = new_hash, Stage.HARDWARE_AUDIT
            self._move(
                session,
                case,
                action="remediate",
                to=back_to,
                actor=actor,
                evidence=list(remediation.evidence),
                note=note,
            )
            return back_to.value

    # -- the integration audit: the committee's vote on chain ---------------------------------

    def propose(self, actor: Actor, application_id: int, *, proposer: TxSender) -> int:
        """Table the Device License on chain, anchoring the case file; returns the proposal id."""
        if not ({FOUNDATION, COMMITTEE} & actor.roles):
            raise NotPermitted(
                f"{actor.address} may not table a proposal: that needs the foundation or a committee member"
            )
        if not actor.is_(proposer.account.address):
            raise NotPermitted("the proposal must be tabled with the acting party's own key")
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_stage(case, "propose", Stage.INTEGRATION_REVIEW)
            anchored = rfc8785.dumps(self._export(session, case))
            evidence = hashlib.sha256(anchored).digest()
            receipt = proposer.transact(
                self.contracts.device_license.functions.proposeIssue(
                    Web3.to_checksum_address(case.applicant),
                    bytes.fromhex(case.design_hash),
                    case.model,
                    case.revision,
                    evidence,
                ),
                what=f"tabling device application {case.id}",
            )
            (created,) = self.contracts.device_license.events.ProposalCreated().process_receipt(receipt)
            case.proposal_id = int(created["args"]["proposalId"])
            case.anchored_case_file = anchored.decode()
            self._move(
                session,
                case,
                action="propose",
                to=Stage.COMMITTEE_VOTE,
                actor=actor,
                evidence=[evidence.hex()],
                note=f"proposal {case.proposal_id}",
                tx_hash=receipt["transactionHash"].to_0x_hex(),
            )
            return case.proposal_id

    def vote_call(self, application_id: int, *, support: bool, voter: str | None = None) -> dict[str, Any]:
        """The transaction a committee member's wallet signs to vote: to, data, chain id and, for a
        `voter` whose vote the contract would take now, a gas limit (the vote that reaches quorum
        issues the licence, which costs several times a plain vote)."""
        with self.sessions() as session:
            case = self._case(session, application_id)
            if case.proposal_id is None:
                raise TransitionRefused(
                    f"device application {case.id} has no proposal yet; {_MISSING[Stage(case.stage)]}"
                )
            proposal_id = case.proposal_id
        to = self.contracts.device_license.address
        data = self.contracts.device_license.functions.vote(proposal_id, support)._encode_transaction_data()
        gas = None
        if voter is not None and Web3.is_address(voter):
            try:
                gas = int(self.w3.eth.estimate_gas({"from": voter, "to": to, "data": data}) * 1.25) + 10_000
            except ContractLogicError:
                gas = None  # the contract would refuse this voter now; casting says why
        return {
            "to": to,
            "data": data,
            "chain_id": self.w3.eth.chain_id,
            "proposal_id": proposal_id,
            "gas": gas,
        }

    def cast_vote(
        self, actor: Actor, application_id: int, *, signed_transaction: str, reason: str = ""
    ) -> str:
        """Relay a committee member's own signed vote: checked against the case and preflighted
        so a refusal (not a member, double vote, voting closed) says why before it is sent."""
        raw = HexBytes(signed_transaction)
        voter, to, data = _decode_signed(raw)
        if not actor.is_(voter):
            raise NotPermitted(f"the vote is signed by {voter}, not by {actor.address}")
        with self.sessions() as session:
            case = self._case(session, application_id)
            self._require_stage(case, "vote", Stage.COMMITTEE_VOTE)
            proposal_id = case.proposal_id
        device_license = self.contracts.device_license
        if to is None or to.lower() != device_license.address.lower():
            raise TransitionRefused("the signed transaction is not addressed to the DeviceLicense contract")
        try:
            function, args = device_license.decode_function_input(data)
        except ValueError as exc:
            raise TransitionRefused("the signed transaction is not a vote") from exc
        if function.fn_name != "vote" or args["proposalId"] != proposal_id:
            raise TransitionRefused(f"the signed transaction is not a vote on proposal {proposal_id}")
        try:
            self.w3.eth.call({"from": voter, "to": to, "data": data})
        except ContractLogicError as exc:
            raise TransitionRefused(f"the vote is refused by the contract: {explain_revert(exc)}") from exc
        try:
            sent = self.w3.eth.send_raw_transaction(raw)
            receipt = self.w3.eth.wait_for_transaction_receipt(sent, timeout=120)
        except (Web3Exception, OSError) as exc:
            raise ChainError(f"the vote could not be sent: {exc}") from exc
        tx_hash = sent.to_0x_hex()
        if receipt["status"] != 1:
            raise TransitionRefused(f"the vote reverted in transaction {tx_hash}")
        self._record_votes(application_id, reasons={tx_hash: reason})
        self.sync(actor, application_id)  # this vote may have reached quorum or rejected it
        return tx_hash

    def vote(
        self, actor: Actor, application_id: int, *, voter: TxSender, support: bool, reason: str = ""
    ) -> str:
        """Sign a vote with the member's own key and cast it (the CLI's way)."""
        call = self.vote_call(application_id, support=support, voter=voter.account.address)
        signed = voter.sign_data(
            to=call["to"],
            data=bytes.fromhex(call["data"][2:]),
            nonce=voter.next_nonce(),
            gas=call["gas"] or 500_000,
        )
        return self.cast_vote(
            actor, application_id, signed_transaction="0x" + signed.raw.hex(), reason=reason
        )

    def sync(self, actor: Actor, application_id: int) -> str:
        """Bring the case up to the chain: votes cast from any wallet, quorum, rejection, or a
        vote that closed without quorum (back to integration review). Returns the stage."""
        self._record_votes(application_id, reasons={})
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            if case.stage != Stage.COMMITTEE_VOTE or case.proposal_id is None:
                return case.stage
            proposal = self.contracts.device_license.functions.proposal(case.proposal_id).call()
            status, deadline, quorum, yes, no, licence_id = (
                proposal[1],
                proposal[3],
                proposal[4],
                proposal[5],
                proposal[6],
                proposal[7],
            )
            tally = f"{yes} yes, {no} no, quorum {quorum}"
            if status == _EXECUTED:
                case.licence_id = int(licence_id)
                self._move(
                    session,
                    case,
                    action="licence_issued",
                    to=Stage.LICENSED,
                    actor=actor,
                    note=f"device licence {licence_id} ({tally})",
                )
            elif status == _REJECTED:
                reasons = [e.note for e in self._vote_events(session, case) if e.note.startswith("no")]
                self._move(
                    session,
                    case,
                    action="rejected_by_vote",
                    to=Stage.REJECTED,
                    actor=actor,
                    note=f"{tally}; reasons: " + " | ".join(reasons),
                )
            elif status == _PENDING and self.w3.eth.get_block("latest")["timestamp"] > deadline:
                self._move(
                    session,
                    case,
                    action="vote_closed",
                    to=Stage.INTEGRATION_REVIEW,
                    actor=actor,
                    note=f"voting on proposal {case.proposal_id} closed without quorum ({tally}); table it again",
                )
                case.proposal_id = None
            return case.stage

    def _vote_events(self, session: Session, case: DeviceApplication) -> list[CaseEvent]:
        return list(
            session.scalars(
                select(CaseEvent)
                .where(
                    CaseEvent.case_kind == CASE_KIND, CaseEvent.case_id == case.id, CaseEvent.action == "vote"
                )
                .order_by(CaseEvent.id)
            )
        )

    def _record_votes(self, application_id: int, *, reasons: dict[str, str]) -> None:
        """Copy the proposal's VoteCast events into the timeline (each once, by transaction)."""
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            if case.proposal_id is None:
                return
            seen = {e.tx_hash for e in self._vote_events(session, case)}
            logs = self.contracts.device_license.events.VoteCast().get_logs(
                from_block=0, argument_filters={"proposalId": case.proposal_id}
            )
            for log in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
                tx_hash = log["transactionHash"].to_0x_hex()
                if tx_hash in seen:
                    continue
                support = "yes" if log["args"]["support"] else "no"
                reason = reasons.get(tx_hash, "")
                self._move(
                    session,
                    case,
                    action="vote",
                    to=Stage(case.stage),
                    actor=Actor(log["args"]["voter"]),
                    note=f"{support}: {reason}" if reason else support,
                    tx_hash=tx_hash,
                )

    def reject(self, actor: Actor, application_id: int, *, reason: str) -> None:
        actor.require(FOUNDATION, "reject a device application")
        if not reason.strip():
            raise TransitionRefused("a rejection needs its reasons")
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_stage(case, "reject", *_BEFORE_VOTE)
            self._move(session, case, action="reject", to=Stage.REJECTED, actor=actor, note=reason)

    # -- reading --------------------------------------------------------------------------------

    def can_read(self, actor: Actor, application_id: int) -> bool:
        with self.sessions() as session:
            case = self._case(session, application_id)
            return may_read(actor, case.applicant, case.hardware_auditor, case.cx_auditor)

    def visible_to(self, actor: Actor) -> list[dict[str, Any]]:
        """The cases an actor may see: all for the foundation and committee, else its own or
        those it is assigned to audit."""
        with self.sessions() as session:
            query = select(DeviceApplication).order_by(DeviceApplication.id)
            if not ({FOUNDATION, COMMITTEE} & actor.roles):
                query = query.where(
                    (DeviceApplication.applicant == actor.address)
                    | (DeviceApplication.hardware_auditor == actor.address)
                    | (DeviceApplication.cx_auditor == actor.address)
                )
            return [_summary(c) for c in session.scalars(query)]

    def diff(self, application_id: int) -> dict[str, Any]:
        """For a design change: what changed against the licensed design's dossier."""
        with self.sessions() as session:
            case = self._case(session, application_id)
            if case.supersedes_licence_id is None:
                raise TransitionRefused(f"device application {case.id} is not a design change")
            licensed = session.scalar(
                select(DeviceApplication).where(DeviceApplication.licence_id == case.supersedes_licence_id)
            )
            if licensed is None:
                raise NotFound(
                    f"device licence {case.supersedes_licence_id} was not issued through this pipeline; no dossier to compare"
                )
            return {
                "licensed_application": licensed.id,
                "licensed_design_hash": licensed.design_hash,
                "design_hash": case.design_hash,
                **asdict(dossier_diff(licensed.dossier, case.dossier)),
            }

    def _export(self, session: Session, case: DeviceApplication) -> dict[str, Any]:
        certs = session.scalars(
            select(Certification).where(Certification.application_id == case.id).order_by(Certification.id)
        )
        rounds = session.scalars(
            select(AuditRound).where(AuditRound.application_id == case.id).order_by(AuditRound.id)
        )
        return {
            **_summary(case),
            "dossier": case.dossier,
            "certifications": [
                {
                    "scheme": c.scheme,
                    "identifier": c.identifier,
                    "issued_on": c.issued_on.isoformat(),
                    "expires_on": c.expires_on.isoformat() if c.expires_on else None,
                    "document_sha256": c.document_sha256,
                }
                for c in certs
            ],
            "audits": [
                {
                    "scope": r.scope,
                    "round": r.round,
                    "auditor": r.auditor,
                    "passed": r.passed,
                    "results": r.results,
                    "report_sha256": r.report_sha256,
                    "summary": r.summary,
                    "at": r.at.isoformat(),
                }
                for r in rounds
            ],
            "timeline": timeline(session, CASE_KIND, case.id),
        }


def _summary(case: DeviceApplication) -> dict[str, Any]:
    return {
        "application": case.id,
        "applicant": case.applicant,
        "manufacturer_licence_id": case.manufacturer_licence_id,
        "stage": case.stage,
        "model": case.model,
        "revision": case.revision,
        "design_hash": case.design_hash,
        "supersedes_licence_id": case.supersedes_licence_id,
        "hardware_auditor": case.hardware_auditor,
        "cx_auditor": case.cx_auditor,
        "proposal_id": case.proposal_id,
        "licence_id": case.licence_id,
    }


def _decode_signed(raw: HexBytes) -> tuple[str, str | None, bytes]:
    """(signer, to, data) of a signed EIP-1559/2930 transaction."""
    try:
        signer = Account.recover_transaction(raw)
        fields = TypedTransaction.from_bytes(raw).as_dict()
    except (ValueError, TypeError, KeyError, RLPException, BadSignature) as exc:
        raise TransitionRefused(f"the signed transaction cannot be decoded: {exc}") from exc
    to = fields.get("to")
    return signer, Web3.to_checksum_address(to) if to else None, bytes(fields.get("data", b""))
