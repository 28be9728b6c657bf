"""The indexer's webhook listener: deliveries queued in the indexer's own transaction.

Because the rows are written in the transaction that stores the events, an event is in the
database if and only if its deliveries are queued: a crash loses neither, and a retried step
cannot queue anything twice. The idempotency key (block hash and log index) is unique per
subscription, so an event indexed again (`devicemint index --rebuild`) is not queued again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from devicemint.db.models import utc_now
from devicemint.indexer.events import canonical_json
from devicemint.indexer.models import ChainEvent
from devicemint.webhooks.models import WebhookDelivery, WebhookSubscription
from devicemint.webhooks.subscriptions import Selector

REMOVED_SUFFIX = ":removed"
#: Keys looked up per query when a reorg removes events (bound parameters have limits).
_KEY_CHUNK = 500
_DELIVERY_KEY = ["subscription_id", "idempotency_key"]


def event_key(event: ChainEvent) -> str:
    """The idempotency key of an event: stable across attempts, restarts and rebuilds."""
    return f"{event.block_hash}:{event.log_index}"


def payload_of(event: ChainEvent, *, removed: bool = False) -> dict[str, Any]:
    """The JSON body of a delivery (`removed` as in eth_subscribe: a reorg took the event away)."""
    key = event_key(event)
    return {
        "id": key + REMOVED_SUFFIX if removed else key,
        "type": event.name,
        "contract": event.contract,
        "subject": event.subject,
        "block_number": event.block_number,
        "block_hash": event.block_hash,
        "log_index": event.log_index,
        "tx_hash": event.tx_hash,
        "block_time": event.block_time,
        "args": json.loads(event.args),
        "removed": removed,
    }


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert deliveries, skipping any whose (subscription, key) is already queued."""
    if not rows:
        return
    table: Table = WebhookDelivery.__table__  # type: ignore[assignment]
    dialect = session.get_bind().dialect.name
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(index_elements=_DELIVERY_KEY)
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=_DELIVERY_KEY)
    else:
        raise NotImplementedError(f"webhooks support SQLite and PostgreSQL, not {dialect}")
    session.execute(statement, rows)


def _row(subscription_id: int, key: str, event_type: str, payload: str, now: datetime) -> dict[str, Any]:
    return {
        "subscription_id": subscription_id,
        "idempotency_key": key,
        "event_type": event_type,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
        "delivered_at": None,
        "created_at": now,
    }


class WebhookOutbox:
    """A `devicemint.indexer.indexer.Listener` that queues webhook deliveries."""

    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock

    def added(self, session: Session, events: Sequence[ChainEvent]) -> None:
        """One pending delivery per (active subscription, matching event), due now."""
        if not events:
            return
        subscriptions = session.scalars(
            select(WebhookSubscription).where(WebhookSubscription.active.is_(True))
        ).all()
        selectors = [(s.id, Selector.of(s)) for s in subscriptions]
        if not selectors:
            return
        now = self._clock()
        rows = []
        for event in events:
            body: str | None = None  # encoded once, shared by every subscription that wants it
            for subscription_id, selector in selectors:
                if selector.matches(name=event.name, contract=event.contract, subject=event.subject):
                    body = body or canonical_json(payload_of(event))
                    rows.append(_row(subscription_id, event_key(event), event.name, body, now))
        _insert_new(session, rows)

    def removed(self, session: Session, events: Sequence[ChainEvent]) -> None:
        """Take back what a reorg removed.

        A delivery never attempted is deleted: nobody can have seen it. One attempted at least
        once may have reached its receiver (a timeout can hide a success), so it is stopped
        (cancelled unless delivered) and a compensating delivery with `"removed": true` is
        queued, as eth_subscribe does for removed logs.
        """
        now = self._clock()
        keys = [event_key(event) for event in events]
        for chunk in _chunks(keys, _KEY_CHUNK):
            compensations = []
            deliveries = session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.idempotency_key.in_(chunk))
            ).all()
            for delivery in deliveries:
                if delivery.status == "pending" and delivery.attempts == 0:
                    session.delete(delivery)
                    continue
                if delivery.status != "delivered":
                    delivery.status = "cancelled"
                    delivery.last_error = "cancelled: a chain reorganisation removed the event"
                payload = json.loads(delivery.payload) | {
                    "id": delivery.idempotency_key + REMOVED_SUFFIX,
                    "removed": True,
                }
                compensations.append(
                    _row(
                        delivery.subscription_id,
                        delivery.idempotency_key + REMOVED_SUFFIX,
                        delivery.event_type,
                        canonical_json(payload),
                        now,
                    )
                )
            session.flush()  # the deletions and cancellations before the compensations
            _insert_new(session, compensations)
