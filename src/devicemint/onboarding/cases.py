"""What every onboarding case file shares: actors, refusals and the recorded transitions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from devicemint.db.models import utc_now
from devicemint.db.session import transaction
from devicemint.errors import DevicemintError, NotFound
from devicemint.onboarding.evidence import EvidenceKind, EvidenceStore
from devicemint.onboarding.models import CaseEvent, DeviceApplication, ManufacturerApplication

FOUNDATION = "foundation"
COMMITTEE = "committee"
#: The stages of both kinds of application after which the case file is closed.
CLOSED_STAGES = ("licensed", "rejected")


def auditor_role(scope: str) -> str:
    """The role an approved auditor holds for one scope: hardware_security, cx or integration."""
    return f"auditor:{scope}"


class TransitionRefused(DevicemintError):
    """The case is not in a stage where this action can happen, or its input is incomplete."""

    exit_code = 2


class NotPermitted(DevicemintError):
    """The actor is not the party this action belongs to."""

    exit_code = 2


@dataclass(frozen=True)
class Actor:
    """Who acts: an address and the roles the programme gives it (see devicemint.auth)."""

    address: str
    roles: frozenset[str] = frozenset()

    def require(self, role: str, action: str) -> None:
        if role not in self.roles:
            raise NotPermitted(f"{self.address} may not {action}: that needs the {role} role")

    def is_(self, address: str) -> bool:
        return self.address.lower() == address.lower()


def may_read(actor: Actor, *parties: str | None) -> bool:
    """Whether an actor may read a case: the foundation and the committee read every case;
    anyone else only a case it is a party to (applicant, assigned auditor)."""
    if {FOUNDATION, COMMITTEE} & actor.roles:
        return True
    return any(p is not None and actor.is_(p) for p in parties)


def require_evidence(
    store: EvidenceStore, hashes: Iterable[str], what: str, kind: EvidenceKind | None = None
) -> None:
    """Every hash must name evidence already in the store (of `kind`, when given): a decision
    anchors only documents anyone with access can fetch and check."""
    for sha256 in hashes:
        if not store.exists(sha256):
            raise TransitionRefused(f"{what}: no evidence {sha256} in the store; upload it first")
        if kind is not None and (found := store.info(sha256).kind) is not kind:
            raise TransitionRefused(
                f"{what}: evidence {sha256} was uploaded as {found.value}, not {kind.value}"
            )


class Case(Protocol):
    id: int
    stage: str
    updated_at: Any


CaseT = TypeVar("CaseT", ManufacturerApplication, DeviceApplication)


class CaseFile(Generic[CaseT]):
    """What the actions of every kind of application share: load the case, check its stage,
    check the applicant, record a move. Subclasses name their kind, table and what each stage
    is waiting for."""

    sessions: sessionmaker[Session]
    evidence: EvidenceStore
    kind: ClassVar[str]
    table: ClassVar[type[Any]]
    waiting_for: ClassVar[Mapping[Any, str]]

    def _case(self, session: Session, application_id: int) -> CaseT:
        case: CaseT | None = session.get(self.table, application_id)
        if case is None:
            raise NotFound(f"no {self.kind} application {application_id}")
        return case

    def _require_stage(self, case: CaseT, action: str, *stages: StrEnum) -> None:
        require_stage(self.kind, case, action, tuple(s.value for s in stages), self.waiting_for[case.stage])

    def _move(
        self, session: Session, case: CaseT, *, action: str, to: StrEnum, actor: Actor, **kw: Any
    ) -> None:
        move(session, self.kind, case, action=action, to=to.value, actor=actor, **kw)

    def anchored_case_file(self, application_id: int) -> bytes:
        """The exact bytes whose SHA-256 the case's decision (licence or proposal) carries on chain."""
        with self.sessions() as session:
            case = self._case(session, application_id)
            if case.anchored_case_file is None:
                raise NotFound(f"{self.kind} application {case.id} has anchored no decision on chain yet")
            return case.anchored_case_file.encode()

    def add_evidence(
        self, actor: Actor, application_id: int, *, kind: EvidenceKind, hashes: list[str], note: str = ""
    ) -> None:
        """The applicant files evidence already in the store with its case (e.g. videos of the
        experience from unboxing to onboarding for the CX assessment): an event of the timeline,
        the stage unchanged, so the auditors and the foundation find it in the case file."""
        require_evidence(
            self.evidence, hashes, f"evidence for {self.kind} application {application_id}", kind
        )
        with transaction(self.sessions) as session:
            case = self._case(session, application_id)
            self._require_applicant(actor, case, "add evidence to the case")
            if case.stage in CLOSED_STAGES:
                raise TransitionRefused(
                    f"{self.kind} application {case.id} is {case.stage}; its case file takes no more evidence"
                )
            move(
                session,
                self.kind,
                case,
                action="add_evidence",
                to=case.stage,
                actor=actor,
                evidence=list(hashes),
                note=note or kind.value,
            )

    def can_read(self, actor: Actor, application_id: int) -> bool:
        raise NotImplementedError

    def require_readable(self, actor: Actor, application_id: int) -> None:
        """Refuse an actor that is not a party to the case (see `may_read`)."""
        if not self.can_read(actor, application_id):
            raise NotPermitted(f"{actor.address} is not a party to {self.kind} application {application_id}")

    def export(self, application_id: int) -> dict[str, Any]:
        """The whole case as JSON, with its timeline."""
        with self.sessions() as session:
            return self._export(session, self._case(session, application_id))

    def _export(self, session: Session, case: CaseT) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def _require_applicant(actor: Actor, case: CaseT, action: str) -> None:
        if not actor.is_(case.applicant):
            raise NotPermitted(f"{actor.address} may not {action}: only the applicant {case.applicant} may")


