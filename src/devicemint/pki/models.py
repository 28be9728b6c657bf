"""The authority's records: CA certificates it issued, revocations, and the CRLs it published.

Device certificates live beside their certificate rows (`certificates.x509_der`); keys never
enter the database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from devicemint.db.models import Base, utc_now

FOUNDATION_ROOT = "foundation_root"
MANUFACTURER_ROOT = "manufacturer_root"


class CaCertificate(Base):
    """The foundation root or a manufacturer root, addressed by its SHA-256 fingerprint."""

    __tablename__ = "ca_certificates"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), index=True)
    # For a manufacturer root: the licence it was issued for and the holder's address.
    manufacturer_licence_id: Mapped[int | None] = mapped_column(Integer, index=True)
    holder: Mapped[str | None] = mapped_column(String(42), index=True)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Revocation(Base):
    """A certificate withdrawn by its issuer: a manufacturer root or a device certificate."""

    __tablename__ = "x509_revocations"
    __table_args__ = (UniqueConstraint("issuer_fingerprint", "serial", name="uq_revocation_serial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issuer_fingerprint: Mapped[str] = mapped_column(ForeignKey("ca_certificates.fingerprint"), index=True)
    # Hex, as openssl prints serials; up to 20 octets (RFC 5280).
    serial: Mapped[str] = mapped_column(String(42))
    subject: Mapped[str] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(String(32))
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class PublishedCrl(Base):
    """Every CRL written, newest number last; the API serves the newest of each issuer."""

    __tablename__ = "x509_crls"
    __table_args__ = (UniqueConstraint("issuer_fingerprint", "number", name="uq_crl_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issuer_fingerprint: Mapped[str] = mapped_column(ForeignKey("ca_certificates.fingerprint"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    this_update: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_update: Mapped[datetime] = mapped_column(DateTime(timezone=True))
