"""The indexer's tables: every event of the programme's contracts, the blocks they came from,
and the projections read by the API (devices, grants, batches, licences).

Everything here is a cache of the chain: `devicemint index --rebuild` drops it and builds it
again from the deployment block, and the result is the same row for row. So no column holds a
wall-clock time or an autoincrement id; times are block timestamps.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from devicemint.db.models import Base


class ChainEvent(Base):
    """One log of our contracts, decoded; `subject` names what it is about (device:0x..,
    batch:N, device_licence:N, manufacturer_licence:N, proposal:N, account:0x.., committee)."""

    __tablename__ = "chain_events"
    __table_args__ = (Index("ix_chain_events_subject", "subject", "block_number", "log_index"),)

    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_hash: Mapped[str] = mapped_column(String(66))
    block_time: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66), index=True)
    contract: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(80))
    # Canonical JSON (sorted keys) of the decoded arguments.
    args: Mapped[str] = mapped_column(Text)


class IndexedBlock(Base):
    """A block the indexer took events from, kept to find the
    common ancestor when the chain reorganises."""

    __tablename__ = "indexed_blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str] = mapped_column(String(66))
    timestamp: Mapped[int] = mapped_column(BigInteger)


class IndexerCursor(Base):
    """How far the indexer got: every event up to and including this block is in the database."""

    __tablename__ = "indexer_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))


class DeviceState(Base):
    """A certificate as the chain has it now."""

    __tablename__ = "device_states"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    batch_id: Mapped[int] = mapped_column(Integer, index=True)
    device_licence_id: Mapped[int] = mapped_column(Integer, index=True)
    stage: Mapped[str] = mapped_column(String(16), default="active")
    factory_resets: Mapped[int] = mapped_column(Integer, default=0)
    # The version of the last OTA update; None while the device runs its initial firmware.
    firmware_version: Mapped[str | None] = mapped_column(String(64))
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    minted_block: Mapped[int] = mapped_column(BigInteger, index=True)
    minted_at: Mapped[int] = mapped_column(BigInteger)
    last_block: Mapped[int] = mapped_column(BigInteger)


class DeviceGrant(Base):
    """A live authorisation (expiry checked when read: an expired grant counts as absent)."""

    __tablename__ = "device_grants"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    grantee: Mapped[str] = mapped_column(String(42), primary_key=True)
    permissions: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(BigInteger)


class BatchState(Base):
    __tablename__ = "batch_states"

    batch_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_licence_id: Mapped[int] = mapped_column(Integer, index=True)
    merkle_root: Mapped[str] = mapped_column(String(66))
    device_count: Mapped[int] = mapped_column(Integer)
    minted: Mapped[int] = mapped_column(Integer, default=0)
    uri: Mapped[str] = mapped_column(Text)
    opened_block: Mapped[int] = mapped_column(BigInteger)


class DeviceLicenceState(Base):
    __tablename__ = "device_licence_states"

    licence_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str] = mapped_column(String(42), index=True)
    design_hash: Mapped[str] = mapped_column(String(66))
    model: Mapped[str] = mapped_column(Text)
    revision: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    evidence_hash: Mapped[str] = mapped_column(String(66))
    issued_at: Mapped[int] = mapped_column(BigInteger)
    reason_hash: Mapped[str | None] = mapped_column(String(66))
    last_block: Mapped[int] = mapped_column(BigInteger)


class FirmwareRelease(Base):
    __tablename__ = "firmware_releases"

    device_licence_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    image_hash: Mapped[str] = mapped_column(String(66))
    published_block: Mapped[int] = mapped_column(BigInteger)


class ManufacturerLicenceState(Base):
    __tablename__ = "manufacturer_licence_states"

    licence_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str] = mapped_column(String(42), index=True)
    name: Mapped[str] = mapped_column(Text)
    root_cert_fingerprint: Mapped[str] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(16))
    # Revoked for cause (not renounced): reaches every certificate minted under it.
    for_cause: Mapped[bool] = mapped_column(Boolean, default=False)
    evidence_hash: Mapped[str] = mapped_column(String(66))
    granted_at: Mapped[int] = mapped_column(BigInteger)
    reason_hash: Mapped[str | None] = mapped_column(String(66))
    last_block: Mapped[int] = mapped_column(BigInteger)