def require_stage(kind: str, case: Case, action: str, stages: tuple[str, ...], waiting_for: str) -> None:
    if case.stage not in stages:
        raise TransitionRefused(
            f"{kind} application {case.id} is in stage {case.stage}; {action!r} needs stage "
            f"{' or '.join(stages)}. Waiting for: {waiting_for}"
        )


def open_case(
    session: Session, kind: str, case: Case, *, action: str, actor: Actor, evidence: list[str] | None = None
) -> None:
    """Store a new case and record its opening as the first event of its timeline."""
    session.add(case)
    session.flush()
    session.add(
        CaseEvent(
            case_kind=kind,
            case_id=case.id,
            action=action,
            from_stage=None,
            to_stage=case.stage,
            actor=actor.address,
            evidence=evidence or [],
            note="",
        )
    )


def move(
    session: Session,
    kind: str,
    case: Case,
    *,
    action: str,
    to: str,
    actor: Actor,
    evidence: list[str] | None = None,
    note: str = "",
    tx_hash: str | None = None,
) -> None:
    """Record who moved the case, from which stage to which, on which evidence; then move it."""
    session.add(
        CaseEvent(
            case_kind=kind,
            case_id=case.id,
            action=action,
            from_stage=case.stage,
            to_stage=to,
            actor=actor.address,
            evidence=evidence or [],
            note=note,
            tx_hash=tx_hash,
        )
    )
    case.stage = to
    case.updated_at = utc_now()


def timeline(session: Session, kind: str, case_id: int) -> list[dict[str, Any]]:
    events = session.scalars(
        select(CaseEvent)
        .where(CaseEvent.case_kind == kind, CaseEvent.case_id == case_id)
        .order_by(CaseEvent.id)
    )
    return [
        {
            "action": e.action,
            "from": e.from_stage,
            "to": e.to_stage,
            "actor": e.actor,
            "at": e.at.isoformat(),
            "evidence": e.evidence,
            "note": e.note,
            "tx_hash": e.tx_hash,
        }
        for e in events
    ]
