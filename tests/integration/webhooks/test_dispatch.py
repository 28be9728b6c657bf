"""The dispatcher against a real HTTP receiver on both databases: signatures, retries with
backoff, the dead-letter list, crashes and restarts, and two dispatchers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from devicemint.db.session import make_engine, migrate, session_factory, transaction
from devicemint.webhooks.errors import InvalidSignature
from devicemint.webhooks.outbox import WebhookOutbox
from devicemint.webhooks.signing import verify_signature
from devicemint.webhooks.subscriptions import Caller, redeliver, set_active
from tests.integration.webhooks.conftest import (
    OWNER,
    Received,
    Receiver,
    deliveries,
    dispatcher,
    event,
    index,
    subscribe,
    unindex,
)
from tests.unit.auth.support import T0, Clock

NOW = int(T0.timestamp())


def test_a_delivery_is_signed_and_the_receiver_can_check_it(
    sessions: sessionmaker[Session], receiver: Receiver, clock: Clock
) -> None:
    subscription_id, secret = subscribe(sessions, receiver.url)
    transfer = event(7, 2)
    index(sessions, WebhookOutbox(clock=clock), transfer)

    assert dispatcher(sessions, clock).run_once().delivered == 1

    (request,) = receiver.requests
    key = f"{transfer.block_hash}:2"
    assert (request.path, request.key, request.event) == ("/hooks", key, "Transfer")
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {
        "id": key,
        "type": "Transfer",
        "contract": "DeviceCertificate",
        "subject": transfer.subject,
        "block_number": 7,
        "block_hash": transfer.block_hash,
        "log_index": 2,
        "tx_hash": transfer.tx_hash,
        "block_time": NOW + 7,
        "args": {"from": OWNER, "to": "0x00000000000000000000000000000000000000b2", "tokenId": "7"},
        "removed": False,
    }
    assert verify_signature(secret, request.signature, request.body, now=NOW + 10) == NOW
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_signature("whsec_" + "x" * 43, request.signature, request.body, now=NOW)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_signature(secret, request.signature, request.body.replace(b"Transfer", b"Transfeq"), now=NOW)
    with pytest.raises(InvalidSignature, match="from now"):
        verify_signature(secret, request.signature, request.body, now=NOW + 301)

    (row,) = deliveries(sessions, subscription_id)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 1, None)
    assert row.delivered_at is not None
    assert dispatcher(sessions, clock).run_once().attempted == 0  # nothing is sent twice


def test_failures_are_retried_with_the_configured_backoff_until_delivered(
    sessions: sessionmaker[Session], receiver: Receiver, clock: Clock
) -> None:
    subscribe(sessions, receiver.url)
    index(sessions, WebhookOutbox(clock=clock), event(1))
    receiver.statuses = [500, 500]
    sender = dispatcher(sessions, clock)

    assert sender.run_once().retrying == 1
    (row,) = deliveries(sessions)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at.replace(tzinfo=None) == (T0 + timedelta(seconds=2)).replace(tzinfo=None)
    assert row.last_error is not None and row.last_error.startswith("HTTP 500")

    clock.advance(timedelta(seconds=1.9))
    assert sender.run_once().attempted == 0  # not due yet
    clock.advance(timedelta(seconds=0.1))
    assert sender.run_once().retrying == 1  # attempt 2, then 4 s
    (row,) = deliveries(sessions)
    assert row.next_attempt_at.replace(tzinfo=None) == (T0 + timedelta(seconds=6)).replace(tzinfo=None)

    clock.advance(timedelta(seconds=3.9))
    assert sender.run_once().attempted == 0
    clock.advance(timedelta(seconds=0.1))
    assert sender.run_once().delivered == 1
    (row,) = deliveries(sessions)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)

    # Every attempt carried the same key and body, each signed at its own time.
    assert len({r.key for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1
    assert [r.signature.split(",")[0] for r in receiver.requests] == [
        f"t={NOW}",
        f"t={NOW + 2}",
        f"t={NOW + 6}",
    ]


def test_an_unreachable_or_slow_receiver_is_retried(
    sessions: sessionmaker[Session], receiver: Receiver, clock: Clock
) -> None:
    closed = make_closed_port_url()
    down_id, _ = subscribe(sessions, closed)
    slow_id, _ = subscribe(sessions, receiver.url)
    receiver.delay = 1.0
    index(sessions, WebhookOutbox(clock=clock), event(1))

    result = dispatcher(sessions, clock, timeout=0.3).run_once()

    assert result.retrying == 2
    (down,) = deliveries(sessions, down_id)
    (slow,) = deliveries(sessions, slow_id)
    assert down.last_error is not None and down.last_error.startswith("ConnectError")
    assert slow.last_error is not None and slow.last_error.startswith("ReadTimeout")
    assert down.status == slow.status == "pending"


def test_a_receiver_failing_every_time_ends_in_the_dead_letters_and_can_be_redelivered(
    sessions: sessionmaker[Session], receiver: Receiver, clock: Clock
) -> None:
    subscription_id, _ = subscribe(sessions, receiver.url)
    index(sessions, WebhookOutbox(clock=clock), event(1))
    receiver.default = 503
    sender = dispatcher(sessions, clock, max_attempts=3)

    outcomes = []
    for _ in range(3):
        outcomes.append(sender.run_once())
        clock.advance(timedelta(hours=1))
    assert [(o.retrying, o.dead) for o in outcomes] == [(1, 0), (1, 0), (0, 1)]
    (row,) = deliveries(sessions)
    assert (row.status, row.attempts) == ("dead", 3)
    assert row.last_error is not None and row.last_error.startswith("HTTP 503")
    assert sender.run_once().attempted == 0  # the dead stay dead
    assert len(receiver.requests) == 3

    with transaction(sessions) as session:
        redeliver(session, Caller(OWNER), subscription_id, row.id, now=clock())
    receiver.default = 200
    assert sender.run_once().delivered == 1
    (row,) = deliveries(sessions)
    assert (row.status, row.attempts) == ("delivered", 1)


def test_a_paused_subscription_queues_nothing_and_its_queue_waits(
    sessions: sessionmaker[Session], receiver: Receiver, clock: Clock
) -> None:
    subscription_id, _ = subscribe(sessions, receiver.url)
    outbox = WebhookOutbox(clock=clock)
    index(sessions, outbox, event(1))
    with transaction(sessions) as session:
        set_active(session, Caller(OWNER), subscription_id, False)
    index(sessions, outbox, event(2))  # not queued: paused
    assert dispatcher(sessions, clock).run_once().attempted == 0

    with transaction(sessions) as session:
        set_active(session, Caller(OWNER), subscription_id, True)
    assert dispatcher(sessions, clock).run_once().delivered == 1
    assert receiver.keys() == [f"{event(1).block_hash}:0"]


def test_a_private_address_is_refused_unless_allowed(
    sessions: sessionmaker[Session], receiver: Receiver, clock: Clock
) -> None:
    subscribe(sessions, receiver.url)
    index(sessions, WebhookOutbox(clock=clock), event(1))

    assert dispatcher(sessions, clock, allow_private_networks=False).run_once().retrying == 1

    assert receiver.requests == []
    (row,) = deliveries(sessions)
    assert row.last_error == "refused: 127.0.0.1 resolves to 127.0.0.1, which is not a public address"


def test_queued_deliveries_survive_a_restart(database_url: str, receiver: Receiver, clock: Clock) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    subscribe(sessions, receiver.url)
    index(sessions, WebhookOutbox(clock=clock), *(event(n) for n in range(1, 6)))
    dispatcher(sessions, clock)  # created, never run: the process "dies" here
    engine.dispose()

    again = session_factory(make_engine(database_url))
    result = dispatcher(again, clock).run_once()

    assert result.delivered == 5
    assert sorted(receiver.keys()) == sorted(f"{event(n).block_hash}:0" for n in range(1, 6))
    assert {d.status for d in deliveries(again)} == {"delivered"}
    again.kw["bind"].dispose()


KILLABLE_DISPATCHER = """
import sys
from devicemint.db.session import make_engine, session_factory
from devicemint.webhooks.dispatcher import Dispatcher

