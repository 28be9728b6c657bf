"""Signing and sending transactions with a local key, on any JSON-RPC endpoint.

Transactions are signed here (never by an unlocked node account), so the same code runs on
anvil and on a public chain. Reverts are explained by the contract's custom error name, found
in the ABIs of our artifacts, rather than as raw selector bytes.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import Nonce, TxParams, TxReceipt, Wei

from devicemint.chain.artifacts import decode_custom_error
from devicemint.errors import ChainError

RECEIPT_POLL_SECONDS = 0.02


class TransactionReverted(ChainError):
    """The chain refused a transaction; the message names the contract's reason."""


def explain_revert(exc: ContractLogicError) -> str:
    """A readable reason for a revert: the custom error's name and arguments, if it is ours."""
    if isinstance(exc, ContractCustomError) and isinstance(exc.data, str):
        decoded = decode_custom_error(exc.data)
        return decoded.describe() if decoded else f"unknown custom error {exc.data[:10]}"
    return exc.message or str(exc)


@dataclass(frozen=True)
class Outcome:
    """What the journal keeps of a receipt."""

    tx_hash: str
    ok: bool
    block_number: int
    gas_used: int


_Found = TypeVar("_Found")


def _poll(fetch: Callable[[str], _Found | None], tx_hash: str, timeout: float) -> _Found:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = fetch(tx_hash)
        if found is not None:
            return found
        time.sleep(RECEIPT_POLL_SECONDS)
    raise ChainError(
        f"no receipt for transaction {tx_hash} after {timeout:.0f}s; it is journalled, so running "
        "the same command again waits for it or sends it again"
    )


@dataclass(frozen=True)
class SignedTx:
    tx_hash: str
    raw: bytes
    nonce: int


class TxSender:
    """Builds, signs, sends and waits for transactions from one account."""

    def __init__(self, *, w3: Web3, account: LocalAccount, chain_id: int) -> None:
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id
        self._fees: dict[str, int] | None = None

    def fees(self) -> dict[str, int]:
        """EIP-1559 fees, read once per sender: twice the base fee plus the node's tip."""
        if self._fees is None:
            base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tip = int(self.w3.eth.max_priority_fee)
            self._fees = {"maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}
        return self._fees

    def next_nonce(self) -> int:
        return int(self.w3.eth.get_transaction_count(self.account.address, "pending"))

    def sign(self, call: ContractFunction | ContractConstructor, *, nonce: int, gas: int) -> SignedTx:
        params: TxParams = {
            "from": self.account.address,
            "nonce": Nonce(nonce),
            "gas": gas,
            "chainId": self.chain_id,
            "maxFeePerGas": Wei(self.fees()["maxFeePerGas"]),
            "maxPriorityFeePerGas": Wei(self.fees()["maxPriorityFeePerGas"]),
        }
        return self._signed(dict(call.build_transaction(params)), nonce)

    def _signed(self, tx: dict[str, Any], nonce: int) -> SignedTx:
        signed = self.account.sign_transaction(tx)
        return SignedTx(tx_hash=Web3.to_hex(signed.hash), raw=bytes(signed.raw_transaction), nonce=nonce)

    def sign_data(self, *, to: str, data: bytes, nonce: int, gas: int) -> SignedTx:
        """Sign a call whose calldata is already encoded (see chain.calldata)."""
        tx: dict[str, Any] = {
            "to": to,
            "data": data,
            "value": 0,
            "nonce": nonce,
            "gas": gas,
            "chainId": self.chain_id,
            "type": 2,
            **self.fees(),
        }
        return self._signed(tx, nonce)

    def broadcast(self, signed: SignedTx) -> None:
        """Send signed bytes. A node that already has them, or has already mined them, is not
        an error: re-sending journalled bytes after a crash must be harmless."""
        try:
            self.w3.eth.send_raw_transaction(signed.raw)
        except Web3RPCError as exc:
            message = str(exc).lower()
            if "already known" in message or "already imported" in message:
                return
            if "nonce too low" in message and self.outcome(signed.tx_hash) is not None:
                return
            raise ChainError(f"the node refused transaction {signed.tx_hash}: {exc.message or exc}") from exc

    def receipt(self, tx_hash: str) -> TxReceipt | None:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def outcome(self, tx_hash: str) -> Outcome | None:
        """The receipt's status, block and gas, read raw: web3 would format each of a mint's 500
        Transfer logs field by field, which costs more than the node spent executing them."""
        answer = self.w3.provider.make_request("eth_getTransactionReceipt", [tx_hash])  # type: ignore[arg-type]
        if "error" in answer:
            raise ChainError(f"receipt of {tx_hash}: {answer['error'].get('message')}")
        raw = answer.get("result")
        if raw is None:
            return None
        return Outcome(
            tx_hash=tx_hash,
            ok=int(raw["status"], 16) == 1,
            block_number=int(raw["blockNumber"], 16),
            gas_used=int(raw["gasUsed"], 16),
        )

    def wait(self, tx_hash: str, *, timeout: float = 120.0) -> TxReceipt:
        return _poll(self.receipt, tx_hash, timeout)

    def wait_outcome(self, tx_hash: str, *, timeout: float = 120.0) -> Outcome:
        return _poll(self.outcome, tx_hash, timeout)

    def transact(self, call: ContractFunction | ContractConstructor, *, what: str) -> TxReceipt:
        """Estimate (which surfaces a revert with its reason), sign, send and wait."""
        try:
            gas = int(call.estimate_gas({"from": self.account.address}) * 1.25) + 10_000
        except ContractLogicError as exc:
            raise TransactionReverted(f"{what} refused by the contract: {explain_revert(exc)}") from exc
        signed = self.sign(call, nonce=self.next_nonce(), gas=gas)
        self.broadcast(signed)
        found = self.wait(signed.tx_hash)
        if found["status"] != 1:
            raise TransactionReverted(f"{what} reverted in transaction {signed.tx_hash}")
        return found


@contextmanager
def sender_lock(home: Path, address: str) -> Iterator[None]:
    """One process at a time per signing key on this machine.

    Two runs with the same key would race for nonces and for the same journal rows; the
    second is refused with a clear message instead (the lock dies with its process, so a
    killed run never leaves it behind).
    """
    path = home / "locks" / f"{address}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ChainError(
                f"another devicemint process is sending transactions for {address} "
                f"(lock {path}); wait for it to finish, then run this again"
            ) from exc
        yield
