"""deploy_contracts, DeploymentParams and Deployment against a real anvil."""

from __future__ import annotations

from pathlib import Path

import pytest
from contracts_support import COOLDOWN, MIN_STAKE, VOTING_PERIOD, Chain
from eth_account import Account
from web3 import Web3

from devicemint.chain.deploy import (
    DAY,
    Deployment,
    DeploymentError,
    DeploymentParams,
    contract,
    deploy_contracts,
)
from devicemint.chain.node import LocalNode, free_port
from devicemint.errors import ConfigError


def params_for(chain: Chain, **overrides: object) -> DeploymentParams:
    a = chain.accounts
    values: dict[str, object] = {
        "foundation": a.foundation.address,
        "treasury": a.treasury.address,
        "committee": (a.member1.address, a.member2.address),
    }
    values.update(overrides)
    return DeploymentParams(**values)  # type: ignore[arg-type]


def test_session_deployment_is_wired_and_owned_by_foundation(chain: Chain) -> None:
    a = chain.accounts
    d = chain.deployment
    assert d.chain_id == 31337
    assert d.deployed_block >= 1
    for address in (d.staking_token, d.manufacturer_license, d.device_license, d.device_certificate):
        assert Web3.is_checksum_address(address)
        assert len(chain.w3.eth.get_code(address)) > 0
    assert chain.w3.eth.get_code(d.staking_token, block_identifier=d.deployed_block - 1) == b""
    assert chain.ml.functions.owner().call() == a.foundation.address
    assert chain.dl.functions.owner().call() == a.foundation.address
    assert chain.ml.functions.minStake().call() == MIN_STAKE
    assert chain.ml.functions.withdrawalCooldown().call() == COOLDOWN
    assert chain.dl.functions.votingPeriod().call() == VOTING_PERIOD


def test_deployment_json_round_trip() -> None:
    deployment = Deployment(
        chain_id=137,
        staking_token=Web3.to_checksum_address("0x" + "11" * 20),
        manufacturer_license=Web3.to_checksum_address("0x" + "22" * 20),
        device_license=Web3.to_checksum_address("0x" + "33" * 20),
        device_certificate=Web3.to_checksum_address("0x" + "44" * 20),
        deployed_block=1234,
    )
    text = deployment.to_json()
    assert text.endswith("\n")
    assert Deployment.from_json(text) == deployment
    assert Deployment.from_json(deployment.to_dict()) == deployment
    lower = {**deployment.to_dict(), "device_license": "0x" + "33" * 20}
    assert Deployment.from_json(lower).device_license == deployment.device_license
    with pytest.raises(KeyError):
        Deployment.from_json('{"chain_id": 1}')
    with pytest.raises(ValueError):
        Deployment.from_json({**deployment.to_dict(), "staking_token": "nope"})
    with pytest.raises(ValueError):
        Deployment.from_json("[]")


def test_params_defaults_and_validation(chain: Chain) -> None:
    a = chain.accounts
    params = params_for(chain, foundation=a.foundation.address.lower())
    assert params.foundation == a.foundation.address  # checksummed
    assert params.min_stake == 100_000 * 10**18
    assert params.withdrawal_cooldown == 180 * DAY
    assert params.quorum == 2
    assert params.voting_period == 7 * DAY
    assert params.staking_token is None
    with pytest.raises(ConfigError, match="quorum 3"):
        params_for(chain, quorum=3)
    with pytest.raises(ConfigError, match="quorum 0"):
        params_for(chain, quorum=0)
    with pytest.raises(ConfigError, match="twice"):
        params_for(chain, committee=(a.member1.address, a.member1.address.lower()))
    with pytest.raises(ConfigError, match="treasury"):
        params_for(chain, treasury="0x1234")
    with pytest.raises(ConfigError, match="zero address"):
        params_for(chain, foundation="0x" + "00" * 20)
    with pytest.raises(ConfigError, match="voting period"):
        params_for(chain, voting_period=0)


def test_deploy_with_existing_token_and_separate_deployer(chain: Chain, dev_accounts: list) -> None:
    a = chain.accounts
    deployer = Account.from_key(dev_accounts[9].key)
    params = params_for(chain, staking_token=chain.deployment.staking_token, quorum=1, min_stake=5)
    before = chain.w3.eth.block_number
    deployment = deploy_contracts(w3=chain.w3, deployer=deployer, params=params)
    assert deployment.staking_token == chain.deployment.staking_token
    assert deployment.deployed_block == before + 1
    assert chain.w3.eth.block_number == before + 3  # three contracts, no token
    ml = contract(chain.w3, "ManufacturerLicense", deployment.manufacturer_license)
    dl = contract(chain.w3, "DeviceLicense", deployment.device_license)
    dc = contract(chain.w3, "DeviceCertificate", deployment.device_certificate)
    assert ml.functions.owner().call() == a.foundation.address
    assert ml.functions.stakeToken().call() == chain.deployment.staking_token
    assert ml.functions.treasury().call() == a.treasury.address
    assert ml.functions.minStake().call() == 5
    assert dl.functions.owner().call() == a.foundation.address
    assert dl.functions.manufacturerLicense().call() == deployment.manufacturer_license
    assert dl.functions.quorum().call() == 1
    assert dl.functions.committeeSize().call() == 2
    assert dc.functions.deviceLicense().call() == deployment.device_license
    assert dc.functions.manufacturerLicense().call() == deployment.manufacturer_license


def test_staking_token_without_code_refused(chain: Chain) -> None:
    params = params_for(chain, staking_token="0x" + "12" * 20)
    with pytest.raises(ConfigError, match="no contract code"):
        deploy_contracts(w3=chain.w3, deployer=chain.accounts.foundation, params=params)


def test_unfunded_deployer_raises_deployment_error(chain: Chain) -> None:
    poor = Account.create()
    with pytest.raises(DeploymentError, match="StakingToken"):
        deploy_contracts(w3=chain.w3, deployer=poor, params=params_for(chain))


def test_stand_in_token_only_on_local_chain(chain: Chain, tmp_path: Path) -> None:
    node = LocalNode(state_dir=tmp_path, port=free_port(), chain_id=1337, persist=False)
    node.start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        with pytest.raises(ConfigError, match="chain 1337"):
            deploy_contracts(w3=w3, deployer=chain.accounts.foundation, params=params_for(chain))
        assert w3.eth.get_transaction_count(chain.accounts.foundation.address) == 0
    finally:
        node.stop()