Dispatcher(sessions=session_factory(make_engine(sys.argv[1])), allow_private_networks=True).run_once()
raise SystemExit("the dispatcher should have been killed while sending")
"""


def test_a_dispatcher_killed_between_send_and_commit_resends_with_the_same_key(
    sessions: sessionmaker[Session], database_url: str, receiver: Receiver
) -> None:
    """kill -9 while the receiver holds the request: it has the event, the database does not
    know. After the lease, another dispatcher sends it again with the same Idempotency-Key."""
    subscribe(sessions, receiver.url)
    index(sessions, WebhookOutbox(), event(1))  # real clock: the subprocess uses it
    process = subprocess.Popen([sys.executable, "-c", KILLABLE_DISPATCHER, database_url])

    def kill_the_sender(_: Received) -> None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    receiver.on_request = kill_the_sender
    assert process.wait(timeout=60) == -signal.SIGKILL
    receiver.on_request = None
    (row,) = deliveries(sessions)
    assert (row.status, row.attempts) == ("pending", 1)  # claimed, outcome never written

    real = Clock(now=datetime.now(UTC))
    assert dispatcher(sessions, real, lease=timedelta(minutes=2)).run_once().attempted == 0  # leased
    real.advance(timedelta(minutes=2, seconds=1))
    assert dispatcher(sessions, real).run_once().delivered == 1

    first, second = receiver.requests
    assert first.key == second.key == f"{event(1).block_hash}:0"
    assert first.body == second.body
    (row,) = deliveries(sessions)
    assert (row.status, row.attempts) == ("delivered", 2)


def test_two_dispatchers_never_send_the_same_delivery(
    sessions: sessionmaker[Session], database_url: str, receiver: Receiver, clock: Clock
) -> None:
    subscribe(sessions, receiver.url)
    subscribe(sessions, receiver.url)
    index(sessions, WebhookOutbox(clock=clock), *(event(n) for n in range(1, 21)))
    receiver.delay = 0.02
    other = session_factory(make_engine(database_url))  # as if in another process
    results = []

    def run(sessions_of: sessionmaker[Session]) -> None:
        results.append(dispatcher(sessions_of, clock, batch_size=1000).run_once())

    threads = [threading.Thread(target=run, args=(s,)) for s in (sessions, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(receiver.requests) == 40
    assert len({(r.key, r.body) for r in receiver.requests}) == 40 // 2  # one key per event...
    assert sum(r.delivered for r in results) == 40  # ...sent once per subscription
    assert len(results) == 2 and all(r.delivered > 0 for r in results)  # both took part
    assert {d.status for d in deliveries(sessions)} == {"delivered"}
    assert {d.attempts for d in deliveries(sessions)} == {1}
    other.kw["bind"].dispose()


def test_an_outcome_is_not_written_over_a_reorg_that_cancelled_the_delivery_meanwhile(
    sessions: sessionmaker[Session], receiver: Receiver, clock: Clock
) -> None:
    subscribe(sessions, receiver.url)
    outbox = WebhookOutbox(clock=clock)
    transfer = event(1)
    index(sessions, outbox, transfer)
    receiver.on_request = lambda _: unindex(sessions, outbox, transfer)  # while it is being sent

    assert dispatcher(sessions, clock).run_once().attempted == 0  # its outcome was not recorded

    original, compensation = deliveries(sessions)
    assert (original.status, original.attempts) == ("cancelled", 1)
    assert compensation.idempotency_key == original.idempotency_key + ":removed"
    receiver.on_request = None
    assert dispatcher(sessions, clock).run_once().delivered == 1
    assert [r.json()["removed"] for r in receiver.requests] == [False, True]


def make_closed_port_url() -> str:
    """The URL of a port nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"
