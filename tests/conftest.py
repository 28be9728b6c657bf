"""Shared fixtures: a real anvil node and real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from devicemint.chain.node import LocalNode, free_port
from devicemint.db.session import make_engine, migrate, session_factory

POSTGRES_ADMIN_URL = os.environ.get("DEVICEMINT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def anvil_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    """One real anvil for the session; tests isolate themselves with `chain_snapshot`."""
    node = LocalNode(state_dir=tmp_path_factory.mktemp("anvil"), port=free_port(), persist=False)
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def w3(anvil_node: LocalNode) -> Web3:
    return Web3(Web3.HTTPProvider(anvil_node.rpc_url, request_kwargs={"timeout": 60}))


@pytest.fixture
def chain_snapshot(w3: Web3) -> Iterator[None]:
    """Revert the chain to where it was before the test."""
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    yield
    w3.provider.make_request("evm_revert", [snapshot])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'devicemint.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_ADMIN_URL else "?"
    yield f"{POSTGRES_ADMIN_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """A freshly migrated database of each kind."""
    engine = make_engine(database_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()
