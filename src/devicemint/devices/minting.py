"""Minting a validated batch on chain, through a write-ahead transaction journal.

Every transaction is signed, written to the journal (with the devices it carries) and committed
before it is sent. A run that is killed at any moment, even between send and receipt, is
finished by running it again: journalled transactions are looked up, re-broadcast as the same
bytes (same nonce, so never applied twice) or, if their nonce went elsewhere, their devices are
planned again. The contract refuses an address that is already certified, so no device can be
minted twice even by a confused operator.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.exceptions import ContractLogicError

from devicemint.chain.calldata import encode_call
from devicemint.chain.deployments import Contracts
from devicemint.chain.tx import (
    Outcome,
    SignedTx,
    TransactionReverted,
    TxSender,
    explain_revert,
    sender_lock,
)
from devicemint.db.models import Batch, Certificate, ChainTx
from devicemint.db.session import transaction
from devicemint.devices.intake import Intake, IntakeResult, chain_conflicts
from devicemint.errors import ChainError, DevicemintError
from devicemint.licensing.registry import MintingLicence, read_minting_licence
from devicemint.pki.authority import Authority
from devicemint.runtime import Runtime

# Gas limits are upper bounds, not estimates: estimating would execute every chunk twice.
# Unused gas is not charged. Measured use is ~25,000 per device (see bench/).
OPEN_BATCH_GAS = 400_000
MINT_GAS_BASE = 120_000
MINT_GAS_PER_DEVICE = 32_000
RECONCILE_CHUNK = 1000


@dataclass
class MintReport:
    batch_id: int
    chain_batch_id: int
    device_count: int
    minted_now: int = 0
    already_minted: int = 0
    transactions: int = 0
    gas_used: int = 0
    recovered_transactions: int = 0
    seconds: float = 0.0
    chain_seconds: float = 0.0
    tx_hashes: list[str] = field(default_factory=list)


ProgressCallback = Callable[[int], None]


class Minter:
    """Mints one batch's devices to the licence holder, chunk by chunk."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        contracts: Contracts,
        sender: TxSender,
        chunk_size: int = 500,
        max_in_flight: int = 4,
    ) -> None:
        self.sessions = sessions
        self.contracts = contracts
        self.sender = sender
        self.chunk_size = chunk_size
        self.max_in_flight = max_in_flight
        self._chain_seconds = 0.0

    # -- journal ---------------------------------------------------------------------------

    def recover(self) -> int:
        """Settle every journalled transaction that never saw its receipt, whoever signed it
        (receipts and re-broadcasts need no key, so a changed key does not strand devices)."""
        with self.sessions() as session:
            open_txs = session.scalars(
                select(ChainTx).where(ChainTx.status == "signed").order_by(ChainTx.sender, ChainTx.nonce)
            ).all()
        for journalled in open_txs:
            signed = SignedTx(tx_hash=journalled.tx_hash, raw=journalled.raw, nonce=journalled.nonce)
            found = self.sender.outcome(signed.tx_hash)
            if found is None and not self._rebroadcast(signed, journalled.sender):
                self._settle_dropped(journalled.id)
                continue
            self._settle(journalled.id, found or self.sender.wait_outcome(signed.tx_hash))
        return len(open_txs)

    def _rebroadcast(self, signed: SignedTx, sender: str) -> bool:
        """Send the journalled bytes again; False when their nonce was already used elsewhere."""
        if signed.nonce < self.sender.w3.eth.get_transaction_count(
            Web3.to_checksum_address(sender), "latest"
        ):
            return self.sender.outcome(signed.tx_hash) is not None
        self.sender.broadcast(signed)
        return True

    def _settle_dropped(self, tx_id: int) -> None:
        with transaction(self.sessions) as session:
            session.execute(update(ChainTx).where(ChainTx.id == tx_id).values(status="dropped"))
            session.execute(
                update(Certificate).where(Certificate.pending_tx_id == tx_id).values(pending_tx_id=None)
            )

    def _settle(self, tx_id: int, found: Outcome) -> None:
        ok = found.ok
        with transaction(self.sessions) as session:
            session.execute(
                update(ChainTx)
                .where(ChainTx.id == tx_id)
                .values(
                    status="confirmed" if ok else "reverted",
                    block_number=found.block_number,
                    gas_used=found.gas_used,
                )
            )
            if ok:
                session.execute(
                    update(Certificate)
                    .where(Certificate.pending_tx_id == tx_id)
                    .values(
                        minted=True,
                        mint_tx_hash=found.tx_hash,
                        minted_block=found.block_number,
                        pending_tx_id=None,
                    )
                )
            else:
                session.execute(
                    update(Certificate).where(Certificate.pending_tx_id == tx_id).values(pending_tx_id=None)
                )

    def _journal(
        self, session: Session, signed: SignedTx, *, purpose: str, batch_id: int, device_count: int = 0
    ) -> ChainTx:
        # The very same signed bytes can come round again when the chain forgot them (a node
        # restored from older state): the journal entry is then signed again, not duplicated.
        entry = session.scalar(select(ChainTx).where(ChainTx.tx_hash == signed.tx_hash))
        if entry is not None:
            entry.status, entry.block_number, entry.gas_used = "signed", None, None
            session.flush()
            return entry
        entry = ChainTx(
            purpose=purpose,
            batch_id=batch_id,
            sender=self.sender.account.address,
            nonce=signed.nonce,
            tx_hash=signed.tx_hash,
            raw=signed.raw,
            device_count=device_count,
            status="signed",
        )
        session.add(entry)
        session.flush()
        return entry

    # -- batch -----------------------------------------------------------------------------

    def open_batch(self, batch_id: int) -> int:
        """The on-chain batch id, opening the batch on chain unless the chain already has it.

        The chain is asked every time, not the id we recorded: a node that lost its state, or
        contracts deployed afresh, must make us open the batch again rather than mint into a
        batch that no longer exists.
        """
        with self.sessions() as session:
            batch = session.get_one(Batch, batch_id)
        certificate = self.contracts.device_certificate
        root = bytes.fromhex(str(batch.merkle_root)[2:])
        chain_batch_id = int(certificate.functions.batchIdOfRoot(batch.device_licence_id, root).call())
        if chain_batch_id != 0 and chain_batch_id == batch.chain_batch_id:
            return chain_batch_id
        if chain_batch_id == 0:
            licence = self.contracts.device_license.functions.licence(batch.device_licence_id).call()
            data = encode_call(
                certificate,
                "openBatch",
                batch.device_licence_id,
                licence[1],
                root,
                batch.device_count,
                batch.uri,
            )
            self._preflight(certificate.address, data, "opening the batch")
            signed = self.sender.sign_data(
                to=certificate.address, data=data, nonce=self.sender.next_nonce(), gas=OPEN_BATCH_GAS
            )
            with transaction(self.sessions) as session:
                entry = self._journal(session, signed, purpose="open_batch", batch_id=batch_id)
            self._send(signed)
            found = self.sender.wait_outcome(signed.tx_hash)
            self._settle(entry.id, found)
            if not found.ok:
                raise TransactionReverted(f"opening batch {batch.merkle_root} reverted ({signed.tx_hash})")
            chain_batch_id = int(certificate.functions.batchIdOfRoot(batch.device_licence_id, root).call())
        with transaction(self.sessions) as session:
            session.execute(
                update(Batch)
                .where(Batch.id == batch_id)
                .values(chain_batch_id=chain_batch_id, status="opened")
            )
        return chain_batch_id

    def _preflight(self, to: str, data: bytes | str, what: str) -> None:
        """Run the call against the current state first, so a refusal names its reason."""
        try:
            self.sender.w3.eth.call({"from": self.sender.account.address, "to": to, "data": data})  # type: ignore[typeddict-item]
        except ContractLogicError as exc:
            raise TransactionReverted(f"{what} refused by the contract: {explain_revert(exc)}") from exc

    def _send(self, signed: SignedTx) -> None:
        started = time.perf_counter()
        self.sender.broadcast(signed)
        self._chain_seconds += time.perf_counter() - started

    def _next_chunk(self, batch_id: int) -> list[str]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Certificate.address)
                    .where(
                        Certificate.batch_id == batch_id,
                        Certificate.minted.is_(False),
                        Certificate.pending_tx_id.is_(None),
                    )
                    .order_by(Certificate.position)
                    .limit(self.chunk_size)
                )
            )

    def _reconcile(self, batch_id: int) -> None:
        """Make the `minted` flags of a resumed batch say what the chain says, both ways.

        The database is a cache of the chain: a node restored from an older state forgets
        mints we recorded, and a crash can leave mints we did not record.
        """
        on_chain = chain_conflicts(self.contracts)
        with self.sessions() as session:
            addresses = session.scalars(
                select(Certificate.address)
                .where(Certificate.batch_id == batch_id, Certificate.pending_tx_id.is_(None))
                .order_by(Certificate.position)
            ).all()
        for start in range(0, len(addresses), RECONCILE_CHUNK):
            chunk = list(addresses[start : start + RECONCILE_CHUNK])
            minted = on_chain(chunk)
            with transaction(self.sessions) as session:
                session.execute(
                    update(Certificate).where(Certificate.address.in_(minted)).values(minted=True)
                )
                session.execute(
                    update(Certificate)
                    .where(Certificate.address.in_(set(chunk) - minted))
                    .values(minted=False, mint_tx_hash=None, minted_block=None)
                )

    def mint(
        self, batch_id: int, *, recipient: str, on_progress: ProgressCallback | None = None
    ) -> MintReport:
        started = time.perf_counter()
        recovered = self.recover()
        with self.sessions() as session:
            resumed = session.get_one(Batch, batch_id).status != "validated"
        chain_batch_id = self.open_batch(batch_id)
        if resumed or recovered:
            self._reconcile(batch_id)
        with self.sessions() as session:
            batch = session.get_one(Batch, batch_id)
            minted_before = (
                session.scalar(
                    select(func.count()).where(Certificate.batch_id == batch_id, Certificate.minted.is_(True))
                )
                or 0
            )
        report = MintReport(
            batch_id=batch_id,
            chain_batch_id=chain_batch_id,
            device_count=batch.device_count,
            already_minted=minted_before,
            recovered_transactions=recovered,
        )
        if on_progress and minted_before:
            on_progress(minted_before)

        in_flight: deque[tuple[int, SignedTx, int]] = deque()
        nonce = self.sender.next_nonce()
        certificate = self.contracts.device_certificate
        first = True
        while True:
            chunk = self._next_chunk(batch_id)
            if chunk:
                # Raw 20-byte addresses spare eth_abi a checksum round trip per element.
                devices = [bytes.fromhex(address[2:]) for address in chunk]
                data = encode_call(certificate, "mintBatch", chain_batch_id, recipient, devices)
                if first:
                    self._preflight(certificate.address, data, "minting")
                    first = False
                signed = self.sender.sign_data(
                    to=certificate.address,
                    data=data,
                    nonce=nonce,
                    gas=MINT_GAS_BASE + MINT_GAS_PER_DEVICE * len(chunk),
                )
                nonce += 1
                with transaction(self.sessions) as session:
                    entry = self._journal(
                        session, signed, purpose="mint", batch_id=batch_id, device_count=len(chunk)
                    )
                    session.execute(
                        update(Certificate)
                        .where(Certificate.address.in_(chunk))
                        .values(pending_tx_id=entry.id)
                    )
                self._send(signed)
                in_flight.append((entry.id, signed, len(chunk)))
            if in_flight and (len(in_flight) >= self.max_in_flight or not chunk):
                tx_id, signed, count = in_flight.popleft()
                waited = time.perf_counter()
                found = self.sender.wait_outcome(signed.tx_hash)
                self._chain_seconds += time.perf_counter() - waited
                self._settle(tx_id, found)
                if not found.ok:
                    raise TransactionReverted(
                        f"mint transaction {signed.tx_hash} reverted; re-run the same command to retry "
                        "the devices it carried"
                    )
                report.minted_now += count
                report.transactions += 1
                report.gas_used += found.gas_used
                report.tx_hashes.append(signed.tx_hash)
                if on_progress:
                    on_progress(report.already_minted + report.minted_now)
            if not chunk and not in_flight:
                break

        self._finish(batch_id, report)
        report.seconds = time.perf_counter() - started
        report.chain_seconds = self._chain_seconds
        return report

    def _finish(self, batch_id: int, report: MintReport) -> None:
        with transaction(self.sessions) as session:
            minted = (
                session.scalar(
                    select(func.count()).where(Certificate.batch_id == batch_id, Certificate.minted.is_(True))
                )
                or 0
            )
            on_chain = self.contracts.device_certificate.functions.batch(report.chain_batch_id).call()[2]
            if minted != report.device_count or on_chain != report.device_count:
                raise ChainError(
                    f"batch {batch_id}: {minted} of {report.device_count} devices recorded as minted, "
                    f"{on_chain} on chain; run the same command again to finish"
                )
            session.execute(
                update(Batch).where(Batch.id == batch_id).values(status="minted", minted_at=datetime.now(UTC))
            )


