"""Where our contracts live on each chain, recorded under the data directory.

`ensure_deployed` is idempotent: it reuses a recorded deployment whose code is still on chain
and deploys afresh only when there is none (a new local chain, a wiped node).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from devicemint.chain.deploy import Deployment, DeploymentParams, contract, deploy_contracts
from devicemint.config import Settings
from devicemint.errors import ChainError, ConfigError
from devicemint.files import write_atomically


@dataclass(frozen=True)
class Contracts:
    """The deployed contracts as web3 objects, built once per command."""

    deployment: Deployment
    staking_token: Contract
    manufacturer_license: Contract
    device_license: Contract
    device_certificate: Contract

    @classmethod
    def bind(cls, w3: Web3, deployment: Deployment) -> Contracts:
        return cls(
            deployment=deployment,
            staking_token=contract(w3, "StakingToken", deployment.staking_token),
            manufacturer_license=contract(w3, "ManufacturerLicense", deployment.manufacturer_license),
            device_license=contract(w3, "DeviceLicense", deployment.device_license),
            device_certificate=contract(w3, "DeviceCertificate", deployment.device_certificate),
        )


def deployment_file(home: Path, chain_id: int) -> Path:
    return home / "deployments" / f"{chain_id}.json"


def load_deployment(home: Path, chain_id: int) -> Deployment | None:
    path = deployment_file(home, chain_id)
    if not path.is_file():
        return None
    try:
        return Deployment.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            f"{path} is not a valid deployment record ({exc}); remove it and deploy again"
        ) from exc


def _still_on_chain(w3: Web3, deployment: Deployment) -> bool:
    addresses = (deployment.manufacturer_license, deployment.device_license, deployment.device_certificate)
    return all(len(w3.eth.get_code(Web3.to_checksum_address(a))) > 0 for a in addresses)


def ensure_deployed(
    *, settings: Settings, w3: Web3, deployer: LocalAccount, params: DeploymentParams
) -> tuple[Deployment, bool]:
    """The deployment for this chain, deploying it first if needed; returns (deployment, is_new)."""
    chain_id = int(w3.eth.chain_id)
    if chain_id != settings.chain_id:
        raise ChainError(
            f"the node at {settings.effective_rpc_url} is chain {chain_id}, but the settings say "
            f"chain {settings.chain_id}; set DEVICEMINT_CHAIN_ID or point DEVICEMINT_RPC_URL elsewhere"
        )
    recorded = load_deployment(settings.home, chain_id)
    if recorded is not None and _still_on_chain(w3, recorded):
        return recorded, False
    deployment = deploy_contracts(w3=w3, deployer=deployer, params=params)
    write_atomically(deployment_file(settings.home, chain_id), deployment.to_json().encode(), mode=0o644)
    return deployment, True


def require_deployment(settings: Settings, w3: Web3) -> Contracts:
    """The recorded deployment, or a clear error telling the person to deploy first."""
    recorded = load_deployment(settings.home, settings.chain_id)
    if recorded is None or not _still_on_chain(w3, recorded):
        raise ConfigError(
            f"no devicemint contracts recorded for chain {settings.chain_id} under {settings.home}; "
            "run `devicemint deploy` (or `devicemint demo`) first"
        )
    return Contracts.bind(w3, recorded)
