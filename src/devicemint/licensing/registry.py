"""Reading licences from the chain, the source of truth for who may mint what."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from web3 import Web3

from devicemint.chain.deployments import Contracts
from devicemint.errors import NotFound


class ManufacturerStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    REVOKED = 3
    RENOUNCED = 4


class DeviceLicenceStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    REVOKED = 2


@dataclass(frozen=True)
class ManufacturerLicence:
    licence_id: int
    holder: str
    name: str
    root_cert_fingerprint: bytes
    evidence_hash: bytes
    status: ManufacturerStatus
    granted_at: int
    reason_hash: bytes


@dataclass(frozen=True)
class DeviceLicence:
    licence_id: int
    holder: str
    design_hash: bytes
    hardware_model: str
    hardware_revision: str
    evidence_hash: bytes
    status: DeviceLicenceStatus
    issued_at: int
    reason_hash: bytes


@dataclass(frozen=True)
class MintingLicence:
    """A device licence together with its holder's manufacturer licence."""

    device: DeviceLicence
    manufacturer: ManufacturerLicence

    def refusal(self) -> str | None:
        """Why minting under this licence is refused now, or None if it is allowed."""
        if self.device.status is not DeviceLicenceStatus.ACTIVE:
            return f"device licence {self.device.licence_id} is {self.device.status.name.lower()}"
        if self.manufacturer.status is not ManufacturerStatus.ACTIVE:
            return (
                f"manufacturer licence {self.manufacturer.licence_id} of {self.manufacturer.name} "
                f"is {self.manufacturer.status.name.lower()}"
            )
        return None


def read_manufacturer_licence(contracts: Contracts, licence_id: int) -> ManufacturerLicence:
    if licence_id < 1 or licence_id > contracts.manufacturer_license.functions.licenceCount().call():
        raise NotFound(f"manufacturer licence {licence_id} does not exist")
    raw = contracts.manufacturer_license.functions.licence(licence_id).call()
    holder, name, fingerprint, evidence, status, granted_at, reason = raw
    return ManufacturerLicence(
        licence_id,
        holder,
        name,
        bytes(fingerprint),
        bytes(evidence),
        ManufacturerStatus(status),
        int(granted_at),
        bytes(reason),
    )


def read_device_licence(contracts: Contracts, licence_id: int) -> DeviceLicence:
    # The contract reverts (UnknownLicence) for an id it never issued.
    if licence_id < 1 or licence_id > contracts.device_license.functions.licenceCount().call():
        raise NotFound(f"device licence {licence_id} does not exist")
    raw = contracts.device_license.functions.licence(licence_id).call()
    holder, design_hash, model, revision, evidence, status, issued_at, reason = raw
    if DeviceLicenceStatus(status) is DeviceLicenceStatus.NONE:
        raise NotFound(f"device licence {licence_id} does not exist")
    return DeviceLicence(
        licence_id,
        holder,
        bytes(design_hash),
        model,
        revision,
        bytes(evidence),
        DeviceLicenceStatus(status),
        int(issued_at),
        bytes(reason),
    )


def read_minting_licence(contracts: Contracts, device_licence_id: int) -> MintingLicence:
    device = read_device_licence(contracts, device_licence_id)
    manufacturer_id = contracts.manufacturer_license.functions.licenceIdOf(device.holder).call()
    return MintingLicence(device=device, manufacturer=read_manufacturer_licence(contracts, manufacturer_id))


def published_firmware(contracts: Contracts, device_licence_id: int) -> dict[str, bytes]:
    """Firmware releases the holder published for a device licence: version -> image SHA-256,
    in publication order (read from the FirmwarePublished events)."""
    event = contracts.device_license.events.FirmwarePublished
    logs = event.get_logs(
        from_block=contracts.deployment.deployed_block, argument_filters={"licenceId": device_licence_id}
    )
    return {log["args"]["version"]: bytes(log["args"]["imageHash"]) for log in logs}


def firmware_image(contracts: Contracts, device_licence_id: int, version: str) -> bytes | None:
    """The image SHA-256 published for `version` under the licence, or None if never published."""
    image = contracts.device_license.functions.firmwareImage(
        device_licence_id, Web3.keccak(text=version)
    ).call()
    return bytes(image) if any(image) else None
