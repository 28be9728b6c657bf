"""Tables of the onboarding case files. The chain holds the decisions; these hold the file."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from devicemint.db.models import Base, utc_now


class ManufacturerApplication(Base):
    """The case file from intake questionnaire to manufacturer licence."""

    __tablename__ = "manufacturer_applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    applicant: Mapped[str] = mapped_column(String(42), index=True)
    stage: Mapped[str] = mapped_column(String(32), index=True)
    questionnaire: Mapped[dict] = mapped_column(JSON)
    checklist_version: Mapped[int | None] = mapped_column(Integer)
    mou_sha256: Mapped[str | None] = mapped_column(String(64))
    mou_signature: Mapped[str | None] = mapped_column(String(132))
    mou_countersignature: Mapped[str | None] = mapped_column(String(132))
    auditor: Mapped[str | None] = mapped_column(String(42))
    licence_id: Mapped[int | None] = mapped_column(Integer)
    root_cert_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # The canonical case file whose SHA-256 the licence anchors on chain, kept byte for byte.
    anchored_case_file: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class CaseEvent(Base):
    """One transition of a case: who moved it, when, from where to where, on which evidence."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_kind: Mapped[str] = mapped_column(String(16))
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_stage: Mapped[str | None] = mapped_column(String(32))
    to_stage: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(42))
    evidence: Mapped[list] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class UsedSignatureNonce(Base):
    """Nonces of off-chain signatures (MOU) already consumed: a signature works once."""

    __tablename__ = "used_signature_nonces"

    signer: Mapped[str] = mapped_column(String(42), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(78), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ApprovedAuditor(Base):
    """An auditor the foundation approved, with the scopes it may audit in.

    Removing an auditor keeps the row (inactive) so past sign-offs still name who they were.
    """

    __tablename__ = "approved_auditors"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    approved_by: Mapped[str] = mapped_column(String(42))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class DeviceApplication(Base):
    """The case file of one hardware design, from dossier to Device License."""

    __tablename__ = "device_applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    applicant: Mapped[str] = mapped_column(String(42), index=True)
    manufacturer_licence_id: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(32), index=True)
    model: Mapped[str] = mapped_column(String(100))
    revision: Mapped[str] = mapped_column(String(100))
    dossier: Mapped[list] = mapped_column(JSON)
    design_hash: Mapped[str] = mapped_column(String(64), index=True)
    # A design change names the device licence of the design it changes.
    supersedes_licence_id: Mapped[int | None] = mapped_column(Integer)
    hardware_auditor: Mapped[str | None] = mapped_column(String(42), index=True)
    cx_auditor: Mapped[str | None] = mapped_column(String(42), index=True)
    proposal_id: Mapped[int | None] = mapped_column(Integer)
    licence_id: Mapped[int | None] = mapped_column(Integer)
    # The canonical case file whose SHA-256 the proposal anchors on chain, kept byte for byte.
    anchored_case_file: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Certification(Base):
    """A radio or industrial certification of a design (FCC, CE, ...), with its document."""

    __tablename__ = "certifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("device_applications.id"), index=True)
    scheme: Mapped[str] = mapped_column(String(16))
    identifier: Mapped[str] = mapped_column(String(100))
    issued_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    document_sha256: Mapped[str] = mapped_column(String(64))


class AuditRound(Base):
    """One audit of a device application (hardware & security, or CX); a failed round stays,
    so the history of failure, remediation and re-audit is kept."""

    __tablename__ = "audit_rounds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("device_applications.id"), index=True)
    scope: Mapped[str] = mapped_column(String(32))
    round: Mapped[int] = mapped_column(Integer)
    auditor: Mapped[str] = mapped_column(String(42))
    passed: Mapped[bool] = mapped_column(Boolean)
    # Checklist marks (hardware) or rubric scores and videos (CX), as submitted.
    results: Mapped[dict] = mapped_column(JSON)
    report_sha256: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
