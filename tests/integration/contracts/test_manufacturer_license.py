"""ManufacturerLicense: stake, grant, status changes, slashing, withdrawal, non-transferability."""

from __future__ import annotations

from contracts_support import COOLDOWN, EVIDENCE, MIN_STAKE, ROOT_CERT, Chain
from web3 import Web3

NONE, ACTIVE, SUSPENDED, REVOKED, RENOUNCED = range(5)
REASON = Web3.keccak(text="audit finding 7")
ZERO32 = b"\x00" * 32


def test_constructor_state(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    assert ml.owner().call() == a.foundation.address
    assert ml.stakeToken().call() == chain.token.address
    assert ml.treasury().call() == a.treasury.address
    assert ml.minStake().call() == MIN_STAKE
    assert ml.withdrawalCooldown().call() == COOLDOWN
    assert ml.name().call() == "Devicemint Manufacturer Licence"
    assert ml.symbol().call() == "DMML"


def test_staking_token_metadata_and_mint_restricted(chain: Chain) -> None:
    a = chain.accounts
    token = chain.token.functions
    assert (token.name().call(), token.symbol().call(), token.decimals().call()) == (
        "Devicemint Stake",
        "DMS",
        18,
    )
    assert token.owner().call() == a.foundation.address  # the deployer
    chain.reverts(
        token.mint(a.outsider.address, 1), a.outsider, "OwnableUnauthorizedAccount", a.outsider.address
    )
    chain.send(token.mint(a.outsider.address, 5), a.foundation)
    assert token.balanceOf(a.outsider.address).call() == 5


def test_stake_moves_tokens_and_adds_up(chain: Chain) -> None:
    a = chain.accounts
    chain.send(chain.token.functions.mint(a.manufacturer2.address, 300), a.foundation)
    chain.send(chain.token.functions.approve(chain.ml.address, 300), a.manufacturer2)
    receipt = chain.send(chain.ml.functions.stake(100), a.manufacturer2)
    (event,) = chain.events(receipt, chain.ml, "Staked")
    assert dict(event["args"]) == {"staker": a.manufacturer2.address, "amount": 100, "totalStake": 100}
    chain.send(chain.ml.functions.stake(200), a.manufacturer2)
    assert chain.ml.functions.stakeOf(a.manufacturer2.address).call() == 300
    assert chain.token.functions.balanceOf(a.manufacturer2.address).call() == 0
    assert chain.token.functions.balanceOf(chain.ml.address).call() == MIN_STAKE + 300


def test_stake_refusals(chain: Chain) -> None:
    a = chain.accounts
    chain.reverts(chain.ml.functions.stake(0), a.manufacturer2, "ZeroAmount")
    chain.reverts(
        chain.ml.functions.stake(10), a.manufacturer2, "ERC20InsufficientAllowance", chain.ml.address, 0, 10
    )


def test_grant_records_licence_and_locks_token(chain: Chain) -> None:
    a = chain.accounts
    chain.fund_and_stake(a.manufacturer2)
    receipt = chain.send(
        chain.ml.functions.grant(a.manufacturer2.address, "Beta Sensors Ltd", ROOT_CERT, EVIDENCE),
        a.foundation,
    )
    (granted,) = chain.events(receipt, chain.ml, "Granted")
    assert dict(granted["args"]) == {
        "licenceId": 2,
        "holder": a.manufacturer2.address,
        "name": "Beta Sensors Ltd",
        "rootCertFingerprint": ROOT_CERT,
        "evidenceHash": EVIDENCE,
    }
    (locked,) = chain.events(receipt, chain.ml, "Locked")
    assert locked["args"]["tokenId"] == 2
    block_time = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    ml = chain.ml.functions
    assert ml.licence(2).call() == (
        a.manufacturer2.address,
        "Beta Sensors Ltd",
        ROOT_CERT,
        EVIDENCE,
        ACTIVE,
        block_time,
        ZERO32,
    )
    assert ml.licenceIdOf(a.manufacturer2.address).call() == 2
    assert ml.isActive(a.manufacturer2.address).call() is True
    assert ml.ownerOf(2).call() == a.manufacturer2.address
    assert ml.balanceOf(a.manufacturer2.address).call() == 1
    assert ml.locked(2).call() is True
    assert ml.licenceCount().call() == 2


def test_unknown_address_and_licence(chain: Chain) -> None:
    a = chain.accounts
    assert chain.ml.functions.licenceIdOf(a.outsider.address).call() == 0
    assert chain.ml.functions.isActive(a.outsider.address).call() is False
    chain.reverts(chain.ml.functions.licence(99), a.outsider, "UnknownLicence", 99)


def test_grant_refusals(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    grant = ml.grant(a.manufacturer2.address, "Beta", ROOT_CERT, EVIDENCE)
    chain.reverts(grant, a.outsider, "OwnableUnauthorizedAccount", a.outsider.address)
    chain.reverts(grant, a.manufacturer2, "OwnableUnauthorizedAccount", a.manufacturer2.address)
    chain.reverts(grant, a.foundation, "StakeBelowMinimum", a.manufacturer2.address, 0, MIN_STAKE)
    chain.fund_and_stake(a.manufacturer2, MIN_STAKE - 1)
    chain.reverts(grant, a.foundation, "StakeBelowMinimum", a.manufacturer2.address, MIN_STAKE - 1, MIN_STAKE)
    zero = "0x" + "00" * 20
    chain.reverts(ml.grant(zero, "Beta", ROOT_CERT, EVIDENCE), a.foundation, "ZeroAddress")
    chain.reverts(ml.grant(a.manufacturer2.address, "", ROOT_CERT, EVIDENCE), a.foundation, "EmptyName")
    chain.reverts(
        ml.grant(a.manufacturer2.address, "Beta", ZERO32, EVIDENCE), a.foundation, "ZeroFingerprint"
    )


def test_second_licence_refused_while_active_after_revoke_and_after_renounce(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    again = ml.grant(a.manufacturer.address, "Acme again", ROOT_CERT, EVIDENCE)
    chain.reverts(again, a.foundation, "LicenceAlreadyGranted", a.manufacturer.address, 1)
    chain.send(ml.revoke(1, REASON), a.foundation)
    chain.reverts(again, a.foundation, "LicenceAlreadyGranted", a.manufacturer.address, 1)

    assert chain.grant(a.manufacturer2) == 2
    chain.send(ml.beginWithdrawal(), a.manufacturer2)
    chain.travel(COOLDOWN + 1)
    chain.send(ml.withdraw(), a.manufacturer2)
    chain.fund_and_stake(a.manufacturer2)
    chain.reverts(
        ml.grant(a.manufacturer2.address, "Beta", ROOT_CERT, EVIDENCE),
        a.foundation,
        "LicenceAlreadyGranted",
        a.manufacturer2.address,
        2,
    )


def test_grant_refused_during_pending_withdrawal(chain: Chain) -> None:
    a = chain.accounts
    chain.fund_and_stake(a.manufacturer2)
    chain.send(chain.ml.functions.beginWithdrawal(), a.manufacturer2)
    chain.reverts(
        chain.ml.functions.grant(a.manufacturer2.address, "Beta", ROOT_CERT, EVIDENCE),
        a.foundation,
        "WithdrawalPending",
        a.manufacturer2.address,
    )


def test_suspend_reinstate_revoke(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    receipt = chain.send(ml.suspend(1, REASON), a.foundation)
    assert dict(chain.events(receipt, chain.ml, "Suspended")[0]["args"]) == {
        "licenceId": 1,
        "reasonHash": REASON,
    }
    licence = ml.licence(1).call()
    assert (licence[4], licence[6]) == (SUSPENDED, REASON)
    assert ml.isActive(a.manufacturer.address).call() is False
    chain.reverts(ml.suspend(1, REASON), a.foundation, "InvalidStatus", 1, SUSPENDED)

    receipt = chain.send(ml.reinstate(1), a.foundation)
    assert chain.events(receipt, chain.ml, "Reinstated")[0]["args"]["licenceId"] == 1
    licence = ml.licence(1).call()
    assert (licence[4], licence[6]) == (ACTIVE, ZERO32)
    assert ml.isActive(a.manufacturer.address).call() is True
    chain.reverts(ml.reinstate(1), a.foundation, "InvalidStatus", 1, ACTIVE)

    receipt = chain.send(ml.revoke(1, REASON), a.foundation)
    assert dict(chain.events(receipt, chain.ml, "Revoked")[0]["args"]) == {
        "licenceId": 1,
        "reasonHash": REASON,
    }
    licence = ml.licence(1).call()
    assert (licence[4], licence[6]) == (REVOKED, REASON)
    assert ml.isActive(a.manufacturer.address).call() is False
    # Revocation is terminal.
    chain.reverts(ml.revoke(1, REASON), a.foundation, "InvalidStatus", 1, REVOKED)
    chain.reverts(ml.reinstate(1), a.foundation, "InvalidStatus", 1, REVOKED)
    chain.reverts(ml.suspend(1, REASON), a.foundation, "InvalidStatus", 1, REVOKED)
    # The token stays with its holder as the record of the licence.
    assert ml.ownerOf(1).call() == a.manufacturer.address


def test_revoke_from_suspended(chain: Chain) -> None:
    a = chain.accounts
    chain.send(chain.ml.functions.suspend(1, REASON), a.foundation)
    chain.send(chain.ml.functions.revoke(1, REASON), a.foundation)
    assert chain.ml.functions.licence(1).call()[4] == REVOKED


def test_status_changes_on_unknown_licence(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    chain.reverts(ml.suspend(7, REASON), a.foundation, "UnknownLicence", 7)
    chain.reverts(ml.reinstate(7), a.foundation, "UnknownLicence", 7)
    chain.reverts(ml.revoke(7, REASON), a.foundation, "UnknownLicence", 7)


def test_foundation_functions_refuse_other_callers(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    calls = [
        ml.suspend(1, REASON),
        ml.reinstate(1),
        ml.revoke(1, REASON),
        ml.slash(a.manufacturer.address, 1, REASON),
        ml.setTreasury(a.outsider.address),
        ml.setMinStake(1),
        ml.setWithdrawalCooldown(1),
    ]
    for call in calls:
        for caller in (a.outsider, a.manufacturer, a.member1):
            chain.reverts(call, caller, "OwnableUnauthorizedAccount", caller.address)


def test_slash_moves_stake_to_treasury(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    treasury_before = chain.token.functions.balanceOf(a.treasury.address).call()
    amount = 40_000 * 10**18
    receipt = chain.send(ml.slash(a.manufacturer.address, amount, REASON), a.foundation)
    assert dict(chain.events(receipt, chain.ml, "Slashed")[0]["args"]) == {
        "manufacturer": a.manufacturer.address,
        "amount": amount,
        "treasury": a.treasury.address,
        "reasonHash": REASON,
    }
    assert ml.stakeOf(a.manufacturer.address).call() == MIN_STAKE - amount
    assert chain.token.functions.balanceOf(a.treasury.address).call() == treasury_before + amount
    assert chain.token.functions.balanceOf(chain.ml.address).call() == MIN_STAKE - amount
    # Below the minimum stake the licence is suspended with the slash's reason ...
    assert chain.events(receipt, chain.ml, "Suspended")[0]["args"]["reasonHash"] == REASON
    assert ml.licence(1).call()[4] == SUSPENDED
    assert ml.isActive(a.manufacturer.address).call() is False
    # ... and cannot be reinstated until the stake is topped up again.
    chain.reverts(
        ml.reinstate(1),
        a.foundation,
        "StakeBelowMinimum",
        a.manufacturer.address,
        MIN_STAKE - amount,
        MIN_STAKE,
    )
    chain.send(chain.token.functions.mint(a.manufacturer.address, amount), a.foundation)
    chain.send(chain.token.functions.approve(chain.ml.address, amount), a.manufacturer)
    chain.send(ml.stake(amount), a.manufacturer)
    chain.send(ml.reinstate(1), a.foundation)
    assert ml.isActive(a.manufacturer.address).call() is True


def test_a_slash_that_leaves_the_minimum_keeps_the_licence_active(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    extra = 5_000 * 10**18
    chain.send(chain.token.functions.mint(a.manufacturer.address, extra), a.foundation)
    chain.send(chain.token.functions.approve(chain.ml.address, extra), a.manufacturer)
    chain.send(ml.stake(extra), a.manufacturer)
    receipt = chain.send(ml.slash(a.manufacturer.address, extra, REASON), a.foundation)
    assert chain.events(receipt, chain.ml, "Suspended") == []
    assert ml.isActive(a.manufacturer.address).call() is True


def test_slash_refusals(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    chain.reverts(ml.slash(a.manufacturer.address, 0, REASON), a.foundation, "ZeroAmount")
    chain.reverts(
        ml.slash(a.manufacturer.address, MIN_STAKE + 1, REASON),
        a.foundation,
        "InsufficientStake",
        a.manufacturer.address,
        MIN_STAKE,
        MIN_STAKE + 1,
    )


def test_slash_follows_new_treasury(chain: Chain) -> None:
    a = chain.accounts
    receipt = chain.send(chain.ml.functions.setTreasury(a.buyer.address), a.foundation)
    assert chain.events(receipt, chain.ml, "TreasuryChanged")[0]["args"]["treasury"] == a.buyer.address
    assert chain.ml.functions.treasury().call() == a.buyer.address
    before = chain.token.functions.balanceOf(a.buyer.address).call()
    chain.send(chain.ml.functions.slash(a.manufacturer.address, 5, REASON), a.foundation)
    assert chain.token.functions.balanceOf(a.buyer.address).call() == before + 5
    chain.reverts(chain.ml.functions.setTreasury("0x" + "00" * 20), a.foundation, "ZeroAddress")


def test_withdrawal_renounces_licence_and_pays_after_cooldown(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    receipt = chain.send(ml.beginWithdrawal(), a.manufacturer)
    available_at = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + COOLDOWN
    assert chain.events(receipt, chain.ml, "Renounced")[0]["args"]["licenceId"] == 1
    assert dict(chain.events(receipt, chain.ml, "WithdrawalBegun")[0]["args"]) == {
        "staker": a.manufacturer.address,
        "stake": MIN_STAKE,
        "availableAt": available_at,
    }
    assert ml.licence(1).call()[4] == RENOUNCED
    assert ml.licence(1).call()[6] == ZERO32  # not for cause
    assert ml.isActive(a.manufacturer.address).call() is False
    assert ml.withdrawalAvailableAt(a.manufacturer.address).call() == available_at

    chain.reverts(ml.withdraw(), a.manufacturer, "CooldownNotOver", a.manufacturer.address, available_at)
    chain.reverts(ml.beginWithdrawal(), a.manufacturer, "WithdrawalPending", a.manufacturer.address)
    chain.reverts(ml.stake(1), a.manufacturer, "WithdrawalPending", a.manufacturer.address)
    chain.travel(COOLDOWN // 2)
    chain.reverts(ml.withdraw(), a.manufacturer, "CooldownNotOver", a.manufacturer.address, available_at)

    chain.travel(COOLDOWN // 2 + 1)
    balance_before = chain.token.functions.balanceOf(a.manufacturer.address).call()
    receipt = chain.send(ml.withdraw(), a.manufacturer)
    assert dict(chain.events(receipt, chain.ml, "Withdrawn")[0]["args"]) == {
        "staker": a.manufacturer.address,
        "amount": MIN_STAKE,
    }
    assert chain.token.functions.balanceOf(a.manufacturer.address).call() == balance_before + MIN_STAKE
    assert ml.stakeOf(a.manufacturer.address).call() == 0
    assert ml.withdrawalAvailableAt(a.manufacturer.address).call() == 0
    assert ml.licence(1).call()[4] == RENOUNCED
    chain.reverts(ml.withdraw(), a.manufacturer, "NoWithdrawalPending", a.manufacturer.address)


def test_slash_during_cooldown_reduces_payout(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    chain.send(ml.beginWithdrawal(), a.manufacturer)
    chain.send(ml.slash(a.manufacturer.address, 30_000 * 10**18, REASON), a.foundation)
    chain.travel(COOLDOWN + 1)
    before = chain.token.functions.balanceOf(a.manufacturer.address).call()
    chain.send(ml.withdraw(), a.manufacturer)
    assert chain.token.functions.balanceOf(a.manufacturer.address).call() == before + 70_000 * 10**18


def test_suspended_cannot_renounce_and_revoked_stays_revoked(chain: Chain) -> None:
    """Leaving must not turn a suspension into a clean exit (renounced devices stay genuine)."""
    a = chain.accounts
    ml = chain.ml.functions
    chain.send(ml.suspend(1, REASON), a.foundation)
    chain.reverts(ml.beginWithdrawal(), a.manufacturer, "InvalidStatus", 1, SUSPENDED)
    assert ml.licence(1).call()[4] == SUSPENDED

    chain.grant(a.manufacturer2)
    chain.send(ml.revoke(2, REASON), a.foundation)
    receipt = chain.send(ml.beginWithdrawal(), a.manufacturer2)
    assert chain.events(receipt, chain.ml, "Renounced") == []
    assert ml.licence(2).call()[4] == REVOKED


def test_revoke_after_renounce_is_for_cause(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    chain.send(ml.beginWithdrawal(), a.manufacturer)
    chain.reverts(ml.suspend(1, REASON), a.foundation, "InvalidStatus", 1, RENOUNCED)
    chain.reverts(ml.reinstate(1), a.foundation, "InvalidStatus", 1, RENOUNCED)
    chain.send(ml.revoke(1, REASON), a.foundation)
    assert ml.licence(1).call()[4] == REVOKED


def test_withdrawal_without_stake_refused(chain: Chain) -> None:
    a = chain.accounts
    chain.reverts(chain.ml.functions.beginWithdrawal(), a.outsider, "NoStake", a.outsider.address)
    chain.reverts(chain.ml.functions.withdraw(), a.outsider, "NoWithdrawalPending", a.outsider.address)


def test_staker_without_licence_can_withdraw_and_stake_again(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    chain.fund_and_stake(a.manufacturer2, 1000)
    receipt = chain.send(ml.beginWithdrawal(), a.manufacturer2)
    assert chain.events(receipt, chain.ml, "Renounced") == []
    chain.travel(COOLDOWN)
    chain.send(ml.withdraw(), a.manufacturer2)
    assert chain.token.functions.balanceOf(a.manufacturer2.address).call() == 1000
    chain.send(chain.token.functions.approve(chain.ml.address, 1000), a.manufacturer2)
    chain.send(ml.stake(1000), a.manufacturer2)
    assert ml.stakeOf(a.manufacturer2.address).call() == 1000


def test_setters_update_values_and_apply_to_later_actions(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    receipt = chain.send(ml.setMinStake(10), a.foundation)
    assert chain.events(receipt, chain.ml, "MinStakeChanged")[0]["args"]["minStake"] == 10
    assert ml.minStake().call() == 10
    chain.fund_and_stake(a.manufacturer2, 10)
    chain.send(ml.grant(a.manufacturer2.address, "Beta", ROOT_CERT, EVIDENCE), a.foundation)
    assert ml.isActive(a.manufacturer2.address).call() is True

    receipt = chain.send(ml.setWithdrawalCooldown(60), a.foundation)
    assert chain.events(receipt, chain.ml, "WithdrawalCooldownChanged")[0]["args"]["cooldown"] == 60
    assert ml.withdrawalCooldown().call() == 60
    receipt = chain.send(ml.beginWithdrawal(), a.manufacturer2)
    begun = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert ml.withdrawalAvailableAt(a.manufacturer2.address).call() == begun + 60


def test_licence_is_soulbound(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    m = a.manufacturer
    chain.reverts(ml.transferFrom(m.address, a.buyer.address, 1), m, "LicenceNonTransferable")
    chain.reverts(ml.safeTransferFrom(m.address, a.buyer.address, 1), m, "LicenceNonTransferable")
    chain.reverts(ml.safeTransferFrom(m.address, a.buyer.address, 1, b"x"), m, "LicenceNonTransferable")
    chain.reverts(ml.approve(a.buyer.address, 1), m, "LicenceNonTransferable")
    chain.reverts(ml.setApprovalForAll(a.buyer.address, True), m, "LicenceNonTransferable")
    assert ml.ownerOf(1).call() == m.address
    assert ml.getApproved(1).call() == "0x" + "00" * 20
    assert ml.locked(1).call() is True
    chain.reverts(ml.locked(42), a.outsider, "ERC721NonexistentToken", 42)
    assert ml.supportsInterface(bytes.fromhex("b45a3c0e")).call() is True  # ERC-5192
    assert ml.supportsInterface(bytes.fromhex("80ac58cd")).call() is True  # ERC-721
    assert ml.supportsInterface(bytes.fromhex("01ffc9a7")).call() is True  # ERC-165
    assert ml.supportsInterface(bytes.fromhex("ffffffff")).call() is False


def test_ownership_moves_in_two_steps(chain: Chain) -> None:
    a = chain.accounts
    ml = chain.ml.functions
    chain.send(ml.transferOwnership(a.buyer.address), a.foundation)
    assert ml.owner().call() == a.foundation.address
    assert ml.pendingOwner().call() == a.buyer.address
    chain.reverts(ml.acceptOwnership(), a.outsider, "OwnableUnauthorizedAccount", a.outsider.address)
    chain.send(ml.acceptOwnership(), a.buyer)
    assert ml.owner().call() == a.buyer.address


def test_ownership_cannot_be_renounced(chain: Chain) -> None:
    a = chain.accounts
    chain.reverts(chain.ml.functions.renounceOwnership(), a.foundation, "OwnershipCannotBeRenounced")
    assert chain.ml.functions.owner().call() == a.foundation.address