@dataclass(frozen=True)
class BatchRun:
    """A factory file taken in and, unless it was a dry run, minted."""

    intake: IntakeResult
    report: MintReport | None

    def as_dict(self) -> dict[str, object]:
        ingested, report = self.intake, self.report
        if report is None:
            return {
                "valid": True,
                "already_ingested": ingested.already_ingested,
                "devices": ingested.device_count,
                "merkle_root": ingested.merkle_root,
            }
        per_device = report.gas_used / report.minted_now if report.minted_now else 0
        return {
            "batch": report.chain_batch_id,
            "devices": report.device_count,
            "minted_now": report.minted_now,
            "already_minted": report.already_minted,
            "transactions": report.transactions,
            "gas_used": report.gas_used,
            "gas_per_device": round(per_device),
            "merkle_root": ingested.merkle_root,
            "recovered_transactions": report.recovered_transactions,
            "seconds": round(report.seconds, 3),
        }


def minting_licence(runtime: Runtime, device_licence_id: int) -> MintingLicence:
    """The device licence and its manufacturer's, refused unless both may mint now."""
    licence = read_minting_licence(runtime.contracts, device_licence_id)
    if refusal := licence.refusal():
        raise DevicemintError(f"cannot mint under device licence {device_licence_id}: {refusal}")
    return licence


