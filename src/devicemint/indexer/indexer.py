"""Follows the chain into the database: every event of the programme's contracts, reorg-safe
and resumable.

One step reads the logs of a range of blocks (up to the head less the configured
confirmations) and stores them, their blocks, the projections they change, the webhook
deliveries they cause and the new cursor in one database transaction. A process killed at any
moment therefore leaves either the whole step or none of it, and the next run starts from the
cursor.

Before each step the cursor's block hash is compared with the chain's. If they differ the chain
has reorganised: the newest stored block still on the chain is the common ancestor; every event
after it is deleted, the projections of the subjects they touched are rebuilt from the events
kept, listeners are told which events left, and indexing goes on from the ancestor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from devicemint.chain.deploy import ZERO_ADDRESS, Deployment
from devicemint.db.session import transaction
from devicemint.errors import ChainError
from devicemint.indexer import projections
from devicemint.indexer.events import INDEXED_CONTRACTS, DecodedLog, canonical_json, decode_log, subject_of
from devicemint.indexer.models import BatchState, ChainEvent, IndexedBlock, IndexerCursor
from devicemint.runtime import Runtime

#: How many stored blocks are compared, newest first, when looking for the common ancestor.
ANCESTOR_SEARCH = 10_000


class Listener(Protocol):
    """Told of events inside the indexer's transaction (webhooks queue their deliveries here)."""

    def added(self, session: Session, events: Sequence[ChainEvent]) -> None: ...

    def removed(self, session: Session, events: Sequence[ChainEvent]) -> None: ...


class _ChainMoved(ChainError):
    """The chain changed under a step (a reorg between two reads); the step is retried."""


@dataclass(frozen=True)
class StepResult:
    from_block: int
    to_block: int
    events: int
    rolled_back_to: int | None = None


@dataclass(frozen=True)
class Block:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


