"""Tables of the webhooks domain: who wants which events where, and the outbox of deliveries.

Unlike the indexer's tables these are not a cache of the chain: `devicemint index --rebuild`
leaves them alone, and the idempotency key (block hash and log index) keeps a rebuilt event
from being queued twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from devicemint.db.models import Base, utc_now


class WebhookSubscription(Base):
    """A party's wish to be told of some events at a URL."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The address that created it: only it (or the foundation) may see or change it.
    owner: Mapped[str] = mapped_column(String(42), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    # The HMAC key of the signatures. Kept in clear because the server must sign with it (a
    # hash, as for API keys, could only verify); shown to the owner once, at creation.
    secret: Mapped[str] = mapped_column(String(64))
    # Event names ("Transfer", "EndOfLife", ...) or ["*"] for every event.
    event_types: Mapped[list[str]] = mapped_column(JSON)
    # Optional filters: an exact subject ("device:0xAB..") or a prefix ending in "*"
    # ("device_licence:*"), and the contract that emitted the event.
    subject_filter: Mapped[str | None] = mapped_column(String(80))
    contract_filter: Mapped[str | None] = mapped_column(String(32))
    # A paused subscription queues nothing and its queued deliveries wait.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class WebhookDelivery(Base):
    """One event (or its removal by a reorg) to send to one subscription, until it is delivered
    or dead. Rows are written in the indexer's transaction, so none is lost with the process."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "idempotency_key", name="uq_webhook_delivery_key"),
        # The dispatcher's query: pending rows by due time.
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # The reorg path looks deliveries up by key across subscriptions.
        Index("ix_webhook_deliveries_key", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Indexed as the first column of uq_webhook_delivery_key.
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    # f"{block_hash}:{log_index}", plus ":removed" for the compensation of a reorged event: the
    # same for every attempt, so a receiver can drop what it has already seen.
    idempotency_key: Mapped[str] = mapped_column(String(96))
    event_type: Mapped[str] = mapped_column(String(64))
    # The exact JSON body sent (and signed), byte for byte on every attempt.
    payload: Mapped[str] = mapped_column(Text)
    # pending -> delivered | dead; cancelled when a reorg removed the event after it was sent.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # Attempts started (counted when claimed, so a crash mid-send still counts).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the row may next be claimed: the retry time, or the end of a dispatcher's lease.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
