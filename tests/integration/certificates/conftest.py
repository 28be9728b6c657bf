"""Certificates over HTTP and the lifecycle CLI, against a real anvil and both databases.

`serve(programme, ...)` mints factory batches, indexes the chain into the database and builds
the API as `devicemint serve` does (`build_app`), with a `TestClient` that has no credentials.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from web3 import Web3

from devicemint.api.server import build_app
from devicemint.chain import keys
from devicemint.chain.tx import TxSender
from devicemint.cli.device_commands import DEV_KEYSTORE_PASSPHRASE, mint_file
from devicemint.db.models import Batch, Certificate, Document
from devicemint.devices.keystore import read_keystore
from devicemint.indexer.indexer import indexer_for
from devicemint.runtime import Runtime
from tests.integration.minting.conftest import Programme, programme, read_rows  # noqa: F401  re-exported
from tests.unit.auth.support import signed

#: Anonymous budget of the tests that are not about rate limiting: never reached.
UNLIMITED = "100000/minute"


def sender(runtime: Runtime, role: keys.DevRole) -> TxSender:
    return TxSender(w3=runtime.w3, account=keys.dev_account(int(role)), chain_id=runtime.settings.chain_id)


def refused(response: Response, status: int, error: str) -> str:
    """The JSON refusal of a request: checks its status and code, returns the detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body["detail"], str) and body["detail"], body
    return str(body["detail"])


@dataclass
class Served:
    """A programme with minted devices, its indexed database and the API over both."""

    p: Programme
    runtime: Runtime
    app: FastAPI
    client: TestClient
    devices: list[str] = field(default_factory=list)  # checksummed, in mint order
    rows: dict[str, dict[str, str]] = field(default_factory=dict)  # factory row by device
    device_keys: dict[str, LocalAccount] = field(default_factory=dict)
    batch_of: dict[str, int] = field(default_factory=dict)  # on-chain batch id by device

    @property
    def manufacturer(self) -> LocalAccount:
        """The licence holder: it owns every device it minted until it transfers one."""
        return keys.dev_account(int(keys.DevRole.MANUFACTURER))

    def mint(self, count: int, name: str) -> list[str]:
        """Mint a new factory batch of `count` devices; their addresses."""
        path = self.p.batch(count, name=name)
        mint_file(self.runtime, path, self.p.device_licence_id, dry_run=False)
        stored = read_keystore(self.p.workdir / f"{name}.keys.json", DEV_KEYSTORE_PASSPHRASE)
        added: list[str] = []
        for row in read_rows(path):
            address: str = Web3.to_checksum_address(row["device_address"])
            self.rows[address] = row
            self.device_keys[address] = Account.from_key(stored[address])
            added.append(address)
        with self.runtime.sessions() as session:
            for minted in added:
                certificate = session.get(Certificate, minted)
                assert certificate is not None and certificate.minted
                batch = session.get(Batch, certificate.batch_id)
                assert batch is not None and batch.chain_batch_id is not None
                self.batch_of[minted] = batch.chain_batch_id
        self.devices += added
        return added

    def index(self) -> int:
        """Bring the database up to the chain's head; the number of events stored."""
        return indexer_for(self.runtime).catch_up()

    def document_bytes(self, address: str) -> bytes:
        """The canonical certificate document as stored (its SHA-256 is the Merkle leaf's)."""
        with self.runtime.sessions() as session:
            body = session.scalar(
                select(Document.body)
                .join(Certificate, Certificate.document_sha256 == Document.sha256)
                .where(Certificate.address == address)
            )
        assert body is not None
        assert hashlib.sha256(body).hexdigest() == self.document_sha256(address)
        return bytes(body)

    def document_sha256(self, address: str) -> str:
        with self.runtime.sessions() as session:
            found = session.scalar(select(Certificate.document_sha256).where(Certificate.address == address))
        assert found is not None
        return str(found)

    def get(self, path: str, expect: int = 200, **kw: Any) -> Any:
        response = self.client.get(path, **kw)
        assert response.status_code == expect, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def view(self, query: str) -> dict[str, Any]:
        return self.get(f"/certificates/{query}")  # type: ignore[no-any-return]

    def verification(self, query: str) -> dict[str, Any]:
        return self.get(f"/certificates/{query}/verify")  # type: ignore[no-any-return]

    # -- relayed lifecycle records ----------------------------------------------------------------

    def typed_data(self, device: str, action: str, signer: str, fields: dict[str, Any]) -> Response:
        return self.client.post(
            f"/certificates/{device}/lifecycle/{action}/typed-data", params={"signer": signer}, json=fields
        )

    def signed_record(
        self, device: str, action: str, signer: LocalAccount, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """`fields` with the attestation `signer` made over the typed data the API handed out."""
        response = self.typed_data(device, action, signer.address, fields)
        assert response.status_code == 200, response.text
        typed = response.json()
        signature = Account.sign_typed_data(signer.key, full_message=typed).signature
        return {
            **fields,
            "attestation": {
                "signer": signer.address,
                "deadline": int(typed["message"]["deadline"]),
                "signature": "0x" + bytes(signature).hex(),
            },
        }

    def relay(self, device: str, action: str, record: dict[str, Any]) -> Response:
        return self.client.post(f"/certificates/{device}/lifecycle/{action}", json=record)

    # -- credentials --------------------------------------------------------------------------------

    def session_token(self, account: LocalAccount) -> str:
        """Sign in with Ethereum on a client of its own (so this client keeps no cookie)."""
        settings = self.runtime.settings
        with TestClient(self.app) as other:
            nonce = other.get("/auth/nonce").json()["nonce"]
            text, signature = signed(
                account,
                nonce,
                issued_at=datetime.now(UTC),
                domain=settings.public_base_url.split("://", 1)[1],
                uri=settings.public_base_url,
            )
            response = other.post("/auth/sign-in", json={"message": text, "signature": signature})
            assert response.status_code == 200, response.text
            return str(response.json()["token"])

    def api_key(self, token: str, scopes: list[str]) -> str:
        with TestClient(self.app) as other:
            response = other.post(
                "/auth/api-keys", json={"scopes": scopes}, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 201, response.text
            return str(response.json()["key"])


@dataclass
class Server:
    """Builds `Served` apps over one programme; closes their clients at the end."""

    p: Programme
    clients: list[TestClient] = field(default_factory=list)

    def __call__(self, *, rate_limit: str = UNLIMITED, staleness: float = 0.0) -> Served:
        """An app over the programme; `staleness` is how long a cached verification may outlive a
        change (0 here, so a test sees every change at once; the served default is 0.5 s)."""
        settings = replace(
            self.p.settings, api_anonymous_rate_limit=rate_limit, verify_staleness_seconds=staleness
        )
        runtime = replace(self.p.runtime, settings=settings)
        app = build_app(settings, runtime)
        client = TestClient(app)
        self.clients.append(client)
        return Served(p=self.p, runtime=runtime, app=app, client=client)


@pytest.fixture
def server(programme: Programme) -> Iterator[Server]:  # noqa: F811  (the re-exported fixture)
    made = Server(programme)
    yield made
    for client in made.clients:
        client.close()


@pytest.fixture
def served(server: Server) -> Served:
    """Four devices minted in one batch, indexed, and the API over them (no rate limit in reach)."""
    s = server()
    s.mint(4, "batch.csv")
    assert s.index() > 0
    return s


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True)


def keystore_path(p: Programme, name: str = "batch.csv") -> Path:
    return p.workdir / f"{name}.keys.json"
