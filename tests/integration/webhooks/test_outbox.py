"""The outbox listener on both databases: which subscriptions an event is queued for, that an
event indexed again is not queued twice, and what a reorg does to queued and sent deliveries."""

from __future__ import annotations

import json

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from devicemint.db.session import transaction
from devicemint.indexer.models import ChainEvent
from devicemint.webhooks.outbox import WebhookOutbox
from devicemint.webhooks.subscriptions import Caller, set_active
from tests.integration.webhooks.conftest import (
    DEVICE_A,
    DEVICE_B,
    OWNER,
    Receiver,
    deliveries,
    dispatcher,
    event,
    index,
    subscribe,
    unindex,
)
from tests.unit.auth.support import Clock

URL = "https://receiver.example/hooks"


def queued(sessions: sessionmaker[Session], subscription_id: int) -> list[str]:
    return [
        f"{d.event_type}@{json.loads(d.payload)['block_number']}"
        for d in deliveries(sessions, subscription_id)
    ]


def test_event_types_subjects_and_contracts_select_what_is_queued(
    sessions: sessionmaker[Session], clock: Clock
) -> None:
    every = subscribe(sessions, URL)[0]
    transfers = subscribe(sessions, URL, ["Transfer"])[0]
    lifecycle = subscribe(sessions, URL, ["FactoryReset", "EndOfLife"])[0]
    device_a = subscribe(sessions, URL, subject=f"device:{DEVICE_A.lower()}")[0]
    licences = subscribe(sessions, URL, subject="device_licence:*")[0]
    licence_contract = subscribe(sessions, URL, ["Transfer", "LicenceRevoked"], contract="DeviceLicense")[0]
    paused = subscribe(sessions, URL)[0]
    with transaction(sessions) as session:
        set_active(session, Caller(OWNER), paused, False)

    index(
        sessions,
        WebhookOutbox(clock=clock),
        event(1, name="Transfer"),  # device A
        event(2, name="FactoryReset"),  # device A
        event(3, name="EndOfLife", subject=f"device:{DEVICE_B}"),
        event(4, name="LicenceRevoked", subject="device_licence:1", contract="DeviceLicense"),
        event(5, name="Transfer", subject="manufacturer_licence:1", contract="ManufacturerLicense"),
        event(6, name="VoteCast", subject="proposal:1", contract="DeviceLicense"),
    )

    assert queued(sessions, every) == [
        "Transfer@1",
        "FactoryReset@2",
        "EndOfLife@3",
        "LicenceRevoked@4",
        "Transfer@5",
        "VoteCast@6",
    ]
    assert queued(sessions, transfers) == ["Transfer@1", "Transfer@5"]
    assert queued(sessions, lifecycle) == ["FactoryReset@2", "EndOfLife@3"]
    assert queued(sessions, device_a) == ["Transfer@1", "FactoryReset@2"]
    assert queued(sessions, licences) == ["LicenceRevoked@4"]
    assert queued(sessions, licence_contract) == ["LicenceRevoked@4"]
    assert queued(sessions, paused) == []


def test_an_event_indexed_again_is_not_queued_again(sessions: sessionmaker[Session], clock: Clock) -> None:
    subscription_id, _ = subscribe(sessions, URL)
    outbox = WebhookOutbox(clock=clock)
    index(sessions, outbox, event(1), event(2))
    # `devicemint index --rebuild`: the events are dropped and indexed again from the chain.
    with transaction(sessions) as session:
        session.execute(delete(ChainEvent))
    index(sessions, outbox, event(1), event(2), event(3))

    assert queued(sessions, subscription_id) == ["Transfer@1", "Transfer@2", "Transfer@3"]


def test_a_reorg_drops_unsent_deliveries_and_compensates_the_sent_ones(
    sessions: sessionmaker[Session], receiver: Receiver, clock: Clock
) -> None:
    subscription_id, _ = subscribe(sessions, receiver.url)
    outbox = WebhookOutbox(clock=clock)
    delivered, failing, dead, unsent, kept = event(1), event(2), event(3), event(4), event(5)

    index(sessions, outbox, delivered, failing, dead)
    receiver.statuses = [200, 500, 500]  # in order of the blocks
    sender = dispatcher(sessions, clock, max_attempts=1)
    assert sender.run_once().delivered == 1
    rows = deliveries(sessions)
    assert [r.status for r in rows] == ["delivered", "dead", "dead"]
    with transaction(sessions) as session:  # one of them is still being retried
        session.get(type(rows[1]), rows[1].id).status = "pending"  # type: ignore[union-attr]
    index(sessions, outbox, unsent, kept)

    unindex(sessions, outbox, delivered, failing, dead, unsent)

    state = sorted(
        (json.loads(d.payload)["block_number"], d.idempotency_key.endswith(":removed"), d.status)
        for d in deliveries(sessions, subscription_id)
    )
    assert state == [
        (1, False, "delivered"),  # sent, so it stays delivered ...
        (1, True, "pending"),  # ... and is taken back
        (2, False, "cancelled"),  # attempted, so perhaps seen: stopped, and taken back
        (2, True, "pending"),
        (3, False, "cancelled"),  # dead, but perhaps seen too
        (3, True, "pending"),
        (5, False, "pending"),  # untouched; block 4 (never sent) is simply gone
    ]
    removals = [d for d in deliveries(sessions) if d.idempotency_key.endswith(":removed")]
    assert sorted(json.loads(d.payload)["block_number"] for d in removals) == [1, 2, 3]

    receiver.statuses = []
    assert dispatcher(sessions, clock).run_once().delivered == 4  # three removals and block 5
    sent = {r.key: r.json() for r in receiver.requests[3:]}
    removed = sent[f"{delivered.block_hash}:0:removed"]
    assert removed["removed"] is True and removed["id"] == f"{delivered.block_hash}:0:removed"
    assert {k: v for k, v in removed.items() if k not in ("id", "removed")} == {
        k: v for k, v in receiver.requests[0].json().items() if k not in ("id", "removed")
    }
    assert sent[f"{kept.block_hash}:0"]["removed"] is False


def test_a_reorg_of_events_nobody_subscribed_to_changes_nothing(
    sessions: sessionmaker[Session], clock: Clock
) -> None:
    subscription_id, _ = subscribe(sessions, URL, ["EndOfLife"])
    outbox = WebhookOutbox(clock=clock)
    index(sessions, outbox, event(1), event(2, name="EndOfLife"))
    unindex(sessions, outbox, event(1))
    assert queued(sessions, subscription_id) == ["EndOfLife@2"]
