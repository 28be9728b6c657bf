"""Certificates as the public API serves them: document, on-chain state, lifecycle timeline,
standing and proof, read from the database the indexer keeps.

Answers are computed by the same checks as `devicemint verify`, with the chain state taken
from the indexer's projections instead of one RPC call per check, and cached per device under a
version made of everything that can change a standing (the device's, its licences' and the
revocation list's last change). An unchanged device costs one small query; while nothing at all
changed (the same indexed head and revocation list, checked at most every `verify_staleness_seconds`),
it costs none, which is what lets the API answer it before any routing (api/verify_fast_path.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, case, func, or_, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from devicemint.chain.deploy import ZERO_ADDRESS
from devicemint.devices.lifecycle import Permission, Role, Stage
from devicemint.devices.verify import ADDRESS, Verifier, resolve
from devicemint.errors import NotFound, UsageError
from devicemint.indexer.events import device_of
from devicemint.indexer.models import (
    BatchState,
    ChainEvent,
    DeviceGrant,
    DeviceLicenceState,
    DeviceState,
    IndexerCursor,
    ManufacturerLicenceState,
)
from devicemint.licensing.registry import (
    DeviceLicence,
    DeviceLicenceStatus,
    ManufacturerLicence,
    ManufacturerStatus,
)
from devicemint.pki.authority import Authority
from devicemint.pki.models import Revocation
from devicemint.runtime import Runtime

STANDINGS = ("genuine", "not_in_good_standing", "not_genuine")
MAX_PAGE = 500


def _hex(value: str | None) -> bytes:
    return bytes.fromhex(value[2:]) if value else b""


class IndexedVerifier(Verifier):
    """`Verifier` with the chain state read from the indexer's projections."""

    def _on_chain(self, token_id: int) -> tuple[str, int, int, bytes] | None:
        with self.sessions() as session:
            state = session.get(DeviceState, device_of(token_id))
            if state is None:
                return None
            batch = session.get(BatchState, state.batch_id)
            root = _hex(batch.merkle_root if batch else None)
            return state.owner, state.batch_id, state.device_licence_id, root

    def _licences(self, device_licence_id: int) -> tuple[DeviceLicence, ManufacturerLicence]:
        with self.sessions() as session:
            device = session.get(DeviceLicenceState, device_licence_id)
            if device is None:
                raise NotFound(f"device licence {device_licence_id} is not indexed yet")
            maker = session.scalar(
                select(ManufacturerLicenceState).where(ManufacturerLicenceState.holder == device.holder)
            )
            if maker is None:
                raise NotFound(f"the manufacturer licence of {device.holder} is not indexed yet")
        return (
            DeviceLicence(
                device.licence_id,
                device.holder,
                _hex(device.design_hash),
                device.model,
                device.revision,
                _hex(device.evidence_hash),
                DeviceLicenceStatus[device.status.upper()],
                device.issued_at,
                _hex(device.reason_hash),
            ),
            ManufacturerLicence(
                maker.licence_id,
                maker.holder,
                maker.name,
                _hex(maker.root_cert_fingerprint),
                _hex(maker.evidence_hash),
                ManufacturerStatus[maker.status.upper()],
                maker.granted_at,
                _hex(maker.reason_hash),
            ),
        )


_VERSION = (
    select(
        DeviceState.last_block,
        DeviceLicenceState.last_block,
        ManufacturerLicenceState.last_block,
        select(func.coalesce(func.max(Revocation.id), 0)).scalar_subquery(),
    )
    .join(DeviceLicenceState, DeviceLicenceState.licence_id == DeviceState.device_licence_id)
    .join(ManufacturerLicenceState, ManufacturerLicenceState.holder == DeviceLicenceState.holder)
    .where(DeviceState.address == bindparam("address"))
)

# Everything, at once: the indexed head (its hash moves on every step and on a reorg) and the
# revocation list. Both are primary-key lookups.
_GENERATION = select(
    select(IndexerCursor.block_number).where(IndexerCursor.id == 1).scalar_subquery(),
    select(IndexerCursor.block_hash).where(IndexerCursor.id == 1).scalar_subquery(),
    select(func.coalesce(func.max(Revocation.id), 0)).scalar_subquery(),
)


@dataclass(frozen=True)
class _Cached:
    version: tuple[int, ...]
    generation: tuple[Any, ...]  # the generation at which `version` was last seen current
    answer: Answer


