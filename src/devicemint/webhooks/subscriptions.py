"""Subscriptions and their deliveries as their owners manage them (the API calls these).

Only the address that created a subscription, or the foundation, may see or change it; the
secret is returned once, by `create_subscription`, and never listed again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from devicemint.auth.errors import PermissionRefused
from devicemint.errors import NotFound
from devicemint.indexer.events import INDEXED_CONTRACTS, event_abis
from devicemint.webhooks.errors import DeliveryRefused, SubscriptionInvalid
from devicemint.webhooks.models import WebhookDelivery, WebhookSubscription
from devicemint.webhooks.signing import new_secret

ANY_EVENT = "*"
MAX_URL_LENGTH = 2048
MAX_SUBJECT_LENGTH = 80
DELIVERY_STATUSES = ("pending", "delivered", "dead", "cancelled")


@cache
def known_event_types() -> frozenset[str]:
    """The names of every event the indexer stores (from the contracts' ABIs)."""
    return frozenset(abi.name for contract in INDEXED_CONTRACTS for abi in event_abis(contract).values())


# -- what a subscription selects -----------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """Which events a subscription wants: by name, by subject (exact, or a prefix ending in
    "*"), by emitting contract. Subjects compare case-insensitively, so an address typed in
    lower case still matches the checksummed one the indexer stores."""

    event_types: frozenset[str]
    subject: str | None = None
    contract: str | None = None

    @classmethod
    def of(cls, subscription: WebhookSubscription) -> Selector:
        return cls(
            frozenset(subscription.event_types), subscription.subject_filter, subscription.contract_filter
        )

    def matches(self, *, name: str, contract: str, subject: str) -> bool:
        if ANY_EVENT not in self.event_types and name not in self.event_types:
            return False
        if self.contract is not None and contract != self.contract:
            return False
        if self.subject is None:
            return True
        wanted, have = self.subject.lower(), subject.lower()
        if wanted.endswith("*"):
            return have.startswith(wanted[:-1])
        return have == wanted


# -- validation ----------------------------------------------------------------------------------


def check_url(url: str) -> str:
    """An http(s) URL a delivery can be POSTed to, or `SubscriptionInvalid` saying what is wrong."""
    if len(url) > MAX_URL_LENGTH:
        raise SubscriptionInvalid(f"the URL is {len(url)} characters long; at most {MAX_URL_LENGTH}")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise SubscriptionInvalid("the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  raises ValueError for a port out of range
    except ValueError as exc:
        raise SubscriptionInvalid(f"the URL cannot be parsed: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        got = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise SubscriptionInvalid(f"the URL must start with http:// or https:// (got {got})")
    if not parts.hostname:
        raise SubscriptionInvalid("the URL has no host name")
    if parts.username is not None or parts.password is not None:
        raise SubscriptionInvalid(
            "the URL must not carry a user name or password: receivers authenticate deliveries "
            "by their signature"
        )
    if parts.fragment:
        raise SubscriptionInvalid("the URL must not have a #fragment (it is never sent)")
    return url


def check_event_types(event_types: Iterable[str]) -> list[str]:
    """The event names, deduplicated and sorted (["*"] when "*" is among them)."""
    wanted = set(event_types)
    if not wanted:
        raise SubscriptionInvalid('name at least one event type, or "*" for every event')
    if ANY_EVENT in wanted:
        return [ANY_EVENT]
    unknown = sorted(wanted - known_event_types())
    if unknown:
        raise SubscriptionInvalid(
            f"unknown event type(s) {', '.join(map(repr, unknown))}; known: "
            f"{', '.join(sorted(known_event_types()))}, or * for every event"
        )
    return sorted(wanted)


def check_subject(subject: str | None) -> str | None:
    if subject is None:
        return None
    if not subject or len(subject) > MAX_SUBJECT_LENGTH:
        raise SubscriptionInvalid(f"the subject filter must be 1 to {MAX_SUBJECT_LENGTH} characters")
    if any(c.isspace() for c in subject):
        raise SubscriptionInvalid("the subject filter must not contain spaces")
    if "*" in subject[:-1]:
        raise SubscriptionInvalid('a "*" in the subject filter may only end it (a prefix such as "device:*")')
    return subject


def check_contract(contract: str | None) -> str | None:
    if contract is not None and contract not in INDEXED_CONTRACTS:
        raise SubscriptionInvalid(f"unknown contract {contract!r}; one of: {', '.join(INDEXED_CONTRACTS)}")
    return contract


# -- who may --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who is asking: an address, and whether it is the foundation (which may see every
    subscription, to help a party whose receiver is failing)."""

    address: str
    foundation: bool = False


def owned_subscription(session: Session, caller: Caller, subscription_id: int) -> WebhookSubscription:
    found = session.get(WebhookSubscription, subscription_id)
    if found is None:
        raise NotFound(f"there is no webhook subscription {subscription_id}")
    if found.owner.lower() != caller.address.lower() and not caller.foundation:
        raise PermissionRefused(
            f"webhook subscription {subscription_id} belongs to another party; only its owner or "
            "the foundation may see or change it"
        )
    return found


# -- the owner's operations -----------------------------------------------------------------------


def create_subscription(
    session: Session,
    *,
    owner: str,
    url: str,
    event_types: Iterable[str],
    subject: str | None = None,
    contract: str | None = None,
    now: datetime,
) -> tuple[WebhookSubscription, str]:
    """A new active subscription and its signing secret (to be shown this once)."""
    secret = new_secret()
    subscription = WebhookSubscription(
        owner=owner,
        url=check_url(url),
        secret=secret,
        event_types=check_event_types(event_types),
        subject_filter=check_subject(subject),
        contract_filter=check_contract(contract),
        active=True,
        created_at=now,
    )
    session.add(subscription)
    session.flush()  # assigns the id
    return subscription, secret


def subscriptions_of(session: Session, owner: str) -> Sequence[WebhookSubscription]:
    return session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.owner == owner).order_by(WebhookSubscription.id)
    ).all()


def set_active(session: Session, caller: Caller, subscription_id: int, active: bool) -> WebhookSubscription:
    """Pause or resume: a paused subscription queues nothing, and what it had queued waits."""
    subscription = owned_subscription(session, caller, subscription_id)
    subscription.active = active
    return subscription


def delete_subscription(session: Session, caller: Caller, subscription_id: int) -> None:
    """The subscription, its secret and every delivery of it are gone (nothing more is sent)."""
    subscription = owned_subscription(session, caller, subscription_id)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id))
    session.delete(subscription)


def deliveries_of(
    session: Session, caller: Caller, subscription_id: int, *, status: str | None = None, limit: int = 100
) -> Sequence[WebhookDelivery]:
    """A subscription's deliveries, newest first; `status="dead"` is its dead-letter list."""
    owned_subscription(session, caller, subscription_id)
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)).all()


def redeliver(
    session: Session, caller: Caller, subscription_id: int, delivery_id: int, *, now: datetime
) -> WebhookDelivery:
    """A dead delivery back in the queue, due now, with its attempts counted afresh."""
    owned_subscription(session, caller, subscription_id)
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.subscription_id != subscription_id:
        raise NotFound(f"webhook subscription {subscription_id} has no delivery {delivery_id}")
    if delivery.status != "dead":
        raise DeliveryRefused(
            f"delivery {delivery_id} is {delivery.status}; only a dead delivery can be redelivered"
        )
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, now
    return delivery
