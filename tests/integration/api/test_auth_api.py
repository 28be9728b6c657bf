from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import text

from devicemint.auth.roles import Role
from devicemint.auth.siwe import SESSION_TTL
from tests.unit.auth.support import sign, signed

from .conftest import Api


def _error(response, status: int, error: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and isinstance(body["detail"], str)
    return body  # type: ignore[no-any-return]


def test_openapi_is_served(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    assert schema["info"]["title"] == "devicemint"
    assert {"/auth/nonce", "/auth/sign-in", "/auth/sign-out", "/auth/me", "/auth/api-keys"} <= set(
        schema["paths"]
    )


def test_sign_in_gives_a_session_as_json_and_as_a_strict_http_only_cookie(
    api: Api, person: LocalAccount
) -> None:
    nonce_body = api.client.get("/auth/nonce").json()
    assert nonce_body["domain"] == "portal.example:8000" and nonce_body["chain_id"] == 31337
    text_, sig = signed(person, nonce_body["nonce"])
    response = api.client.post("/auth/sign-in", json={"message": text_, "signature": sig})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["address"] == person.address
    cookie = response.headers["set-cookie"]
    assert (
        body["token"] in cookie
        and "HttpOnly" in cookie
        and "SameSite=strict" in cookie
        and "Secure" in cookie
    )

    me = api.client.get("/auth/me", headers=api.bearer(body["token"])).json()  # by bearer token
    assert me == {
        "address": person.address,
        "roles": ["manufacturer", "public"],
        "via": "session",
        "scopes": None,
    }
    assert api.client.get("/auth/me").json()["address"] == person.address  # by the cookie


def test_a_replayed_sign_in_is_refused(api: Api, person: LocalAccount) -> None:
    text_, sig = signed(person, api.client.get("/auth/nonce").json()["nonce"])
    assert api.client.post("/auth/sign-in", json={"message": text_, "signature": sig}).status_code == 200
    response = api.client.post("/auth/sign-in", json={"message": text_, "signature": sig})
    assert "used already" in _error(response, 401, "sign_in_refused")["detail"]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"domain": "evil.example"}, "evil.example"),
        ({"chain_id": 137}, "chain 137"),
        ({"expiration_time": "past"}, "expired"),
    ],
)
def test_sign_ins_for_elsewhere_or_expired_are_refused(
    api: Api, person: LocalAccount, fields: dict[str, object], reason: str
) -> None:
    if fields.get("expiration_time") == "past":
        fields = {"expiration_time": api.clock.now + timedelta(seconds=30)}
    text_, sig = signed(person, api.client.get("/auth/nonce").json()["nonce"], **fields)
    api.clock.advance(timedelta(minutes=1))
    response = api.client.post("/auth/sign-in", json={"message": text_, "signature": sig})
    assert reason in _error(response, 401, "sign_in_refused")["detail"]


def test_a_nonce_we_never_issued_is_refused(api: Api, person: LocalAccount) -> None:
    text_, sig = signed(person, "ffffffffffffffffffffffffffffffff")
    response = api.client.post("/auth/sign-in", json={"message": text_, "signature": sig})
    assert "not issued" in _error(response, 401, "sign_in_refused")["detail"]


def test_a_signature_by_another_key_is_refused(api: Api, person: LocalAccount) -> None:
    text_, _ = signed(person, api.client.get("/auth/nonce").json()["nonce"])
    response = api.client.post(
        "/auth/sign-in", json={"message": text_, "signature": sign(Account.create(), text_)}
    )
    _error(response, 401, "sign_in_refused")
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": "hello", "signature": "0x" + "ab" * 65},
        {"message": "x" * 100_000, "signature": "0x"},
        {"message": 5, "signature": None},
        "not json",
    ],
)
def test_bad_input_is_a_422_never_a_500(api: Api, body: object) -> None:
    if isinstance(body, str):
        response = api.client.post(
            "/auth/sign-in", content=body, headers={"content-type": "application/json"}
        )
    else:
        response = api.client.post("/auth/sign-in", json=body)
    _error(response, 422, "invalid_request")


def test_sessions_expire_and_sign_out_ends_them(api: Api, person: LocalAccount) -> None:
    token = api.sign_in(person)
    api.clock.advance(SESSION_TTL)
    _error(api.client.get("/auth/me", headers=api.bearer(token)), 401, "unauthenticated")

    api.client.cookies.clear()
    token = api.sign_in(person)
    assert api.client.post("/auth/sign-out").status_code == 204  # by the cookie, which it clears
    _error(api.client.get("/auth/me", headers=api.bearer(token)), 401, "unauthenticated")
    _error(api.client.get("/auth/me"), 401, "unauthenticated")


def test_anonymous_callers_are_asked_to_sign_in(api: Api) -> None:
    response = api.client.get("/auth/me")
    _error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    _error(api.client.get("/auth/me", headers={"Authorization": "Bearer nonsense"}), 401, "unauthenticated")


