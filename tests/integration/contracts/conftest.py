"""Fixtures for the contract tests: one real anvil and one deployment for the session, a
licensed sample manufacturer with device licence 1, and a chain snapshot around every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from contracts_support import (
    COOLDOWN,
    DESIGN,
    MIN_STAKE,
    VOTING_PERIOD,
    Accounts,
    Chain,
)
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devicemint.chain.deploy import DeploymentParams, contract, deploy_contracts
from devicemint.chain.keys import dev_account


@pytest.fixture(scope="session")
def dev_accounts() -> list[LocalAccount]:
    return [dev_account(i) for i in range(10)]


@pytest.fixture(scope="session")
def _deployed(w3: Web3, dev_accounts: list[LocalAccount]) -> Chain:
    accounts = Accounts(*dev_accounts)
    params = DeploymentParams(
        foundation=accounts.foundation.address,
        treasury=accounts.treasury.address,
        committee=(accounts.member1.address, accounts.member2.address, accounts.member3.address),
        quorum=2,
        voting_period=VOTING_PERIOD,
        min_stake=MIN_STAKE,
        withdrawal_cooldown=COOLDOWN,
    )
    deployment = deploy_contracts(w3=w3, deployer=accounts.foundation, params=params)
    chain = Chain(
        w3=w3,
        deployment=deployment,
        accounts=accounts,
        token=contract(w3, "StakingToken", deployment.staking_token),
        ml=contract(w3, "ManufacturerLicense", deployment.manufacturer_license),
        dl=contract(w3, "DeviceLicense", deployment.device_license),
        dc=contract(w3, "DeviceCertificate", deployment.device_certificate),
    )
    # The sample manufacturer: manufacturer licence 1 and device licence 1 for DESIGN.
    assert chain.grant(accounts.manufacturer) == 1
    assert chain.issue_device_licence(accounts.manufacturer, DESIGN) == 1
    return chain


@pytest.fixture
def chain(_deployed: Chain) -> Iterator[Chain]:
    """The session deployment, reverted to its initial state after the test."""
    w3 = _deployed.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    yield _deployed
    w3.provider.make_request("evm_revert", [snapshot])
