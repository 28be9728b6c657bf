from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from devicemint.api.app import create_app
from devicemint.api.deps import Principal, require_role, require_scope
from devicemint.auth.api_keys import Scope
from devicemint.auth.roles import Role
from devicemint.config import Settings
from tests.unit.auth.support import CHAIN_ID, DOMAIN, URI, Clock, signed


@dataclass
class StaticRoles:
    """Roles from a table the test fills; everyone else signed in is a manufacturer."""

    roles: dict[str, set[Role]] = field(default_factory=dict)

    def roles_of(self, address: str) -> frozenset[Role]:
        return frozenset(self.roles.get(address, {Role.MANUFACTURER}) | {Role.PUBLIC})


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    clock: Clock
    roles: StaticRoles
    sessions: sessionmaker[Session]

    def sign_in(self, account: LocalAccount, **fields: object) -> str:
        nonce = self.client.get("/auth/nonce").json()["nonce"]
        text, sig = signed(account, nonce, issued_at=self.clock.now, **fields)
        response = self.client.post("/auth/sign-in", json={"message": text, "signature": sig})
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(sessions: sessionmaker[Session]) -> Iterator[Api]:
    clock = Clock()
    roles = StaticRoles()
    app = create_app(
        settings=Settings(chain_id=CHAIN_ID, public_base_url=URI),
        sessions_factory=sessions,
        role_resolver=roles,
        siwe_domain=DOMAIN,
        siwe_uri=URI,
        clock=clock,
    )

    # Routes as other domains will declare them, to test the role and scope checks.
    @app.get("/test/foundation-only")
    def foundation_only(p: Annotated[Principal, Depends(require_role(Role.FOUNDATION))]) -> dict[str, str]:
        return {"address": p.address}

    @app.post("/test/mint")
    def mint(
        p: Annotated[Principal, Depends(require_role(Role.MANUFACTURER, scope=Scope.MINT))],
    ) -> dict[str, str]:
        return {"address": p.address}

    @app.get("/test/read")
    def read(p: Annotated[Principal, Depends(require_scope(Scope.READ))]) -> dict[str, str]:
        return {"address": p.address}

    with TestClient(app, base_url=URI) as client:
        yield Api(client=client, app=app, clock=clock, roles=roles, sessions=sessions)


@pytest.fixture
def person() -> LocalAccount:
    return Account.create()