@dataclass(frozen=True)
class Answer:
    """A verification, with its JSON body and ETag made once (served many times from the cache)."""

    data: dict[str, Any]
    body: bytes
    etag: str

    @classmethod
    def of(cls, data: dict[str, Any]) -> Answer:
        body = json.dumps(data, separators=(",", ":"), default=str).encode()
        return cls(data, body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


class Certificates:
    """Reads certificates for the API; thread-safe enough for one process (the cache is a dict
    whose races only cost a recomputation)."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        verifier: Verifier,
        cache_size: int = 200_000,
        staleness_seconds: float = 0.5,
    ) -> None:
        self._sessions = sessions
        self._engine = sessions.kw["bind"]
        self._verifier = verifier
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._cache_size = cache_size
        # Every way a device was asked for (serial, IMEI, token id, any address case) -> address.
        self._asked: OrderedDict[str, str] = OrderedDict()
        self._generation: tuple[Any, ...] = ()
        self._generation_read = float("-inf")
        self._staleness = staleness_seconds

    @classmethod
    def of(cls, runtime: Runtime) -> Certificates:
        verifier = IndexedVerifier(
            sessions=runtime.sessions,
            contracts=runtime.contracts,
            domain=runtime.domain,
            authority=Authority.of(runtime.settings, runtime.sessions),
        )
        return cls(
            sessions=runtime.sessions,
            verifier=verifier,
            staleness_seconds=runtime.settings.verify_staleness_seconds,
        )

    # -- one certificate ------------------------------------------------------------------------------

    def address_of(self, query: str) -> str:
        if not query.strip():
            raise UsageError("the query is empty: give a 0x address, token id, serial number or IMEI")
        if ADDRESS.match(query):  # the common case needs no lookup
            return Web3.to_checksum_address(query)
        with self._sessions() as session:
            return Web3.to_checksum_address(resolve(session, query))

    def _version(self, address: str) -> tuple[int, ...] | None:
        """Everything a standing depends on, as numbers that grow when it changes: one Core
        query on a pooled connection (no ORM session), since it runs for every request."""
        with self._engine.connect() as connection:
            row = connection.execute(_VERSION, {"address": address}).one_or_none()
        if row is None:
            return None
        return (*(int(v) for v in row), int(time.time()) // 3600)  # hourly: CRL and validity windows

    def generation(self) -> tuple[Any, ...]:
        """What changes whenever any standing may have: read at most every `staleness_seconds`."""
        now = time.monotonic()
        if now - self._generation_read >= self._staleness:
            with self._engine.connect() as connection:
                row = connection.execute(_GENERATION).one()
            self._generation = (*row, int(time.time()) // 3600)  # hourly: CRL and validity windows
            self._generation_read = now
        return self._generation

    def unchanged(self, query: str) -> Answer | None:
        """The stored answer for exactly this query while nothing changed anywhere; no database
        access but the generation's (at most every `staleness_seconds`), no address parsing."""
        address = self._asked.get(query)
        found = None if address is None else self._cache.get(address)
        if found is None or found.generation != self.generation():
            return None
        return found.answer

    def cached(self, query: str) -> Answer | None:
        """The stored answer for `query` if nothing it depends on changed since; cheap."""
        address = self.address_of(query)
        found = self._cache.get(address)
        if found is None:
            return None
        generation = self.generation()  # before the version: a change in between is seen next time
        if found.version != self._version(address):
            return None
        self._keep(query, address, _Cached(found.version, generation, found.answer))
        return found.answer

    def verification(self, query: str) -> Answer:
        """Standing and every check, as `devicemint verify --json` gives it."""
        address = self.address_of(query)
        generation = self.generation()
        version = self._version(address)
        found = self._cache.get(address)
        if version is not None and found is not None and found.version == version:
            self._keep(query, address, _Cached(version, generation, found.answer))
            return found.answer
        result = self._verifier.verify(query).to_dict()  # the query itself: a 404 names what was asked
        result["query"] = address  # cached for every way of asking
        answer = Answer.of(result)
        if version is not None:
            self._keep(query, address, _Cached(version, generation, answer))
        return answer

    def _keep(self, query: str, address: str, entry: _Cached) -> None:
        self._cache[address] = entry
        self._asked[query] = address
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        if len(self._asked) > 2 * self._cache_size:
            self._asked.popitem(last=False)

    def view(self, query: str) -> dict[str, Any]:
        """The whole certificate: document, on-chain state, lifecycle timeline, grants, standing, proof."""
        verification = self.verification(query).data
        address = Web3.to_checksum_address(verification["address"])
        with self._sessions() as session:
            state = session.get(DeviceState, address)
            timeline = [_timeline_entry(e) for e in _events_of(session, address)]
            grants = session.scalars(
                select(DeviceGrant).where(
                    DeviceGrant.address == address, DeviceGrant.expires_at > int(time.time())
                )
            ).all()
        return {
            "address": address,
            "token_id": verification["token_id"],
            "standing": verification["standing"],
            "checks": verification["checks"],
            "document": verification["document"],
            "on_chain": None if state is None else _state_view(state),
            "authorizations": [
                {
                    "grantee": g.grantee,
                    "permissions": Permission(g.permissions).names(),
                    "expires_at": g.expires_at,
                }
                for g in grants
            ],
            "timeline": timeline,
            "proof": {
                "batch_id": verification["chain_batch_id"],
                "merkle_root": verification["merkle_root"],
                "proof": verification["proof"],
                "leaf_encoding": ["address", "bytes32"],
            },
        }

    # -- lists --------------------------------------------------------------------------------------

    def page(
        self,
        *,
        manufacturer: str | None = None,
        licence: int | None = None,
        batch: int | None = None,
        standing: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        """Certificates in address order, filtered; `next_cursor` continues after the last one.

        The standing filtered on here is the licences' (revoked for cause: not genuine;
        suspended: not in good standing); a certificate's own checks are in its view."""
        if not 1 <= limit <= MAX_PAGE:
            raise UsageError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
        query = _listing()
        if manufacturer:
            query = query.where(_manufacturer_filter(manufacturer))
        if licence is not None:
            query = query.where(DeviceState.device_licence_id == licence)
        if batch is not None:
            query = query.where(DeviceState.batch_id == batch)
        if standing:
            query = query.where(_standing_filter(standing))
        if cursor:
            query = query.where(DeviceState.address > _decode_cursor(cursor))
        with self._sessions() as session:
            rows = session.execute(query.order_by(DeviceState.address).limit(limit + 1)).all()
        items = [_summary(*row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items, _encode_cursor(items[-1]["address"]) if more else None)


def _events_of(session: Session, address: str) -> list[ChainEvent]:
    return list(
        session.scalars(
            select(ChainEvent)
            .where(ChainEvent.subject == f"device:{address}")
            .order_by(ChainEvent.block_number, ChainEvent.log_index)
        )
    )


def _timeline_entry(event: ChainEvent) -> dict[str, Any]:
    args = json.loads(event.args)
    args.pop("tokenId", None)
    args.pop("id", None)
    if "role" in args:
        args["role"] = Role(args["role"]).name.lower()
    elif event.name in ("AuthorizationGranted", "AuthorizationRevoked"):
        args["role"] = "owner"  # only the owner grants and revokes (DeviceLifecycle)
    elif event.name == "FirmwareUpdated":  # only the device attests an update; the relayer paid
        args["attestedBy"], args["role"] = event.subject.partition(":")[2], "device"
    if "permissions" in args:
        args["permissions"] = Permission(args["permissions"]).names()
    if event.name == "EndOfLife":
        args["stage"] = Stage(args["stage"]).name.lower()
    kind = event.name
    if event.name == "Transfer":
        kind = "Minted" if args["from"] == ZERO_ADDRESS else "Transferred"
    return {
        "type": kind,
        "block_number": event.block_number,
        "block_time": event.block_time,
        "tx_hash": event.tx_hash,
        "log_index": event.log_index,
        "details": args,
    }


def _state_view(state: DeviceState) -> dict[str, Any]:
    return {
        "owner": state.owner,
        "batch_id": state.batch_id,
        "device_licence_id": state.device_licence_id,
        "stage": state.stage,
        "factory_resets": state.factory_resets,
        "firmware_version": state.firmware_version,
        "transfers": state.transfers,
        "minted_block": state.minted_block,
        "minted_at": state.minted_at,
    }


def _licence_standing() -> Any:
    """SQL for the licences' standing of a listed certificate (see `Certificates.page`)."""
    return case(
        (
            or_(DeviceLicenceState.status == "revoked", ManufacturerLicenceState.status == "revoked"),
            "not_genuine",
        ),
        (ManufacturerLicenceState.status == "suspended", "not_in_good_standing"),
        else_="genuine",
    )


def _listing() -> Select[Any]:
    return (
        select(DeviceState, ManufacturerLicenceState.licence_id, _licence_standing())
        .join(DeviceLicenceState, DeviceLicenceState.licence_id == DeviceState.device_licence_id)
        .join(ManufacturerLicenceState, ManufacturerLicenceState.holder == DeviceLicenceState.holder)
    )


def _manufacturer_filter(manufacturer: str) -> Any:
    if manufacturer.isdigit():
        return ManufacturerLicenceState.licence_id == int(manufacturer)
    if Web3.is_address(manufacturer):
        return ManufacturerLicenceState.holder == Web3.to_checksum_address(manufacturer)
    raise UsageError(
        f"manufacturer {manufacturer!r}: give a manufacturer licence id or the holder's 0x address"
    )


def _standing_filter(standing: str) -> Any:
    if standing not in STANDINGS:
        raise UsageError(f"standing {standing!r}: one of {', '.join(STANDINGS)}")
    return _licence_standing() == standing


def _summary(state: DeviceState, manufacturer_licence_id: int, standing: str) -> dict[str, Any]:
    return {
        "address": state.address,
        "token_id": str(int(state.address, 16)),
        "manufacturer_licence_id": manufacturer_licence_id,
        "standing": standing,
        **_state_view(state),
    }


def _encode_cursor(address: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": address}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = data["after"]
        if not Web3.is_address(after):
            raise ValueError(after)
        return Web3.to_checksum_address(after)
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise UsageError("cursor is not one this API gave out; start again without it") from exc
