"""Anonymous clients share a budget (`api_anonymous_rate_limit`); people signed in with Ethereum
and API keys are not limited by it."""

from __future__ import annotations

from eth_account import Account

from .conftest import Server, refused


def test_the_sixth_anonymous_request_is_refused_but_sessions_and_api_keys_go_on(server: Server) -> None:
    s = server(rate_limit="5/minute")
    s.mint(4, "batch.csv")
    s.index()
    device = s.devices[0]
    paths = [
        f"/certificates/{device}",
        f"/certificates/{device}/verify",
        "/certificates",
        f"/certificates/{s.rows[device]['imei']}",
        "/certificates?limit=1",
    ]
    for path in paths:
        assert s.client.get(path).status_code == 200, path
    detail = refused(s.client.get(f"/certificates/{device}"), 429, "rate_limited")
    assert "too many requests" in detail and "5 per minute" in detail
    assert "sign in or use an API key" in detail
    # The budget is per client, for every public read: the list and verification are refused too.
    refused(s.client.get("/certificates"), 429, "rate_limited")
    refused(s.client.get(f"/certificates/{device}/verify"), 429, "rate_limited")

    person = Account.create()
    token = s.session_token(person)
    bearer = {"Authorization": f"Bearer {token}"}
    for _ in range(8):
        response = s.client.get(f"/certificates/{device}", headers=bearer)
        assert response.status_code == 200, response.text
    key = s.api_key(token, ["read"])
    for _ in range(8):
        response = s.client.get(f"/certificates/{device}/verify", headers={"X-API-Key": key})
        assert response.status_code == 200, response.text
        assert response.json()["standing"] == "genuine"
    assert s.client.get("/certificates", headers={"X-API-Key": key}).status_code == 200

    # Credentials that do not check out are refused, not taken for anonymous (nor let through).
    refused(s.client.get("/certificates", headers={"X-API-Key": "dmk_nope_nope"}), 401, "unauthenticated")
    refused(
        s.client.get("/certificates", headers={"Authorization": "Bearer not-a-session"}),
        401,
        "unauthenticated",
    )
    # And the anonymous client is still over its budget.
    refused(s.client.get(f"/certificates/{device}"), 429, "rate_limited")


def test_each_app_counts_from_its_own_budget(server: Server) -> None:
    """A fresh server (its own in-memory limiter) starts from a full budget; the default is generous."""
    limited = server(rate_limit="2/minute")
    limited.mint(4, "batch.csv")
    limited.index()
    device = limited.devices[0]
    for _ in range(2):
        assert limited.client.get(f"/certificates/{device}").status_code == 200
    refused(limited.client.get(f"/certificates/{device}"), 429, "rate_limited")
    generous = server(rate_limit="120/minute")
    for _ in range(10):
        assert generous.client.get(f"/certificates/{device}").status_code == 200
