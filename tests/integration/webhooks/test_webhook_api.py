"""The webhook routes with real Sign-In with Ethereum sessions, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from httpx import Response

from devicemint.auth.roles import Role
from devicemint.webhooks.outbox import WebhookOutbox
from tests.integration.api.conftest import Api
from tests.integration.webhooks.conftest import Receiver, deliveries, dispatcher, event, index

URL = "https://receiver.example/hooks"


def refused(response: Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    return str(body["detail"])


def create(api: Api, token: str, **body: Any) -> dict[str, Any]:
    response = api.client.post(
        "/webhooks", json={"url": URL, "event_types": ["*"]} | body, headers=api.bearer(token)
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_subscription_is_created_with_its_secret_shown_once(api: Api, person: LocalAccount) -> None:
    token = api.sign_in(person)
    created = create(
        api, token, event_types=["Transfer", "EndOfLife", "Transfer"], filter={"subject": "device:*"}
    )
    assert created["secret"].startswith("whsec_")
    assert created["owner"] == person.address
    assert created["event_types"] == ["EndOfLife", "Transfer"]
    assert created["filter"] == {"subject": "device:*", "contract": None}
    assert created["active"] is True

    listed = api.client.get("/webhooks", headers=api.bearer(token)).json()
    shown = api.client.get(f"/webhooks/{created['id']}", headers=api.bearer(token)).json()
    assert listed == [shown]
    assert "secret" not in shown and created["secret"] not in str(listed)
    assert shown == {k: v for k, v in created.items() if k != "secret"}

    paused = api.client.patch(f"/webhooks/{created['id']}", json={"active": False}, headers=api.bearer(token))
    assert paused.status_code == 200 and paused.json()["active"] is False


def test_only_the_owner_or_the_foundation_may_see_or_change_a_subscription(
    api: Api, person: LocalAccount
) -> None:
    other, foundation = Account.create(), Account.create()
    api.roles.roles[foundation.address] = {Role.FOUNDATION}
    owner_token, other_token, foundation_token = (api.sign_in(a) for a in (person, other, foundation))
    hook = create(api, owner_token)["id"]
    base = f"/webhooks/{hook}"

    as_other = api.bearer(other_token)
    assert api.client.get("/webhooks", headers=as_other).json() == []
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"active": False}),
        ("DELETE", base, None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/deliveries/1/redeliver", None),
    ]:
        response = api.client.request(method, path, json=body, headers=as_other)
        assert "belongs to another party" in refused(response, 403, "forbidden"), (method, path)
    assert api.client.get(base, headers=api.bearer(owner_token)).json()["active"] is True  # unchanged

    as_foundation = api.bearer(foundation_token)
    assert api.client.get(base, headers=as_foundation).status_code == 200
    assert api.client.get(f"{base}/deliveries", headers=as_foundation).json() == []
    assert api.client.delete(base, headers=as_foundation).status_code == 204
    refused(api.client.get(base, headers=api.bearer(owner_token)), 404, "not_found")


def test_anonymous_callers_and_api_keys_cannot_manage_webhooks(api: Api, person: LocalAccount) -> None:
    token = api.sign_in(person)
    hook = create(api, token)["id"]
    api.client.cookies.clear()
    refused(api.client.get("/webhooks"), 401, "unauthenticated")
    refused(api.client.post("/webhooks", json={"url": URL, "event_types": ["*"]}), 401, "unauthenticated")

    key = api.client.post("/auth/api-keys", json={"scopes": ["read"]}, headers=api.bearer(token)).json()[
        "key"
    ]
    assert [h["id"] for h in api.client.get("/webhooks", headers={"X-API-Key": key}).json()] == [hook]
    detail = refused(
        api.client.post("/webhooks", json={"url": URL, "event_types": ["*"]}, headers={"X-API-Key": key}),
        403,
        "forbidden",
    )
    assert "signed in with Ethereum" in detail
    refused(api.client.delete(f"/webhooks/{hook}", headers={"X-API-Key": key}), 403, "forbidden")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            {"url": "ftp://receiver.example/x"},
            r"body.url: Value error, the URL must start with http:// or https:// (got ftp://)",
        ),
        ({"url": "receiver.example/x"}, "(got no scheme)"),
        ({"url": "https://me:pw@receiver.example/x"}, "must not carry a user name or password"),
        ({"url": "https:///x"}, "the URL has no host name"),
        ({"event_types": []}, "body.event_types"),
        ({"event_types": ["Transfr"]}, "unknown event type(s) 'Transfr'; known: "),
        ({"filter": {"subject": "dev*ce"}}, 'a "*" in the subject filter may only end it'),
        ({"filter": {"contract": "Staking"}}, "unknown contract 'Staking'; one of: ManufacturerLicense"),
        ({"secret": "mine"}, "body.secret: Extra inputs are not permitted"),
    ],
)
def test_bad_subscriptions_are_refused_with_a_clear_422(
    api: Api, person: LocalAccount, body: dict[str, Any], reason: str
) -> None:
    token = api.sign_in(person)
    wanted = {"url": URL, "event_types": ["*"]} | body
    detail = refused(
        api.client.post("/webhooks", json=wanted, headers=api.bearer(token)), 422, "invalid_request"
    )
    assert reason in detail
    assert api.client.get("/webhooks", headers=api.bearer(token)).json() == []


def test_the_dead_letters_are_listed_and_can_be_redelivered(
    api: Api, person: LocalAccount, receiver: Receiver
) -> None:
    token = api.sign_in(person)
    hook = create(api, token, url=receiver.url)["id"]
    index(api.sessions, WebhookOutbox(clock=api.clock), event(1), event(2))
    receiver.statuses = [200, 500]
    dispatcher(api.sessions, api.clock, max_attempts=1).run_once()

    listed = api.client.get(f"/webhooks/{hook}/deliveries", headers=api.bearer(token)).json()
    assert [d["status"] for d in listed] == ["dead", "delivered"]  # newest first
    (dead,) = api.client.get(f"/webhooks/{hook}/deliveries?status=dead", headers=api.bearer(token)).json()
    assert dead["last_error"].startswith("HTTP 500") and dead["attempts"] == 1
    assert dead["payload"]["id"] == dead["idempotency_key"] == f"{event(2).block_hash}:0"
    refused(
        api.client.get(f"/webhooks/{hook}/deliveries?status=lost", headers=api.bearer(token)),
        422,
        "invalid_request",
    )

    path = f"/webhooks/{hook}/deliveries/{dead['id']}/redeliver"
    again = api.client.post(path, headers=api.bearer(token))
    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["attempts"]) == ("pending", 0)
    assert "only a dead delivery can be redelivered" in refused(
        api.client.post(path, headers=api.bearer(token)), 409, "refused"
    )
    refused(
        api.client.post(f"/webhooks/{hook}/deliveries/999/redeliver", headers=api.bearer(token)),
        404,
        "not_found",
    )

    assert dispatcher(api.sessions, api.clock).run_once().delivered == 1
    assert receiver.keys()[-1] == dead["idempotency_key"]

    # Deleting the subscription takes its deliveries (and its secret) with it.
    assert api.client.delete(f"/webhooks/{hook}", headers=api.bearer(token)).status_code == 204
    assert deliveries(api.sessions) == []
