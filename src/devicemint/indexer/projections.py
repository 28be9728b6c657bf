"""Projections: the state the API reads, folded from events in chain order.

Each projection row belongs to one event subject (device:0x.., batch:N, device_licence:N,
manufacturer_licence:N). After a reorg the subjects whose events were dropped are rebuilt by
deleting their rows and replaying their remaining events, so a projection is always exactly
the fold of the events kept, whatever happened on the way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from devicemint.chain.deploy import ZERO_ADDRESS
from devicemint.devices.lifecycle import Stage
from devicemint.indexer.events import device_of
from devicemint.indexer.models import (
    BatchState,
    ChainEvent,
    DeviceGrant,
    DeviceLicenceState,
    DeviceState,
    FirmwareRelease,
    ManufacturerLicenceState,
)

#: Every projection table, children first (the order they can be emptied in).
PROJECTIONS = (
    DeviceGrant,
    DeviceState,
    BatchState,
    FirmwareRelease,
    DeviceLicenceState,
    ManufacturerLicenceState,
)

Handler = Callable[[Session, ChainEvent, dict[str, Any]], None]


def _device(session: Session, event: ChainEvent, args: dict[str, Any]) -> DeviceState:
    state = session.get(DeviceState, device_of(args["tokenId"] if "tokenId" in args else args["id"]))
    if state is None:  # a lifecycle event always follows its mint; the fold is broken otherwise
        raise LookupError(f"{event.name} at block {event.block_number} for a device never minted")
    state.last_block = event.block_number
    return state


def _transfer(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    if args["from"] == ZERO_ADDRESS:
        session.add(
            DeviceState(
                address=device_of(args["id"]),
                owner=args["to"],
                batch_id=args["batchId"],
                device_licence_id=args["deviceLicenceId"],
                stage="active",
                factory_resets=0,
                firmware_version=None,
                transfers=0,
                minted_block=event.block_number,
                minted_at=event.block_time,
                last_block=event.block_number,
            )
        )
        return
    state = _device(session, event, args)
    state.owner = args["to"]
    state.transfers += 1


def _granted(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    _device(session, event, args)
    session.merge(
        DeviceGrant(
            address=device_of(args["tokenId"]),
            grantee=args["grantee"],
            permissions=args["permissions"],
            expires_at=args["expiresAt"],
        )
    )


def _revoked(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    _device(session, event, args)
    session.flush()
    session.execute(
        delete(DeviceGrant).where(
            DeviceGrant.address == device_of(args["tokenId"]), DeviceGrant.grantee == args["grantee"]
        )
    )


def _cleared(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    _device(session, event, args)
    session.flush()
    session.execute(delete(DeviceGrant).where(DeviceGrant.address == device_of(args["tokenId"])))


def _reset(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    _device(session, event, args).factory_resets = args["count"]


def _firmware(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    _device(session, event, args).firmware_version = args["toVersion"]


def _end_of_life(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    _device(session, event, args).stage = Stage(args["stage"]).name.lower()


def _batch_opened(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    session.add(
        BatchState(
            batch_id=args["batchId"],
            device_licence_id=args["deviceLicenceId"],
            merkle_root=args["merkleRoot"],
            device_count=args["deviceCount"],
            minted=0,
            uri=args["uri"],
            opened_block=event.block_number,
        )
    )


def _devices_minted(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    batch = session.get(BatchState, args["batchId"])
    if batch is not None:
        batch.minted += args["count"]


def _licence_issued(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    session.add(
        DeviceLicenceState(
            licence_id=args["licenceId"],
            holder=args["holder"],
            design_hash=args["designHash"],
            model=args["model"],
            revision=args["revision"],
            status="active",
            evidence_hash=args["evidenceHash"],
            issued_at=event.block_time,
            reason_hash=None,
            last_block=event.block_number,
        )
    )


def _licence_revoked(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    licence = session.get(DeviceLicenceState, args["licenceId"])
    if licence is not None:
        licence.status, licence.reason_hash, licence.last_block = (
            "revoked",
            args["reasonHash"],
            event.block_number,
        )


def _firmware_published(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    session.add(
        FirmwareRelease(
            device_licence_id=args["licenceId"],
            version=args["version"],
            image_hash=args["imageHash"],
            published_block=event.block_number,
        )
    )


def _granted_licence(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    session.add(
        ManufacturerLicenceState(
            licence_id=args["licenceId"],
            holder=args["holder"],
            name=args["name"],
            root_cert_fingerprint=args["rootCertFingerprint"],
            status="active",
            for_cause=False,
            evidence_hash=args["evidenceHash"],
            granted_at=event.block_time,
            reason_hash=None,
            last_block=event.block_number,
        )
    )


def _manufacturer_status(status: str) -> Handler:
    def handle(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
        licence = session.get(ManufacturerLicenceState, args["licenceId"])
        if licence is None:
            return
        licence.status, licence.last_block = status, event.block_number
        if status == "revoked":
            licence.for_cause = True
        if "reasonHash" in args:
            licence.reason_hash = args["reasonHash"]

    return handle


HANDLERS: dict[tuple[str, str], Handler] = {
    ("DeviceCertificate", "Transfer"): _transfer,
    ("DeviceCertificate", "AuthorizationGranted"): _granted,
    ("DeviceCertificate", "AuthorizationRevoked"): _revoked,
    ("DeviceCertificate", "AuthorizationsCleared"): _cleared,
    ("DeviceCertificate", "FactoryReset"): _reset,
    ("DeviceCertificate", "FirmwareUpdated"): _firmware,
    ("DeviceCertificate", "EndOfLife"): _end_of_life,
    ("DeviceCertificate", "BatchOpened"): _batch_opened,
    ("DeviceCertificate", "DevicesMinted"): _devices_minted,
    ("DeviceLicense", "LicenceIssued"): _licence_issued,
    ("DeviceLicense", "LicenceRevoked"): _licence_revoked,
    ("DeviceLicense", "FirmwarePublished"): _firmware_published,
    ("ManufacturerLicense", "Granted"): _granted_licence,
    ("ManufacturerLicense", "Suspended"): _manufacturer_status("suspended"),
    ("ManufacturerLicense", "Reinstated"): _manufacturer_status("active"),
    ("ManufacturerLicense", "Revoked"): _manufacturer_status("revoked"),
    ("ManufacturerLicense", "Renounced"): _manufacturer_status("renounced"),
}


def apply(session: Session, event: ChainEvent, args: dict[str, Any]) -> None:
    handler = HANDLERS.get((event.contract, event.name))
    if handler is not None:
        handler(session, event, args)


def _forget(session: Session, subject: str) -> None:
    """Delete every projection row of `subject`."""
    kind, _, key = subject.partition(":")
    if kind == "device":
        session.execute(delete(DeviceGrant).where(DeviceGrant.address == key))
        session.execute(delete(DeviceState).where(DeviceState.address == key))
    elif kind == "batch":
        session.execute(delete(BatchState).where(BatchState.batch_id == int(key)))
    elif kind == "device_licence":
        session.execute(delete(FirmwareRelease).where(FirmwareRelease.device_licence_id == int(key)))
        session.execute(delete(DeviceLicenceState).where(DeviceLicenceState.licence_id == int(key)))
    elif kind == "manufacturer_licence":
        session.execute(
            delete(ManufacturerLicenceState).where(ManufacturerLicenceState.licence_id == int(key))
        )


def rebuild(session: Session, subjects: Iterable[str]) -> None:
    """Fold each subject's remaining events again from nothing, in the order given (licences and
    batches before the devices minted under them)."""
    for subject in dict.fromkeys(subjects):
        session.flush()
        _forget(session, subject)
        events = session.scalars(
            select(ChainEvent)
            .where(ChainEvent.subject == subject)
            .order_by(ChainEvent.block_number, ChainEvent.log_index)
        )
        for event in events:
            apply(session, event, json.loads(event.args))
