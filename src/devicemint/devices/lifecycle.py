"""A device's life after the factory, recorded on its certificate (contracts/base/DeviceLifecycle.sol).

Each record is attested by the party the contract names for it: the owner grants and revokes
authorisations and (with organisations it lets manage the device) records end of life; the
device's own key attests factory resets and OTA updates, or the manufacturer attests a reset
while it holds the owner's factory-reset permission.

The attesting party either sends the transaction itself, or signs an EIP-712 attestation (its
sequential nonce, a deadline) that anyone relays: a device has a key but rarely gas, and an app
can collect an owner's signature and pay for it. `Attestation.IN_PERSON` is the first case.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.orm import Session
from web3 import Web3
from web3.types import TxReceipt

from devicemint.chain.deploy import ZERO_ADDRESS
from devicemint.chain.deployments import Contracts
from devicemint.chain.eip712 import typed_data
from devicemint.chain.tx import TxSender
from devicemint.db.models import Certificate, Document
from devicemint.devices.document import CertificateDocument
from devicemint.errors import DevicemintError, NotFound, UsageError
from devicemint.indexer.events import device_of

#: How long a signed attestation made here stays valid by default.
ATTESTATION_SECONDS = 3600


class LifecycleError(DevicemintError):
    """A lifecycle record that cannot be made as asked."""


class Permission(IntFlag):
    """What an authorised organisation may do with a device (the contract's permission bits)."""

    READ_DATA = 1
    MANAGE = 2
    OTA = 4
    FACTORY_RESET = 8

    @classmethod
    def parse(cls, names: str) -> Permission:
        """`read_data,manage` -> READ_DATA | MANAGE; names are the lower-case member names."""
        result = cls(0)
        for name in filter(None, (part.strip() for part in names.split(","))):
            try:
                result |= cls[name.upper()]
            except KeyError:
                known = ", ".join(member.name.lower() for member in cls)  # type: ignore[union-attr]
                raise UsageError(
                    f"unknown permission {name!r}; use a comma-separated list of {known}"
                ) from None
        if not result:
            raise UsageError("name at least one permission")
        return result

    def names(self) -> list[str]:
        return [member.name.lower() for member in Permission if member in self]  # type: ignore[union-attr]


class Stage(IntEnum):
    ACTIVE = 0
    DECOMMISSIONED = 1
    RECYCLED = 2
    DISPOSED = 3


class Role(IntEnum):
    """In which role a record's attester acted."""

    OWNER = 0
    DEVICE = 1
    MANUFACTURER = 2
    GRANTEE = 3


#: EIP-712 fields of each attestation, before the `nonce` and `deadline` every one ends with.
ACTIONS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "Authorize": (
        ("tokenId", "uint256"),
        ("grantee", "address"),
        ("permissions", "uint8"),
        ("expiresAt", "uint64"),
    ),
    "RevokeAuthorization": (("tokenId", "uint256"), ("grantee", "address")),
    "FactoryReset": (("tokenId", "uint256"),),
    "FirmwareUpdate": (
        ("tokenId", "uint256"),
        ("fromVersion", "string"),
        ("toVersion", "string"),
        ("imageHash", "bytes32"),
    ),
    "EndOfLife": (("tokenId", "uint256"), ("stage", "uint8"), ("evidenceHash", "bytes32")),
}


#: Each action's DeviceCertificate function, and how a refusal names what was being done.
_CALLS: Mapping[str, tuple[str, Callable[[str, Mapping[str, Any]], str]]] = {
    "Authorize": ("authorize", lambda d, f: f"authorising {f['grantee']} on device {d}"),
    "RevokeAuthorization": (
        "revokeAuthorization",
        lambda d, f: f"revoking {f['grantee']}'s authorisation on device {d}",
    ),
    "FactoryReset": ("recordFactoryReset", lambda d, f: f"recording a factory reset of device {d}"),
    "FirmwareUpdate": (
        "recordFirmwareUpdate",
        lambda d, f: f"recording the update of device {d} from {f['fromVersion']} to {f['toVersion']}",
    ),
    "EndOfLife": (
        "recordEndOfLife",
        lambda d, f: f"recording device {d} as {Stage(f['stage']).name.lower()}",
    ),
}


@dataclass(frozen=True)
class Attestation:
    """Who attests a record: `signer`'s EIP-712 signature, or (empty) the sender in person."""

    signer: str
    deadline: int
    signature: bytes

    def as_tuple(self) -> tuple[str, int, bytes]:
        return (self.signer, self.deadline, self.signature)


IN_PERSON = Attestation(ZERO_ADDRESS, 0, b"")


@dataclass(frozen=True)
class LifecycleState:
    stage: Stage
    factory_resets: int
    firmware_version_hash: bytes | None
    grant_epoch: int


@dataclass(frozen=True)
class Grant:
    permissions: Permission
    expires_at: int


def token_id(address: str) -> int:
    """The certificate's token id: the device address as an integer."""
    return int(address, 16)


def lifecycle_typed_data(contracts: Contracts, action: str, message: Mapping[str, Any]) -> dict[str, Any]:
    """The EIP-712 typed data a wallet or device signs for `action`; `message` holds every field,
    including `nonce` and `deadline`."""
    if action not in ACTIONS:
        raise UsageError(f"unknown lifecycle action {action!r}; one of {', '.join(ACTIONS)}")
    fields = [
        {"name": n, "type": t} for n, t in (*ACTIONS[action], ("nonce", "uint256"), ("deadline", "uint256"))
    ]
    domain = {
        "name": "DeviceCertificate",
        "version": "1",
        "chainId": contracts.deployment.chain_id,
        "verifyingContract": contracts.deployment.device_certificate,
    }
    return typed_data(domain=domain, primary_type=action, fields=fields, message=message)


