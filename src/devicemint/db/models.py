"""Database models.

The chain is the source of truth for certificates; these tables hold what the chain does not:
the certificate documents (content-addressed), each factory batch with its Merkle tree, and the
transaction journal that lets an interrupted mint finish without minting anything twice.
One database serves one deployment; `Meta` records which.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class Document(Base):
    """A certificate document, addressed by the SHA-256 of its canonical JSON."""

    __tablename__ = "documents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class Batch(Base):
    """One factory batch file: one Merkle root, one on-chain batch, many mint transactions."""

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("file_sha256", "device_licence_id", name="uq_batch_file_licence"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_sha256: Mapped[str] = mapped_column(String(64))
    source_name: Mapped[str] = mapped_column(String(512))
    device_licence_id: Mapped[int] = mapped_column(Integer, index=True)
    device_count: Mapped[int] = mapped_column(Integer)
    # Set once every row is validated (None while the intake transaction is open).
    merkle_root: Mapped[str | None] = mapped_column(String(66), unique=True)
    tree: Mapped[bytes] = mapped_column(LargeBinary)
    uri: Mapped[str] = mapped_column(String(512))
    # Assigned by the contract when the batch is opened on chain.
    chain_batch_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    # validated -> opened -> minted
    status: Mapped[str] = mapped_column(String(16), default="validated")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    minted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Certificate(Base):
    """One device of a batch: its identity keys, its document and whether it is minted yet."""

    __tablename__ = "certificates"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    serial_number: Mapped[str] = mapped_column(String(64), unique=True)
    imei: Mapped[str] = mapped_column(String(15), unique=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    # Position of the device in its batch file (0-based), so mints follow file order.
    position: Mapped[int] = mapped_column(Integer)
    document_sha256: Mapped[str] = mapped_column(ForeignKey("documents.sha256"))
    # The journalled transaction currently meant to mint this device, if any.
    pending_tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"), index=True)
    minted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    mint_tx_hash: Mapped[str | None] = mapped_column(String(66))
    minted_block: Mapped[int | None] = mapped_column(BigInteger)
    # The device's X.509 certificate (DER), issued by its manufacturer root at intake, and its
    # serial in hex (what a CRL lists).
    x509_der: Mapped[bytes | None] = mapped_column(LargeBinary)
    x509_serial: Mapped[str | None] = mapped_column(String(42), index=True)


class ChainTx(Base):
    """Write-ahead journal of every transaction we sign: stored before it is sent.

    A process killed between send and receipt leaves the signed bytes here; the next run looks
    up the receipt, re-broadcasts the same bytes (same nonce, so it cannot be applied twice), or
    learns that the nonce went elsewhere and plans those devices again.
    """

    __tablename__ = "chain_txs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    purpose: Mapped[str] = mapped_column(String(32))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), index=True)
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    device_count: Mapped[int] = mapped_column(Integer, default=0)
    # signed -> confirmed | reverted | dropped
    status: Mapped[str] = mapped_column(String(16), default="signed", index=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
