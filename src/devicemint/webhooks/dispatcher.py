"""Sending queued deliveries: signed POSTs, retried with exponential backoff, then dead.

Each delivery is first claimed in a transaction of its own: its attempt is counted and its
`next_attempt_at` moved a lease ahead, by a conditional UPDATE that only one dispatcher can win
(PostgreSQL re-checks the condition after a concurrent update; SQLite serialises writers).
Then it is sent outside any transaction, and the outcome committed at once, again only if
nobody changed the row meanwhile (a reorg cancelling it, a newer claim after the lease ran
out). A dispatcher killed between send and commit leaves the row to be claimed again when
its lease ends: the receiver may see the request twice, with the same Idempotency-Key.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import urlsplit

import httpx
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session, sessionmaker

from devicemint.db.models import utc_now
from devicemint.db.session import transaction
from devicemint.webhooks.models import WebhookDelivery, WebhookSubscription
from devicemint.webhooks.signing import EVENT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 8
USER_AGENT = "devicemint-webhooks/1"
#: What of a refusing receiver's answer is kept in `last_error`.
_ERROR_BODY_CHARS = 200


@dataclass(frozen=True)
class Backoff:
    """The wait after the n-th failed attempt: base * factor**(n-1), at most `cap`.

    With the defaults 8 attempts span about an hour (30 s, 1, 2, 4, 8, 16, 32 min), long
    enough to ride out a receiver's deploy or restart. `jitter` (a fraction) shortens each wait
    by a random part of it, so many subscriptions failing together do not retry in lockstep;
    pass `jitter=0` (or a seeded `rng`) for reproducible times.
    """

    base: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.1
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base <= timedelta(0) or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError("backoff needs base > 0, factor >= 1 and 0 <= jitter < 1")

    def __call__(self, attempts: int) -> timedelta:
        exponent = min(max(attempts - 1, 0), 64)  # past the cap long before; avoids float overflow
        seconds = min(self.cap.total_seconds(), self.base.total_seconds() * self.factor**exponent)
        if self.jitter:
            seconds *= 1 - self.jitter * self.rng.random()
        return timedelta(seconds=seconds)


@dataclass(frozen=True)
class DispatchResult:
    """What one `run_once` did."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.dead


@dataclass(frozen=True)
class _Claimed:
    id: int
    attempts: int  # including this one
    key: str
    event_type: str
    payload: str
    url: str
    secret: str


class _SendFailed(Exception):
    """One attempt did not get a 2xx; the message goes to `last_error`."""