def test_a_route_for_the_foundation_refuses_a_manufacturer(api: Api, person: LocalAccount) -> None:
    foundation = Account.create()
    api.roles.roles[foundation.address] = {Role.FOUNDATION}
    manufacturer_token = api.sign_in(person)
    foundation_token = api.sign_in(foundation)
    response = api.client.get("/test/foundation-only", headers=api.bearer(manufacturer_token))
    assert "only the foundation" in _error(response, 403, "forbidden")["detail"]
    assert api.client.get("/test/foundation-only", headers=api.bearer(foundation_token)).status_code == 200


def _new_key(api: Api, token: str, scopes: list[str]) -> dict[str, str]:
    response = api.client.post("/auth/api-keys", json={"scopes": scopes}, headers=api.bearer(token))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_api_keys_are_created_used_listed_and_revoked(api: Api, person: LocalAccount) -> None:
    token = api.sign_in(person)
    api.client.cookies.clear()
    created = _new_key(api, token, ["mint", "read"])
    key = created["key"]
    assert key.startswith(created["prefix"] + "_") and created["scopes"] == ["mint", "read"]

    assert api.client.post("/test/mint", headers={"X-API-Key": key}).json() == {"address": person.address}
    me = api.client.get("/auth/me", headers={"X-API-Key": key}).json()
    assert me["via"] == "api_key" and me["scopes"] == ["mint", "read"]

    listed = api.client.get("/auth/api-keys", headers=api.bearer(token)).json()
    assert [k["id"] for k in listed] == [created["id"]] and key not in repr(listed)
    assert listed[0]["last_used_at"] is not None

    assert api.client.delete(f"/auth/api-keys/{created['id']}", headers=api.bearer(token)).status_code == 204
    _error(api.client.post("/test/mint", headers={"X-API-Key": key}), 401, "unauthenticated")
    assert api.client.get("/auth/api-keys", headers=api.bearer(token)).json()[0]["revoked_at"] is not None


def test_a_key_without_the_scope_is_refused(api: Api, person: LocalAccount) -> None:
    token = api.sign_in(person)
    api.client.cookies.clear()
    key = _new_key(api, token, ["read"])["key"]
    assert api.client.get("/test/read", headers={"X-API-Key": key}).status_code == 200
    response = api.client.post("/test/mint", headers={"X-API-Key": key})
    assert "'mint'" in _error(response, 403, "forbidden")["detail"]


def test_a_key_cannot_act_where_no_scope_is_named_nor_manage_keys(api: Api, person: LocalAccount) -> None:
    api.roles.roles[person.address] = {Role.FOUNDATION}
    token = api.sign_in(person)
    api.client.cookies.clear()
    key = _new_key(api, token, ["mint", "read", "onboarding:write"])["key"]
    headers = {"X-API-Key": key}
    _error(api.client.get("/test/foundation-only", headers=headers), 403, "forbidden")
    _error(api.client.post("/auth/api-keys", json={"scopes": ["mint"]}, headers=headers), 403, "forbidden")
    _error(api.client.get("/auth/api-keys", headers=headers), 403, "forbidden")


def test_someone_else_cannot_revoke_my_key_but_the_foundation_can(api: Api, person: LocalAccount) -> None:
    mine = api.sign_in(person)
    stranger = api.sign_in(Account.create())
    foundation = Account.create()
    api.roles.roles[foundation.address] = {Role.FOUNDATION}
    foundation_token = api.sign_in(foundation)
    api.client.cookies.clear()
    created = _new_key(api, mine, ["mint"])

    response = api.client.delete(f"/auth/api-keys/{created['id']}", headers=api.bearer(stranger))
    _error(response, 404, "not_found")
    assert api.client.post("/test/mint", headers={"X-API-Key": created["key"]}).status_code == 200
    assert api.client.get("/auth/api-keys", headers=api.bearer(stranger)).json() == []

    response = api.client.delete(f"/auth/api-keys/{created['id']}", headers=api.bearer(foundation_token))
    assert response.status_code == 204
    _error(api.client.post("/test/mint", headers={"X-API-Key": created["key"]}), 401, "unauthenticated")


def test_unknown_scopes_are_refused(api: Api, person: LocalAccount) -> None:
    token = api.sign_in(person)
    for scopes in (["admin"], []):
        response = api.client.post("/auth/api-keys", json={"scopes": scopes}, headers=api.bearer(token))
        _error(response, 422, "invalid_request")


def test_no_secret_is_stored_in_clear_or_logged(
    api: Api, person: LocalAccount, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = api.sign_in(person)
    key = _new_key(api, token, ["mint"])["key"]
    api.client.get("/auth/me", headers={"X-API-Key": key})
    with api.sessions() as session:
        dump = repr([session.execute(text(f"SELECT * FROM {t}")).all() for t in ("sessions", "api_keys")])
    for secret in (token, key, key.split("_", 2)[2]):
        assert secret not in dump
        assert secret not in caplog.text
