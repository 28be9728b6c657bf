"""Tables of the onboarding case files. The chain holds the decisions; these hold the file."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text
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
