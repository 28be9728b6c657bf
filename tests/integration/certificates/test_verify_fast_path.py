"""The verify endpoint's fast path (api/verify_fast_path.py): cached answers given before the
app's routing, byte for byte what the route gives, counted against the anonymous budget, never
for a credential, and never staler than `verify_staleness_seconds` after a change is indexed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from devicemint.api.verify_fast_path import VerifyFastPath
from devicemint.chain import keys
from devicemint.licensing.revocation import revoke_manufacturer
from devicemint.pki.authority import Authority

from .conftest import Served, Server, refused, sender


@dataclass
class Behind:
    """The app behind the fast path, counting the requests that reach it."""

    app: ASGIApp
    paths: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


def fronted(s: Served, behind: Behind) -> TestClient:
    ctx = s.app.state.devicemint
    fast = VerifyFastPath(behind, certificates=ctx.certificates, rate_limiter=ctx.rate_limiter)
    return TestClient(fast)


def minted(s: Served) -> Served:
    s.mint(3, "batch.csv")
    s.index()
    return s


def test_a_cached_answer_is_given_before_the_app_and_is_the_routes_byte_for_byte(server: Server) -> None:
    s = minted(server())
    behind = Behind(s.app)
    client = fronted(s, behind)
    device, imei = s.devices[0], s.rows[s.devices[0]]["imei"]
    first = client.get(f"/certificates/{device}/verify")
    assert first.status_code == 200 and behind.paths == [f"/certificates/{device}/verify"]
    again = client.get(f"/certificates/{device}/verify")
    assert behind.paths == [f"/certificates/{device}/verify"], "the cached answer went to the app"
    assert again.content == first.content
    for header in ("etag", "cache-control", "content-type", "content-length"):
        assert again.headers[header] == first.headers[header], header
    # Another way of asking is learnt once, by the app, then answered in front of it.
    by_imei = client.get(f"/certificates/{imei}/verify")
    assert by_imei.content == first.content and len(behind.paths) == 2
    client.get(f"/certificates/{imei}/verify")
    assert len(behind.paths) == 2
    not_modified = client.get(
        f"/certificates/{device}/verify", headers={"If-None-Match": first.headers["etag"]}
    )
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == first.headers["etag"] and len(behind.paths) == 2
    # Anything else is the app's: the view, an unknown device, another method.
    client.get(f"/certificates/{device}")
    assert client.get("/certificates/0x0000000000000000000000000000000000000001/verify").status_code == 404
    assert client.post(f"/certificates/{device}/verify").status_code == 405
    assert len(behind.paths) == 5


def test_fast_answers_count_against_the_anonymous_budget_and_credentials_go_to_the_app(
    server: Server,
) -> None:
    s = minted(server(rate_limit="6/minute"))
    behind = Behind(s.app)
    client = fronted(s, behind)
    device = s.devices[1]
    for _ in range(6):  # the budget: one computed by the app, five from the cache
        assert client.get(f"/certificates/{device}/verify").status_code == 200
    assert len(behind.paths) == 1
    detail = refused(client.get(f"/certificates/{device}/verify"), 429, "rate_limited")
    assert "6 per minute" in detail and "sign in or use an API key" in detail
    assert len(behind.paths) == 1, "the fast path refuses by itself"

    token = s.session_token(keys.dev_account(int(keys.DevRole.OWNER)))
    for _ in range(3):
        response = client.get(f"/certificates/{device}/verify", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
    assert len(behind.paths) == 4, "a request with a credential is the app's to check"
    bad = client.get(f"/certificates/{device}/verify", headers={"X-API-Key": "dmk_unknown_key"})
    assert bad.status_code == 401, "a credential that does not check out is refused, never skipped"


def test_a_change_reaches_cached_answers_within_the_staleness_window(server: Server) -> None:
    s = server(staleness=0.5)
    s.mint(2, "batch.csv")
    s.index()
    device = s.devices[0]
    assert s.verification(device)["standing"] == "genuine"
    assert s.verification(device)["standing"] == "genuine"  # now cached, generation stamped
    revoke_manufacturer(
        s.runtime.contracts,
        Authority.of(s.runtime.settings, s.runtime.sessions),
        sender(s.runtime, keys.DevRole.FOUNDATION),
        s.p.manufacturer_licence_id,
        reason="counterfeits found in the field",
    )
    s.index()
    time.sleep(0.6)
    after = s.verification(device)
    assert after["standing"] == "not_genuine", after["checks"]
