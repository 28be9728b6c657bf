"""A real HTTP receiver on 127.0.0.1, and helpers to queue deliveries of plain event rows."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from devicemint.db.session import transaction
from devicemint.indexer.models import ChainEvent
from devicemint.webhooks.dispatcher import Backoff, Dispatcher
from devicemint.webhooks.models import WebhookDelivery, WebhookSubscription
from devicemint.webhooks.outbox import WebhookOutbox
from devicemint.webhooks.signing import EVENT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER
from devicemint.webhooks.subscriptions import create_subscription
from tests.integration.api.conftest import api, person  # noqa: F401  re-exported fixtures
from tests.integration.minting.conftest import programme  # noqa: F401  re-exported fixture
from tests.unit.auth.support import T0, Clock

OWNER = "0x1111111111111111111111111111111111111111"
DEVICE_A = "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"
DEVICE_B = "0x00000000000000000000000000000000000000b2"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str:
        return self.headers[IDEMPOTENCY_HEADER]

    @property
    def signature(self) -> str:
        return self.headers[SIGNATURE_HEADER]

    @property
    def event(self) -> str:
        return self.headers[EVENT_HEADER]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (then `default`), after `delay` seconds;
    `on_request`, if set, runs first in the handler thread (to kill a dispatcher mid-send)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0
    on_request: Callable[[Received], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Received) -> int:
        with self.lock:
            self.requests.append(request)
            return self.statuses.pop(0) if self.statuses else self.default

    def keys(self) -> list[str]:
        with self.lock:
            return [r.key for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            request = Received(self.path, dict(self.headers.items()), body)
            if state.on_request is not None:
                state.on_request(request)
            status = state.answer(request)
            time.sleep(state.delay)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the dispatcher is gone (killed, or timed out)
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def event(
    block: int,
    log_index: int = 0,
    *,
    name: str = "Transfer",
    subject: str = f"device:{DEVICE_A}",
    contract: str = "DeviceCertificate",
    args: dict[str, Any] | None = None,
) -> ChainEvent:
    """An event row as the indexer builds it (block hash derived from the block number)."""
    return ChainEvent(
        block_number=block,
        log_index=log_index,
        block_hash="0x" + f"{block:064x}",
        block_time=int(T0.timestamp()) + block,
        tx_hash="0x" + f"{block * 1000 + log_index:064x}",
        contract=contract,
        name=name,
        subject=subject,
        args=json.dumps(args or {"from": OWNER, "to": DEVICE_B, "tokenId": str(block)}, sort_keys=True),
    )


def subscribe(
    sessions: sessionmaker[Session], url: str, event_types: list[str] | None = None, **filters: Any
) -> tuple[int, str]:
    """A subscription of OWNER: (id, secret)."""
    with transaction(sessions) as session:
        row, secret = create_subscription(
            session, owner=OWNER, url=url, event_types=event_types or ["*"], now=T0, **filters
        )
        return row.id, secret


def index(sessions: sessionmaker[Session], outbox: WebhookOutbox, *events: ChainEvent) -> None:
    """What the indexer does in one step: store the events and tell the outbox, in one transaction."""
    with transaction(sessions) as session:
        session.add_all(events)
        outbox.added(session, list(events))


def unindex(sessions: sessionmaker[Session], outbox: WebhookOutbox, *events: ChainEvent) -> None:
    """What the indexer does on a reorg: tell the outbox, then delete the events."""
    with transaction(sessions) as session:
        rows = [session.get(ChainEvent, (e.block_number, e.log_index)) for e in events]
        assert all(rows)
        outbox.removed(session, rows)  # type: ignore[arg-type]
        for row in rows:
            session.delete(row)


def deliveries(sessions: sessionmaker[Session], subscription_id: int | None = None) -> list[WebhookDelivery]:
    with sessions() as session:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        if subscription_id is not None:
            query = query.where(WebhookDelivery.subscription_id == subscription_id)
        return list(session.scalars(query))


def subscription(sessions: sessionmaker[Session], subscription_id: int) -> WebhookSubscription | None:
    with sessions() as session:
        return session.get(WebhookSubscription, subscription_id)


def dispatcher(sessions: sessionmaker[Session], clock: Clock, **options: Any) -> Dispatcher:
    """A dispatcher with fixed times: 2 s doubling, no jitter, a short timeout."""
    values: dict[str, Any] = {
        "sessions": sessions,
        "clock": clock,
        "backoff": Backoff(base=timedelta(seconds=2), jitter=0),
        "allow_private_networks": True,
        "timeout": 5.0,
        "lease": timedelta(seconds=60),
    }
    values.update(options)
    return Dispatcher(**values)