def mint_taken_in(
    runtime: Runtime,
    batch_id: int,
    *,
    sender: TxSender,
    recipient: str,
    on_progress: Callable[[int], None] | None = None,
) -> MintReport:
    """Mint, or finish minting, a batch the intake took in; the journal first settles whatever a
    run that died left signed or in flight. The caller holds the sender's lock."""
    settings = runtime.settings
    minter = Minter(
        sessions=runtime.sessions,
        contracts=runtime.contracts,
        sender=sender,
        chunk_size=settings.mint_chunk_size,
        max_in_flight=settings.max_in_flight,
    )
    return minter.mint(batch_id, recipient=recipient, on_progress=on_progress)


def licensed_intake(
    runtime: Runtime, device_licence_id: int, *, design_hash: str | None = None
) -> tuple[MintingLicence, Intake]:
    """The intake of factory files under a device licence that may mint now, issuing device
    certificates under its manufacturer's root. `design_hash`, when the factory states which
    design it built, must be the licence's: a device of a changed design needs that design's licence."""
    licence = minting_licence(runtime, device_licence_id)
    if design_hash is not None:
        stated = design_hash.lower().removeprefix("0x")
        licensed = licence.device.design_hash.hex()
        if stated != licensed:
            raise DevicemintError(
                f"design 0x{stated} is not the design of device licence {device_licence_id} (0x{licensed}); "
                "devices of a changed design are minted under that design's own licence"
            )
    issuer = Authority.of(runtime.settings, runtime.sessions).device_issuer(
        holder=licence.manufacturer.holder, root_fingerprint=licence.manufacturer.root_cert_fingerprint
    )
    intake = Intake(
        sessions=runtime.sessions,
        contracts=runtime.contracts,
        licence=licence,
        issuer=issuer,
        domain=runtime.domain,
        uri=runtime.batch_uri,
        today=date.today(),
        workers=runtime.settings.intake_workers,
    )
    return licence, intake


def mint_batch_file(
    runtime: Runtime,
    path: Path,
    device_licence_id: int,
    *,
    sender: TxSender,
    dry_run: bool,
    design_hash: str | None = None,
    on_validated: Callable[[int], None] | None = None,
    on_minted: Callable[[int, int], None] | None = None,
) -> BatchRun:
    """Validate a factory file and, unless `dry_run`, mint it; calling it again resumes.
    `design_hash`: see `licensed_intake`."""
    settings = runtime.settings
    licence, intake = licensed_intake(runtime, device_licence_id, design_hash=design_hash)
    with sender_lock(settings.home, sender.account.address):
        ingested = intake.run(path, dry_run=dry_run, on_progress=on_validated)
        if dry_run:
            return BatchRun(intake=ingested, report=None)
        assert ingested.batch_id is not None
        report = mint_taken_in(
            runtime,
            ingested.batch_id,
            sender=sender,
            recipient=licence.device.holder,
            on_progress=(lambda n: on_minted(n, ingested.device_count)) if on_minted else None,
        )
    return BatchRun(intake=ingested, report=report)