class Indexer:
    """Indexes one deployment into one database."""

    def __init__(
        self,
        *,
        w3: Web3,
        sessions: sessionmaker[Session],
        deployment: Deployment,
        confirmations: int = 0,
        max_blocks: int = 2_000,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self._w3 = w3
        self._sessions = sessions
        self._deployment = deployment
        self._confirmations = confirmations
        self._max_blocks = max_blocks
        self._listeners = tuple(listeners)
        self._contract_of = {getattr(deployment, _field(name)).lower(): name for name in INDEXED_CONTRACTS}

    # -- reading the chain --------------------------------------------------------------------------

    def _rpc(self, method: str, params: list[Any]) -> Any:
        answer = self._w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in answer:
            raise ChainError(f"{method} failed: {answer['error'].get('message')}")
        return answer.get("result")

    def _block(self, number: int) -> Block | None:
        raw = self._rpc("eth_getBlockByNumber", [hex(number), False])
        if raw is None:
            return None
        return Block(number, raw["hash"], raw["parentHash"], int(raw["timestamp"], 16))

    def _logs(self, first: int, last: int) -> list[DecodedLog]:
        raw = self._rpc(
            "eth_getLogs",
            [{"fromBlock": hex(first), "toBlock": hex(last), "address": list(self._contract_of)}],
        )
        decoded = []
        for log in raw:
            if log.get("removed"):
                raise _ChainMoved(f"a log of block {int(log['blockNumber'], 16)} was removed while reading")
            found = decode_log(self._contract_of[log["address"].lower()], log)
            if found is not None:
                decoded.append(found)
        decoded.sort(key=lambda d: (d.block_number, d.log_index))
        return decoded

    # -- the cursor ---------------------------------------------------------------------------------

    def cursor(self) -> int:
        """The last block indexed (the block before the deployment when nothing is)."""
        with self._sessions() as session:
            row = session.get(IndexerCursor, 1)
            return row.block_number if row else self._deployment.deployed_block - 1

    def _stored_cursor(self, session: Session) -> IndexerCursor:
        row = session.get(IndexerCursor, 1)
        if row is None:
            row = IndexerCursor(id=1, block_number=self._deployment.deployed_block - 1, block_hash=None)
            session.add(row)
        return row

    # -- one step -----------------------------------------------------------------------------------

    def step(self) -> StepResult | None:
        """Index the next range of confirmed blocks; None when there is nothing new."""
        rolled_back = self._follow_reorg()
        head = int(self._rpc("eth_blockNumber", []), 16)
        target = head - self._confirmations
        first = self.cursor() + 1
        if target < first:
            return StepResult(first, first - 1, 0, rolled_back) if rolled_back is not None else None
        last = min(target, first + self._max_blocks - 1)
        try:
            count = self._index_range(first, last)
        except _ChainMoved:
            return StepResult(first, first - 1, 0, rolled_back)
        return StepResult(first, last, count, rolled_back)

    def _index_range(self, first: int, last: int) -> int:
        logs = self._logs(first, last)
        blocks: dict[int, Block] = {}
        for number in sorted({log.block_number for log in logs} | {last}):
            block = self._block(number)
            if block is None:
                raise _ChainMoved(f"block {number} disappeared while reading")
            blocks[number] = block
        for log in logs:
            if blocks[log.block_number].hash != log.block_hash:
                raise _ChainMoved(f"block {log.block_number} changed while reading")
        with transaction(self._sessions) as session:
            cursor = self._stored_cursor(session)
            if cursor.block_number != first - 1:  # another indexer got here first
                return 0
            # Only blocks that brought events are kept: the same rows whatever the step sizes
            # were, and enough to find a common ancestor (the cursor carries the last hash).
            for block in (blocks[n] for n in sorted({log.block_number for log in logs})):
                session.merge(
                    IndexedBlock(
                        number=block.number,
                        hash=block.hash,
                        parent_hash=block.parent_hash,
                        timestamp=block.timestamp,
                    )
                )
            events = self._store(session, logs, blocks)
            for listener in self._listeners:
                listener.added(session, events)
            cursor.block_number, cursor.block_hash = last, blocks[last].hash
        return len(logs)

    def _store(self, session: Session, logs: list[DecodedLog], blocks: dict[int, Block]) -> list[ChainEvent]:
        events = []
        minting: list[Any] = []  # [batchId, deviceLicenceId, remaining] while a mint's Transfers run
        for log in logs:
            args = dict(log.args)
            if log.contract == "DeviceCertificate":
                minting = self._annotate_mint(session, log, args, minting)
            event = ChainEvent(
                block_number=log.block_number,
                log_index=log.log_index,
                block_hash=log.block_hash,
                block_time=blocks[log.block_number].timestamp,
                tx_hash=log.tx_hash,
                contract=log.contract,
                name=log.name,
                subject=subject_of(log),
                args=canonical_json(args),
            )
            session.add(event)
            projections.apply(session, event, args)
            events.append(event)
        return events

    @staticmethod
    def _annotate_mint(
        session: Session, log: DecodedLog, args: dict[str, Any], minting: list[Any]
    ) -> list[Any]:
        """Each `DevicesMinted(batchId, count)` is followed by its `count` mint Transfers (the
        contract promises it); those Transfers are stored with the batch and licence they belong
        to, so a device's own events are enough to fold it."""
        if log.name == "DevicesMinted":
            batch = session.get(BatchState, args["batchId"])
            if batch is None:
                raise LookupError(f"DevicesMinted for batch {args['batchId']}, which was never opened")
            return [args["batchId"], batch.device_licence_id, int(args["count"])]
        if log.name == "Transfer" and args["from"] == ZERO_ADDRESS:
            if not minting or minting[2] <= 0:
                raise LookupError(f"mint Transfer at block {log.block_number} without its DevicesMinted")
            args["batchId"], args["deviceLicenceId"] = minting[0], minting[1]
            minting[2] -= 1
        return minting

    # -- reorgs -------------------------------------------------------------------------------------

    def _follow_reorg(self) -> int | None:
        """Roll back to the common ancestor if the cursor's block left the chain; its number, or None."""
        with self._sessions() as session:
            cursor = session.get(IndexerCursor, 1)
            if cursor is None or cursor.block_hash is None:
                return None
            on_chain = self._block(cursor.block_number)
            if on_chain is not None and on_chain.hash == cursor.block_hash:
                return None
            stored = session.scalars(
                select(IndexedBlock).order_by(IndexedBlock.number.desc()).limit(ANCESTOR_SEARCH)
            ).all()
        ancestor, ancestor_hash = self._deployment.deployed_block - 1, None
        for block in stored:
            found = self._block(block.number)
            if found is not None and found.hash == block.hash:
                ancestor, ancestor_hash = block.number, block.hash
                break
        self._roll_back(ancestor, ancestor_hash)
        return ancestor

    def _roll_back(self, ancestor: int, ancestor_hash: str | None) -> None:
        with transaction(self._sessions) as session:
            removed = session.scalars(
                select(ChainEvent)
                .where(ChainEvent.block_number > ancestor)
                .order_by(ChainEvent.block_number, ChainEvent.log_index)
            ).all()
            for listener in self._listeners:
                listener.removed(session, removed)
            subjects = {event.subject for event in removed}
            session.execute(delete(ChainEvent).where(ChainEvent.block_number > ancestor))
            session.execute(delete(IndexedBlock).where(IndexedBlock.number > ancestor))
            projections.rebuild(session, _in_fold_order(subjects))
            cursor = self._stored_cursor(session)
            cursor.block_number, cursor.block_hash = ancestor, ancestor_hash

    # -- running ------------------------------------------------------------------------------------

    def run(
        self,
        *,
        stop: threading.Event,
        poll_seconds: float = 1.0,
        on_step: Callable[[StepResult], None] | None = None,
    ) -> None:
        """Index until `stop` is set: as fast as the chain allows while behind, then polling."""
        while not stop.is_set():
            result = self.step()
            if result is not None and on_step is not None:
                on_step(result)
            if result is None or result.to_block < result.from_block:
                stop.wait(poll_seconds)

    def catch_up(self) -> int:
        """Index up to the current confirmed head; the number of events stored."""
        total = 0
        while (result := self.step()) is not None:
            total += result.events
        return total


def _field(contract: str) -> str:
    """ManufacturerLicense -> manufacturer_license (the Deployment field)."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in contract).lstrip("_")


def _in_fold_order(subjects: set[str]) -> list[str]:
    """Licences and batches before the devices minted under them."""
    order = {"manufacturer_licence": 0, "device_licence": 1, "batch": 2, "device": 3}
    return sorted(subjects, key=lambda s: (order.get(s.partition(":")[0], 4), s))


def indexer_for(runtime: Runtime, *, listeners: Sequence[Listener] = ()) -> Indexer:
    """The indexer of a runtime's deployment and database, with its configured confirmations."""
    return Indexer(
        w3=runtime.w3,
        sessions=runtime.sessions,
        deployment=runtime.contracts.deployment,
        confirmations=runtime.settings.effective_index_confirmations,
        max_blocks=runtime.settings.index_max_blocks,
        listeners=listeners,
    )


def forget_everything(sessions: sessionmaker[Session]) -> None:
    """Empty every indexer table in one transaction, so the next run rebuilds from the deployment."""
    with transaction(sessions) as session:
        for model in (*projections.PROJECTIONS, ChainEvent, IndexedBlock, IndexerCursor):
            session.execute(delete(model))
