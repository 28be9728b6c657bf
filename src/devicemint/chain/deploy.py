"""Deploying the devicemint contracts to any EVM chain.

Every transaction is signed locally with the deployer's key (eth-account) and sent raw, so the
same code deploys to anvil and to a remote RPC; nothing relies on node-unlocked accounts. This
module knows nothing about files or settings: `devicemint.chain.deployments` records the result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3RPCError

from devicemint.chain.artifacts import load_artifact
from devicemint.chain.tx import TransactionReverted, TxSender
from devicemint.config import LOCAL_CHAIN_ID
from devicemint.errors import ChainError, ConfigError

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
DAY = 24 * 60 * 60


class DeploymentError(ChainError):
    """A deployment transaction could not be sent or was refused by the chain."""


@dataclass(frozen=True, kw_only=True)
class DeploymentParams:
    """Who runs the programme and its governance numbers, fixed at deployment.

    `staking_token=None` deploys the StakingToken stand-in (owned by the deployer, so it can
    mint test stake); that is only allowed on the local chain 31337, because on a real network
    the stake must be the network's own token.
    """

    foundation: str
    treasury: str
    committee: tuple[str, ...]
    staking_token: str | None = None
    min_stake: int = 100_000 * 10**18
    withdrawal_cooldown: int = 180 * DAY
    quorum: int = 2
    voting_period: int = 7 * DAY

    def __post_init__(self) -> None:
        object.__setattr__(self, "foundation", _address("foundation", self.foundation))
        object.__setattr__(self, "treasury", _address("treasury", self.treasury))
        committee = tuple(_address("committee member", a) for a in self.committee)
        object.__setattr__(self, "committee", committee)
        if self.staking_token is not None:
            object.__setattr__(self, "staking_token", _address("staking token", self.staking_token))
        if len(set(committee)) != len(committee):
            raise ConfigError("the committee lists the same address twice")
        if not 1 <= self.quorum <= len(committee):
            raise ConfigError(
                f"quorum {self.quorum} is impossible with {len(committee)} committee member(s); "
                "it must be between 1 and the committee size"
            )
        if self.voting_period <= 0:
            raise ConfigError("the voting period must be at least one second")
        if self.min_stake < 0 or self.withdrawal_cooldown < 0:
            raise ConfigError("minimum stake and withdrawal cooldown cannot be negative")


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """Where the contracts live on one chain, and the block to index from."""

    chain_id: int
    staking_token: ChecksumAddress
    manufacturer_license: ChecksumAddress
    device_license: ChecksumAddress
    device_certificate: ChecksumAddress
    #: Block of the first deployment transaction: no devicemint event can be older.
    deployed_block: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Stable JSON text (sorted keys, trailing newline)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> Deployment:
        """Inverse of `to_json`; accepts the JSON text or an already parsed mapping.

        Raises KeyError for a missing field and ValueError for a malformed one.
        """
        raw = json.loads(data) if isinstance(data, str | bytes) else data
        if not isinstance(raw, Mapping):
            raise ValueError("a deployment record must be a JSON object")
        return cls(
            chain_id=int(raw["chain_id"]),
            staking_token=_checksum(raw["staking_token"]),
            manufacturer_license=_checksum(raw["manufacturer_license"]),
            device_license=_checksum(raw["device_license"]),
            device_certificate=_checksum(raw["device_certificate"]),
            deployed_block=int(raw["deployed_block"]),
        )


def contract(w3: Web3, name: str, address: str) -> Contract:
    """A web3 contract object for artifact `name` at `address`."""
    return w3.eth.contract(address=_checksum(address), abi=list(load_artifact(name).abi))


def deploy_contracts(*, w3: Web3, deployer: LocalAccount, params: DeploymentParams) -> Deployment:
    """Deploys StakingToken (local chain only, when no token is given), ManufacturerLicense,
    DeviceLicense and DeviceCertificate, in that order, each after the previous one's receipt.

    Licence contracts are owned by `params.foundation` from their constructor, so no ownership
    transfer is needed even when the deployer is a different key.
    """
    chain_id = int(w3.eth.chain_id)
    if params.staking_token is None and chain_id != LOCAL_CHAIN_ID:
        raise ConfigError(
            f"chain {chain_id} is not the local development chain ({LOCAL_CHAIN_ID}): give the "
            "address of the network's staking token instead of deploying a stand-in"
        )
    sender = TxSender(w3=w3, account=deployer, chain_id=chain_id)

    first_block: int | None = None
    if params.staking_token is None:
        staking_token, block = _deploy(sender, "StakingToken", deployer.address)
        first_block = block
    else:
        staking_token = _checksum(params.staking_token)
        if not w3.eth.get_code(staking_token):
            raise ConfigError(f"the staking token {staking_token} has no contract code on chain {chain_id}")

    manufacturer_license, block = _deploy(
        sender,
        "ManufacturerLicense",
        staking_token,
        params.foundation,
        params.treasury,
        params.min_stake,
        params.withdrawal_cooldown,
    )
    first_block = block if first_block is None else first_block
    device_license, _ = _deploy(
        sender,
        "DeviceLicense",
        manufacturer_license,
        params.foundation,
        list(params.committee),
        params.quorum,
        params.voting_period,
    )
    device_certificate, _ = _deploy(sender, "DeviceCertificate", device_license, manufacturer_license)
    return Deployment(
        chain_id=chain_id,
        staking_token=staking_token,
        manufacturer_license=manufacturer_license,
        device_license=device_license,
        device_certificate=device_certificate,
        deployed_block=first_block,
    )


def _deploy(sender: TxSender, name: str, *args: Any) -> tuple[ChecksumAddress, int]:
    """Deploys artifact `name`; returns (address, block number)."""
    artifact = load_artifact(name)
    factory = sender.w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
    try:
        receipt = sender.transact(factory.constructor(*args), what=f"deploying {name}")
    except (TransactionReverted, ChainError, Web3RPCError) as exc:
        raise DeploymentError(f"deploying {name} failed: {exc}") from exc
    created = receipt.get("contractAddress")
    if not created:
        raise DeploymentError(f"deploying {name}: the receipt names no contract address")
    return _checksum(created), int(receipt["blockNumber"])


def _checksum(value: str) -> ChecksumAddress:
    if not isinstance(value, str) or not Web3.is_address(value):
        raise ValueError(f"{value!r} is not an address")
    return Web3.to_checksum_address(value)


def _address(role: str, value: str) -> str:
    try:
        address = _checksum(value)
    except ValueError as exc:
        raise ConfigError(f"the {role} address {value!r} is not a valid 0x address") from exc
    if address == ZERO_ADDRESS:
        raise ConfigError(f"the {role} address cannot be the zero address")
    return address


__all__: Sequence[str] = (
    "DAY",
    "LOCAL_CHAIN_ID",
    "Deployment",
    "DeploymentError",
    "DeploymentParams",
    "contract",
    "deploy_contracts",
)
