"""What a command needs to act: the chain, the deployed contracts and the database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from devicemint.chain.client import connect
from devicemint.chain.deploy import Deployment
from devicemint.chain.deployments import Contracts, require_deployment
from devicemint.config import Settings
from devicemint.db.models import Meta
from devicemint.db.session import make_engine, migrate, session_factory, transaction
from devicemint.devices.proof import ProofDomain
from devicemint.errors import ConfigError


def open_database(settings: Settings) -> sessionmaker[Session]:
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    return session_factory(engine)


def bind_database(sessions: sessionmaker[Session], deployment: Deployment) -> None:
    """One database serves one deployment: its documents and journal mean nothing elsewhere."""
    identity = {"chain_id": str(deployment.chain_id), "device_certificate": deployment.device_certificate}
    with transaction(sessions) as session:
        recorded = {row.key: row.value for row in session.scalars(select(Meta))}
        if not recorded:
            session.add_all(Meta(key=key, value=value) for key, value in identity.items())
            return
    if {key: recorded.get(key) for key in identity} != identity:
        raise ConfigError(
            f"this database belongs to the DeviceCertificate at {recorded.get('device_certificate')} on chain "
            f"{recorded.get('chain_id')}, not to {deployment.device_certificate} on chain {deployment.chain_id}; "
            "set DEVICEMINT_DATABASE_URL (or DEVICEMINT_HOME) to the database of this deployment"
        )


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    w3: Web3
    contracts: Contracts
    sessions: sessionmaker[Session]

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        w3 = connect(settings)
        contracts = require_deployment(settings, w3)
        sessions = open_database(settings)
        bind_database(sessions, contracts.deployment)
        return cls(settings=settings, w3=w3, contracts=contracts, sessions=sessions)

    @property
    def domain(self) -> ProofDomain:
        """The EIP-712 domain of device proofs: this chain and this certificate contract."""
        return ProofDomain(self.settings.chain_id, self.contracts.deployment.device_certificate)

    @property
    def batch_uri(self) -> str:
        return self.settings.public_base_url.rstrip("/") + "/certificates/"
