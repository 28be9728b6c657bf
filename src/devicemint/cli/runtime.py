"""What a command needs to act: the chain, the deployed contracts and the database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from devicemint.chain.client import connect
from devicemint.chain.deployments import Contracts, require_deployment
from devicemint.config import Settings
from devicemint.db.session import make_engine, migrate, session_factory
from devicemint.devices.proof import ProofDomain


def open_database(settings: Settings) -> sessionmaker[Session]:
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    return session_factory(engine)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    w3: Web3
    contracts: Contracts
    sessions: sessionmaker[Session]

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        w3 = connect(settings)
        return cls(
            settings=settings,
            w3=w3,
            contracts=require_deployment(settings, w3),
            sessions=open_database(settings),
        )

    @property
    def domain(self) -> ProofDomain:
        """The EIP-712 domain of device proofs: this chain and this certificate contract."""
        return ProofDomain(self.settings.chain_id, self.contracts.deployment.device_certificate)

    @property
    def batch_uri(self) -> str:
        return self.settings.public_base_url.rstrip("/") + "/certificates/"
