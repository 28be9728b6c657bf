"""Roles read from a real chain: the foundation owns the licences, the committee is recorded."""

from __future__ import annotations

from eth_account import Account
from web3 import Web3

from devicemint.auth.roles import ChainRoleResolver, Role
from devicemint.chain.deploy import DeploymentParams, contract, deploy_contracts
from devicemint.chain.keys import dev_account


def test_roles_come_from_the_licence_contracts(w3: Web3, chain_snapshot: None) -> None:
    foundation, treasury, member1, member2, auditor = (dev_account(i) for i in range(5))
    deployment = deploy_contracts(
        w3=w3,
        deployer=foundation,
        params=DeploymentParams(
            foundation=foundation.address,
            treasury=treasury.address,
            committee=(member1.address, member2.address),
            quorum=2,
        ),
    )
    resolver = ChainRoleResolver(
        manufacturer_license=contract(w3, "ManufacturerLicense", deployment.manufacturer_license),
        device_license=contract(w3, "DeviceLicense", deployment.device_license),
        is_auditor=lambda address: {"hardware_security"} if address == auditor.address else set(),
    )
    assert resolver.roles_of(foundation.address) == {Role.FOUNDATION, Role.PUBLIC}
    assert resolver.roles_of(member2.address) == {Role.COMMITTEE, Role.PUBLIC}
    assert resolver.roles_of(auditor.address) == {Role.AUDITOR, Role.PUBLIC}
    assert resolver.roles_of(Account.create().address) == {Role.MANUFACTURER, Role.PUBLIC}
