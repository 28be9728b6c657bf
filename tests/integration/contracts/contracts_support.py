"""Constants and helpers shared by the contract tests (the fixtures live in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD
from web3.types import TxReceipt

from devicemint.chain.artifacts import decode_custom_error
from devicemint.chain.deploy import Deployment

ROOT = Path(__file__).resolve().parents[3]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"

MIN_STAKE = 100_000 * 10**18
COOLDOWN = 180 * 24 * 3600
VOTING_PERIOD = 7 * 24 * 3600
DESIGN = Web3.keccak(text="design: Acme Tracker T1 rev B")
ROOT_CERT = Web3.keccak(text="acme root certificate")
EVIDENCE = Web3.keccak(text="evidence")
DEVICE_EVIDENCE = Web3.keccak(text="device evidence")


@dataclass(frozen=True)
class Accounts:
    foundation: LocalAccount
    treasury: LocalAccount
    member1: LocalAccount
    member2: LocalAccount
    member3: LocalAccount
    manufacturer: LocalAccount
    manufacturer2: LocalAccount
    minter: LocalAccount
    outsider: LocalAccount
    buyer: LocalAccount


@dataclass
class Chain:
    """A deployed system plus the helpers every contract test needs."""

    w3: Web3
    deployment: Deployment
    accounts: Accounts
    token: Contract
    ml: Contract
    dl: Contract
    dc: Contract

    def send(self, fn: ContractFunction, sender: LocalAccount) -> TxReceipt:
        """Sends `fn` from `sender` (anvil dev accounts are unlocked); asserts success."""
        tx_hash = fn.transact({"from": sender.address})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        return receipt

    def reverts(self, fn: ContractFunction, sender: LocalAccount, error: str, *args: Any) -> None:
        """Asserts `fn` from `sender` reverts with custom error `error` (and `args`, if given)."""
        with pytest.raises(ContractCustomError) as info:
            fn.transact({"from": sender.address})
        decoded = decode_custom_error(info.value.data)
        assert decoded is not None, f"undecodable revert data {info.value.data}"
        assert decoded.name == error, f"reverted with {decoded.describe()}, expected {error}"
        if args:
            assert decoded.args == tuple(args), f"reverted with {decoded.describe()}"

    def events(self, receipt: TxReceipt, source: Contract, name: str) -> list[Any]:
        return list(getattr(source.events, name)().process_receipt(receipt, errors=DISCARD))

    def travel(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def fund_and_stake(self, who: LocalAccount, amount: int = MIN_STAKE) -> None:
        self.send(self.token.functions.mint(who.address, amount), self.accounts.foundation)
        self.send(self.token.functions.approve(self.ml.address, amount), who)
        self.send(self.ml.functions.stake(amount), who)

    def grant(self, who: LocalAccount, name: str = "Acme Devices GmbH") -> int:
        self.fund_and_stake(who)
        receipt = self.send(
            self.ml.functions.grant(who.address, name, ROOT_CERT, EVIDENCE), self.accounts.foundation
        )
        return int(self.events(receipt, self.ml, "Granted")[0]["args"]["licenceId"])

    def issue_device_licence(
        self, manufacturer: LocalAccount, design: bytes, model: str = "T1", revision: str = "B"
    ) -> int:
        a = self.accounts
        self.send(
            self.dl.functions.proposeIssue(manufacturer.address, design, model, revision, DEVICE_EVIDENCE),
            a.member1,
        )
        proposal_id = int(self.dl.functions.proposalCount().call())
        self.send(self.dl.functions.vote(proposal_id, True), a.member1)
        receipt = self.send(self.dl.functions.vote(proposal_id, True), a.member2)
        return int(self.events(receipt, self.dl, "LicenceIssued")[0]["args"]["licenceId"])
