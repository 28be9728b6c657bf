"""Webhooks over HTTP: a signed-in party subscribes a URL to chain events, lists its
subscriptions and their dead letters, and sends a dead delivery again.

Creating, changing and deleting need a person signed in with Ethereum (no API key scope covers
webhooks yet); reading also admits API keys with the `read` scope. Every route after creation
is limited to the subscription's owner and the foundation.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from devicemint.api.deps import ApiError, Context, Principal, require_scope, require_session
from devicemint.auth.api_keys import Scope
from devicemint.auth.roles import Role
from devicemint.auth.siwe import utc
from devicemint.webhooks import subscriptions as domain
from devicemint.webhooks.errors import DeliveryRefused, SubscriptionInvalid
from devicemint.webhooks.models import WebhookDelivery, WebhookSubscription
from devicemint.webhooks.subscriptions import Caller

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

Person = Annotated[Principal, Depends(require_session)]
Reader = Annotated[Principal, Depends(require_scope(Scope.READ))]
SubscriptionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
DeliveryId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _as_value_error(check: Any) -> Any:
    """A domain check as a pydantic validator, so its message comes back as a 422 on the field."""

    def validator(value: Any) -> Any:
        try:
            return check(value)
        except SubscriptionInvalid as exc:
            raise ValueError(str(exc)) from exc

    return validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilterIn(_Body):
    subject: Annotated[str | None, AfterValidator(_as_value_error(domain.check_subject))] = Field(
        default=None,
        description='Only events about this subject ("device:0xAB..", "device_licence:1"), or whose '
        'subject starts with the text before a final "*" ("device:*")',
    )
    contract: Annotated[str | None, AfterValidator(_as_value_error(domain.check_contract))] = Field(
        default=None, description="Only events of this contract (ManufacturerLicense, DeviceLicense, ...)"
    )


class SubscriptionIn(_Body):
    url: Annotated[str, AfterValidator(_as_value_error(domain.check_url))] = Field(
        description="Where deliveries are POSTed (http or https)", max_length=domain.MAX_URL_LENGTH
    )
    event_types: Annotated[list[str], AfterValidator(_as_value_error(domain.check_event_types))] = Field(
        min_length=1, max_length=64, description='Event names ("Transfer", "EndOfLife", ...) or ["*"]'
    )
    filter: FilterIn | None = None


class ActiveIn(_Body):
    active: bool = Field(description="False pauses the subscription: nothing is queued or sent")


class FilterOut(BaseModel):
    subject: str | None
    contract: str | None


class SubscriptionOut(BaseModel):
    id: int
    owner: str
    url: str
    event_types: list[str]
    filter: FilterOut
    active: bool
    created_at: datetime


class CreatedSubscriptionOut(SubscriptionOut):
    secret: str = Field(description="The HMAC-SHA256 key of the signatures; shown this once only")


class DeliveryOut(BaseModel):
    id: int
    idempotency_key: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]


def _subscription(row: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": row.id,
        "owner": row.owner,
        "url": row.url,
        "event_types": row.event_types,
        "filter": {"subject": row.subject_filter, "contract": row.contract_filter},
        "active": row.active,
        "created_at": utc(row.created_at),
    }


def _delivery(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        idempotency_key=row.idempotency_key,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=utc(row.next_attempt_at),
        last_error=row.last_error,
        delivered_at=utc(row.delivered_at) if row.delivered_at else None,
        created_at=utc(row.created_at),
        payload=json.loads(row.payload),
    )


def _caller(principal: Principal) -> Caller:
    return Caller(address=principal.address, foundation=Role.FOUNDATION in principal.roles)


@router.post("", status_code=201, summary="Subscribe a URL to chain events (the secret is shown once)")
def create(ctx: Context, principal: Person, body: SubscriptionIn) -> CreatedSubscriptionOut:
    wanted = body.filter or FilterIn()
    with ctx.transaction() as session:
        row, secret = domain.create_subscription(
            session,
            owner=principal.address,
            url=body.url,
            event_types=body.event_types,
            subject=wanted.subject,
            contract=wanted.contract,
            now=ctx.clock(),
        )
        return CreatedSubscriptionOut(**_subscription(row), secret=secret)


@router.get("", summary="Your subscriptions (never their secrets)")
def list_subscriptions(ctx: Context, principal: Reader) -> list[SubscriptionOut]:
    with ctx.sessions() as session:
        return [
            SubscriptionOut(**_subscription(s)) for s in domain.subscriptions_of(session, principal.address)
        ]


@router.get("/{subscription_id}", summary="One subscription (owner or foundation)")
def show(ctx: Context, principal: Reader, subscription_id: SubscriptionId) -> SubscriptionOut:
    with ctx.sessions() as session:
        row = domain.owned_subscription(session, _caller(principal), subscription_id)
        return SubscriptionOut(**_subscription(row))


@router.patch("/{subscription_id}", summary="Pause or resume a subscription (owner or foundation)")
def set_active(
    ctx: Context, principal: Person, subscription_id: SubscriptionId, body: ActiveIn
) -> SubscriptionOut:
    with ctx.transaction() as session:
        row = domain.set_active(session, _caller(principal), subscription_id, body.active)
        return SubscriptionOut(**_subscription(row))


@router.delete("/{subscription_id}", status_code=204, summary="Delete a subscription and its deliveries")
def remove(ctx: Context, principal: Person, subscription_id: SubscriptionId) -> None:
    with ctx.transaction() as session:
        domain.delete_subscription(session, _caller(principal), subscription_id)


@router.get(
    "/{subscription_id}/deliveries",
    summary="A subscription's deliveries, newest first (status=dead: the dead-letter list)",
)
def deliveries(
    ctx: Context,
    principal: Reader,
    subscription_id: SubscriptionId,
    status: Annotated[Literal["pending", "delivered", "dead", "cancelled"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    with ctx.sessions() as session:
        rows = domain.deliveries_of(session, _caller(principal), subscription_id, status=status, limit=limit)
        return [_delivery(row) for row in rows]


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/redeliver",
    summary="Queue a dead delivery again, with its attempts counted afresh",
)
def redeliver(
    ctx: Context, principal: Person, subscription_id: SubscriptionId, delivery_id: DeliveryId
) -> DeliveryOut:
    with ctx.transaction() as session:
        try:
            row = domain.redeliver(session, _caller(principal), subscription_id, delivery_id, now=ctx.clock())
        except DeliveryRefused as exc:
            raise ApiError(409, "refused", str(exc)) from exc
        return _delivery(row)