def _refuse_private_address(url: str) -> None:
    """Refuse hosts that resolve to loopback, private, link-local or other non-public addresses:
    any signed-in address can create a subscription, and must not make the server call its own
    network (metadata services, the database). The check is at send time, but httpx resolves
    again: a DNS answer changing in between (rebinding) is not caught here."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise _SendFailed(f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if not address.is_global:
            raise _SendFailed(f"refused: {host} resolves to {address}, which is not a public address")


class Dispatcher:
    """Sends the due deliveries of one database.

    `clock`, `backoff` and `client` are injectable so tests can run real HTTP with fixed times.
    `lease` is how long a claimed delivery is left alone before another dispatcher may take it
    again (it must exceed the time one send can take). `allow_private_networks` admits
    receivers on loopback and private addresses (tests, a single-machine setup).
    """

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime] = utc_now,
        backoff: Callable[[int], timedelta] | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = 10.0,
        lease: timedelta = timedelta(minutes=2),
        batch_size: int = 100,
        allow_private_networks: bool = False,
        client: httpx.Client | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if lease.total_seconds() <= timeout:
            raise ValueError(f"the lease ({lease}) must be longer than the send timeout ({timeout} s)")
        self._sessions = sessions
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._max_attempts = max_attempts
        self._lease = lease
        self._batch_size = batch_size
        self._allow_private = allow_private_networks
        self._owns_client = client is None
        # Redirects are not followed: the signed request goes to the URL its owner gave, or fails.
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    # -- lifecycle ----------------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- running ------------------------------------------------------------------------------------

    def run_once(self) -> DispatchResult:
        """Send up to `batch_size` due deliveries, each outcome committed as it comes."""
        self._bury_abandoned()
        delivered = retrying = dead = 0
        for delivery_id in self._due():
            claimed = self._claim(delivery_id)
            if claimed is None:  # another dispatcher took it, or it was cancelled
                continue
            outcome = self._attempt(claimed)
            if outcome == "delivered":
                delivered += 1
            elif outcome == "dead":
                dead += 1
            elif outcome == "pending":
                retrying += 1
        return DispatchResult(delivered, retrying, dead)

    def run(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Dispatch until `stop` is set: back to back while a full batch was due, else polling."""
        while not stop.is_set():
            result = self.run_once()
            if result.attempted < self._batch_size:
                stop.wait(poll_seconds)

    # -- steps ---------------------------------------------------------------------------------------

    def _bury_abandoned(self) -> None:
        """Rows whose last allowed attempt was claimed but never settled (the dispatcher died
        mid-send) go dead when their lease ends, instead of being tried beyond the limit."""
        now = self._clock()
        with transaction(self._sessions) as session:
            session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.attempts >= self._max_attempts,
                    WebhookDelivery.next_attempt_at <= now,
                )
                .values(status="dead", last_error="no outcome recorded for the last attempt")
                .execution_options(synchronize_session=False)
            )

    def _due(self) -> list[int]:
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(WebhookDelivery.id)
                    .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
                    .where(
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.next_attempt_at <= self._clock(),
                        WebhookSubscription.active.is_(True),
                    )
                    .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                    .limit(self._batch_size)
                )
            )

    def _claim(self, delivery_id: int) -> _Claimed | None:
        """Count the attempt and take the lease, if the row is still due; else None."""
        now = self._clock()
        with transaction(self._sessions) as session:
            result = session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery_id,
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    WebhookDelivery.attempts < self._max_attempts,
                )
                .values(attempts=WebhookDelivery.attempts + 1, next_attempt_at=now + self._lease)
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], result).rowcount != 1:
                return None
            row = session.execute(
                select(
                    WebhookDelivery.attempts,
                    WebhookDelivery.idempotency_key,
                    WebhookDelivery.event_type,
                    WebhookDelivery.payload,
                    WebhookSubscription.url,
                    WebhookSubscription.secret,
                )
                .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
                .where(WebhookDelivery.id == delivery_id)
            ).one()
        return _Claimed(delivery_id, *row)

    def _attempt(self, claimed: _Claimed) -> str | None:
        """Send and record; the status written, or None when the row changed meanwhile."""
        try:
            self._send(claimed)
        except _SendFailed as failure:
            return self._record_failure(claimed, str(failure))
        return self._record(claimed, status="delivered", delivered_at=self._clock(), last_error=None)

    def _send(self, claimed: _Claimed) -> None:
        if not self._allow_private:
            _refuse_private_address(claimed.url)
        body = claimed.payload.encode("utf-8")
        timestamp = int(self._clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(claimed.secret, body, timestamp=timestamp),
            IDEMPOTENCY_HEADER: claimed.key,
            EVENT_HEADER: claimed.event_type,
        }
        try:
            response = self._client.post(claimed.url, content=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # refused, reset, timed out, bad URL
            raise _SendFailed(f"{type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            hint = " (redirects are not followed: subscribe the final URL)" if response.is_redirect else ""
            raise _SendFailed(f"HTTP {response.status_code}{hint}: {response.text[:_ERROR_BODY_CHARS]}")

    def _record_failure(self, claimed: _Claimed, error: str) -> str | None:
        if claimed.attempts >= self._max_attempts:
            log.warning(
                "webhook delivery %s is dead after %s attempts: %s", claimed.id, claimed.attempts, error
            )
            return self._record(claimed, status="dead", last_error=error)
        wait = self._backoff(claimed.attempts)
        log.info(
            "webhook delivery %s failed (attempt %s), retrying in %s: %s",
            claimed.id,
            claimed.attempts,
            wait,
            error,
        )
        return self._record(claimed, status="pending", next_attempt_at=self._clock() + wait, last_error=error)

    def _record(self, claimed: _Claimed, *, status: str, **values: Any) -> str | None:
        """Write the outcome unless the row moved on (cancelled by a reorg, deleted with its
        subscription, or claimed again after our lease ran out)."""
        with transaction(self._sessions) as session:
            result = session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == claimed.id,
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.attempts == claimed.attempts,
                )
                .values(status=status, **values)
                .execution_options(synchronize_session=False)
            )
            return status if cast(CursorResult[Any], result).rowcount == 1 else None