def attest(
    contracts: Contracts,
    signer: LocalAccount,
    action: str,
    fields: Mapping[str, Any],
    *,
    deadline: int | None = None,
    nonce: int | None = None,
) -> Attestation:
    """`signer` signs `action` over `fields` with its next nonce (read from the chain)."""
    if nonce is None:
        nonce = int(contracts.device_certificate.functions.nonces(signer.address).call())
    deadline = deadline if deadline is not None else int(time.time()) + ATTESTATION_SECONDS
    message = {**fields, "nonce": nonce, "deadline": deadline}
    signed = Account.sign_typed_data(
        signer.key, full_message=lifecycle_typed_data(contracts, action, message)
    )
    return Attestation(signer.address, deadline, bytes(signed.signature))


class Lifecycle:
    """Sends lifecycle records for one sender: in person, or relaying someone's attestation."""

    def __init__(self, *, contracts: Contracts, sender: TxSender) -> None:
        self._contracts = contracts
        self._functions = contracts.device_certificate.functions
        self._sender = sender

    def record(
        self, action: str, fields: Mapping[str, Any], attestation: Attestation = IN_PERSON
    ) -> TxReceipt:
        """Send the record `action` (an EIP-712 type of ACTIONS) with its `fields`: the same fields
        its attestation signs, in the contract's argument order."""
        if action == "EndOfLife" and fields["stage"] == Stage.ACTIVE:
            raise UsageError("end of life is decommissioned, recycled or disposed")
        function, describe = _CALLS[action]
        arguments = [fields[name] for name, _ in ACTIONS[action]]
        call = getattr(self._functions, function)(*arguments, attestation.as_tuple())
        return self._sender.transact(call, what=describe(device_of(fields["tokenId"]), fields))

    def authorize(
        self,
        device: str,
        grantee: str,
        permissions: Permission,
        expires_at: int,
        attestation: Attestation = IN_PERSON,
    ) -> TxReceipt:
        fields = {"tokenId": token_id(device), "grantee": grantee, "permissions": int(permissions)}
        return self.record("Authorize", fields | {"expiresAt": expires_at}, attestation)

    def revoke(self, device: str, grantee: str, attestation: Attestation = IN_PERSON) -> TxReceipt:
        return self.record(
            "RevokeAuthorization", {"tokenId": token_id(device), "grantee": grantee}, attestation
        )

    def factory_reset(self, device: str, attestation: Attestation = IN_PERSON) -> TxReceipt:
        return self.record("FactoryReset", {"tokenId": token_id(device)}, attestation)

    def firmware_update(
        self,
        device: str,
        *,
        from_version: str,
        to_version: str,
        image_sha256: bytes,
        attestation: Attestation = IN_PERSON,
    ) -> TxReceipt:
        fields = {"tokenId": token_id(device), "fromVersion": from_version, "toVersion": to_version}
        return self.record("FirmwareUpdate", fields | {"imageHash": image_sha256}, attestation)

    def end_of_life(
        self, device: str, stage: Stage, evidence_sha256: bytes, attestation: Attestation = IN_PERSON
    ) -> TxReceipt:
        fields = {"tokenId": token_id(device), "stage": int(stage), "evidenceHash": evidence_sha256}
        return self.record("EndOfLife", fields, attestation)

    def transfer(self, device: str, to: str) -> TxReceipt:
        """The owner (the sender) hands the certificate on; every authorisation is cleared."""
        owner = self.owner(device)
        if owner != self._sender.account.address:
            raise LifecycleError(f"device {device} belongs to {owner}, not to {self._sender.account.address}")
        call = self._functions.transferFrom(owner, to, token_id(device))
        return self._sender.transact(call, what=f"transferring device {device} to {to}")

    # -- views ------------------------------------------------------------------------------------------

    def owner(self, device: str) -> str:
        return str(self._functions.ownerOf(token_id(device)).call())

    def state(self, device: str) -> LifecycleState:
        stage, resets, firmware, epoch = self._functions.lifecycle(token_id(device)).call()
        firmware = bytes(firmware)
        return LifecycleState(Stage(stage), int(resets), firmware if any(firmware) else None, int(epoch))

    def grant(self, device: str, grantee: str) -> Grant:
        permissions, expires_at, _epoch = self._functions.authorization(token_id(device), grantee).call()
        return Grant(Permission(permissions), int(expires_at))

    def current_firmware(self, device: str, initial_version: str) -> str:
        """The version the certificate holds now: the last recorded update's, else the initial one
        the certificate document names (the chain keeps only its hash, the events its name)."""
        logs = self._contracts.device_certificate.events.FirmwareUpdated.get_logs(
            from_block=self._contracts.deployment.deployed_block,
            argument_filters={"tokenId": token_id(device)},
        )
        return str(logs[-1]["args"]["toVersion"]) if logs else initial_version


def initial_firmware(session: Session, address: str) -> str:
    """The firmware version the device left the factory with, as its certificate document says."""
    body = session.scalar(
        select(Document.body)
        .join(Certificate, Certificate.document_sha256 == Document.sha256)
        .where(Certificate.address == Web3.to_checksum_address(address))
    )
    if body is None:
        raise NotFound(f"no certificate document for device {address} in this database")
    return CertificateDocument.from_json(body).firmware_version
