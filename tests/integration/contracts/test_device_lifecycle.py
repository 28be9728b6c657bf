"""DeviceLifecycle (through DeviceCertificate): authorisations, factory resets, OTA updates and
end of life, attested in person or by EIP-712 signatures relayed by anyone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from contracts_support import DESIGN, Chain
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

CHAIN_ID = 31337
ROOT = Web3.keccak(text="lifecycle batch merkle root")
URI = "https://certs.example.org/lifecycle/"
ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20
IN_PERSON = (ZERO_ADDRESS, 0, b"")
EVIDENCE = Web3.keccak(text="recycler certificate 4711")
IMAGE_1_1 = Web3.keccak(text="firmware image 1.1.0")
IMAGE_1_2 = Web3.keccak(text="firmware image 1.2.0")

READ_DATA, MANAGE, OTA, FACTORY_RESET = 1, 2, 4, 8
OWNER, DEVICE, MANUFACTURER, GRANTEE = range(4)  # Role
ACTIVE, DECOMMISSIONED, RECYCLED, DISPOSED = range(4)  # Stage

_TAIL = [{"name": "nonce", "type": "uint256"}, {"name": "deadline", "type": "uint256"}]
TYPES: dict[str, list[dict[str, str]]] = {
    "Authorize": [
        {"name": "tokenId", "type": "uint256"},
        {"name": "grantee", "type": "address"},
        {"name": "permissions", "type": "uint8"},
        {"name": "expiresAt", "type": "uint64"},
    ],
    "RevokeAuthorization": [{"name": "tokenId", "type": "uint256"}, {"name": "grantee", "type": "address"}],
    "FactoryReset": [{"name": "tokenId", "type": "uint256"}],
    "FirmwareUpdate": [
        {"name": "tokenId", "type": "uint256"},
        {"name": "fromVersion", "type": "string"},
        {"name": "toVersion", "type": "string"},
        {"name": "imageHash", "type": "bytes32"},
    ],
    "EndOfLife": [
        {"name": "tokenId", "type": "uint256"},
        {"name": "stage", "type": "uint8"},
        {"name": "evidenceHash", "type": "bytes32"},
    ],
}
DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


@dataclass
class Devices:
    """Three devices of batch `batch_id` under device licence 1, owned by `owner`."""

    batch_id: int
    owner: LocalAccount
    keys: list[LocalAccount]

    @property
    def ids(self) -> list[int]:
        return [token_id(k) for k in self.keys]


def token_id(device: LocalAccount) -> int:
    return int(device.address, 16)


def device_keys(count: int, salt: str = "lifecycle device") -> list[LocalAccount]:
    return [Account.from_key(Web3.keccak(text=f"{salt} {i}")) for i in range(count)]


def mint(
    chain: Chain,
    to: LocalAccount,
    keys: list[LocalAccount],
    licence_id: int = 1,
    design: bytes = DESIGN,
    root: bytes = ROOT,
    sender: LocalAccount | None = None,
) -> int:
    sender = sender or chain.accounts.manufacturer
    dc = chain.dc.functions
    chain.send(dc.openBatch(licence_id, design, root, len(keys), URI), sender)
    batch_id = int(dc.batchIdOfRoot(licence_id, root).call())
    chain.send(dc.mintBatch(batch_id, to.address, [k.address for k in keys]), sender)
    return batch_id


@pytest.fixture
def devices(chain: Chain) -> Devices:
    keys = device_keys(3)
    return Devices(mint(chain, chain.accounts.buyer, keys), chain.accounts.buyer, keys)


def sign(
    chain: Chain,
    key: LocalAccount,
    primary: str,
    message: dict[str, Any],
    *,
    signer: str | None = None,
    nonce: int | None = None,
    deadline: int | None = None,
    chain_id: int = CHAIN_ID,
    verifying_contract: str | None = None,
    name: str = "DeviceCertificate",
) -> tuple[str, int, bytes]:
    """An Attestation tuple: `message` signed by `key` (EIP-712) for `signer` (default: key)."""
    signer = signer or key.address
    nonce = int(chain.dc.functions.nonces(signer).call()) if nonce is None else nonce
    deadline = chain.now() + 3600 if deadline is None else deadline
    full = {
        "types": {"EIP712Domain": DOMAIN_TYPE, primary: TYPES[primary] + _TAIL},
        "primaryType": primary,
        "domain": {
            "name": name,
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": verifying_contract or chain.dc.address,
        },
        "message": {**message, "nonce": nonce, "deadline": deadline},
    }
    signed = Account.sign_typed_data(key.key, full_message=full)
    return (signer, deadline, bytes(signed.signature))


def send_as(chain: Chain, fn: ContractFunction, account: LocalAccount) -> TxReceipt:
    """Sends `fn` as a transaction signed by `account`'s own key (not an anvil dev account)."""
    w3 = chain.w3
    w3.provider.make_request("anvil_setBalance", [account.address, hex(10**18)])
    tx = fn.build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
    )
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    assert receipt["status"] == 1
    return receipt


def event(chain: Chain, receipt: TxReceipt, name: str) -> dict[str, Any]:
    (found,) = chain.events(receipt, chain.dc, name)
    return dict(found["args"])


def authorize(
    chain: Chain, devs: Devices, grantee: str, permissions: int, tid: int | None = None, seconds: int = 86_400
) -> int:
    """The owner grants `permissions` to `grantee` in person; returns the expiry."""
    expires = chain.now() + seconds
    tid = devs.ids[0] if tid is None else tid
    chain.send(chain.dc.functions.authorize(tid, grantee, permissions, expires, IN_PERSON), devs.owner)
    return expires


def publish(
    chain: Chain, version: str, image: bytes, licence_id: int = 1, holder: LocalAccount | None = None
) -> None:
    chain.send(
        chain.dl.functions.publishFirmware(licence_id, version, image), holder or chain.accounts.manufacturer
    )


def decommission(chain: Chain, devs: Devices, tid: int) -> None:
    chain.send(chain.dc.functions.recordEndOfLife(tid, DECOMMISSIONED, EVIDENCE, IN_PERSON), devs.owner)


def lifecycle(chain: Chain, tid: int) -> tuple[Any, ...]:
    return tuple(chain.dc.functions.lifecycle(tid).call())


def grant_of(chain: Chain, tid: int, grantee: str) -> tuple[Any, ...]:
    return tuple(chain.dc.functions.authorization(tid, grantee).call())


# ------------------------------------------------------------------ minting and views


def test_fresh_tokens_have_empty_lifecycle(chain: Chain, devices: Devices) -> None:
    dc = chain.dc.functions
    assert chain.w3.eth.chain_id == CHAIN_ID
    for tid in devices.ids:
        assert dc.ownerOf(tid).call() == devices.owner.address
        assert dc.batchOf(tid).call() == devices.batch_id
        assert lifecycle(chain, tid) == (ACTIVE, 0, ZERO32, 0)
        assert dc.stageOf(tid).call() == ACTIVE
    assert dc.balanceOf(devices.owner.address).call() == 3
    assert dc.nonces(devices.owner.address).call() == 0
    assert (dc.READ_DATA().call(), dc.MANAGE().call(), dc.OTA().call(), dc.FACTORY_RESET().call()) == (
        1,
        2,
        4,
        8,
    )
    domain = dc.eip712Domain().call()
    assert tuple(domain[1:5]) == ("DeviceCertificate", "1", CHAIN_ID, chain.dc.address)


# ------------------------------------------------------------------ authorize


def test_owner_authorizes_in_person(chain: Chain, devices: Devices) -> None:
    dc = chain.dc.functions
    tid, grantee = devices.ids[0], chain.accounts.outsider.address
    expires = chain.now() + 86_400
    receipt = chain.send(dc.authorize(tid, grantee, READ_DATA | OTA, expires, IN_PERSON), devices.owner)
    assert event(chain, receipt, "AuthorizationGranted") == {
        "tokenId": tid,
        "grantee": grantee,
        "permissions": READ_DATA | OTA,
        "expiresAt": expires,
        "attestedBy": devices.owner.address,
    }
    assert grant_of(chain, tid, grantee) == (READ_DATA | OTA, expires, 0)
    assert dc.hasPermission(tid, grantee, READ_DATA).call() is True
    assert dc.hasPermission(tid, grantee, OTA).call() is True
    assert dc.hasPermission(tid, grantee, READ_DATA | OTA).call() is True
    assert dc.hasPermission(tid, grantee, MANAGE).call() is False
    assert dc.hasPermission(tid, grantee, READ_DATA | MANAGE).call() is False  # every bit needed
    assert dc.hasPermission(tid, grantee, 0).call() is False
    # Per token and per grantee.
    assert grant_of(chain, devices.ids[1], grantee) == (0, 0, 0)
    assert grant_of(chain, tid, chain.accounts.manufacturer.address) == (0, 0, 0)
    assert dc.nonces(devices.owner.address).call() == 0  # in person uses no nonce

    # A new grant replaces the old one.
    later = expires + 1000
    chain.send(dc.authorize(tid, grantee, MANAGE, later, IN_PERSON), devices.owner)
    assert grant_of(chain, tid, grantee) == (MANAGE, later, 0)
    assert dc.hasPermission(tid, grantee, READ_DATA).call() is False
    # All four permissions at once are fine.
    chain.send(dc.authorize(tid, grantee, 15, later, IN_PERSON), devices.owner)
    assert grant_of(chain, tid, grantee) == (15, later, 0)


def test_owner_signed_authorization_relayed_by_outsider(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid, grantee = devices.ids[0], a.manufacturer.address
    expires = chain.now() + 86_400
    message = {"tokenId": tid, "grantee": grantee, "permissions": FACTORY_RESET, "expiresAt": expires}
    attestation = sign(chain, devices.owner, "Authorize", message)
    receipt = chain.send(dc.authorize(tid, grantee, FACTORY_RESET, expires, attestation), a.outsider)
    assert event(chain, receipt, "AuthorizationGranted")["attestedBy"] == devices.owner.address
    assert grant_of(chain, tid, grantee) == (FACTORY_RESET, expires, 0)
    assert dc.nonces(devices.owner.address).call() == 1
    assert dc.nonces(a.outsider.address).call() == 0
    # The next signature carries nonce 1; the grantee itself may relay it.
    message2 = {**message, "permissions": READ_DATA}
    attestation2 = sign(chain, devices.owner, "Authorize", message2)
    chain.send(dc.authorize(tid, grantee, READ_DATA, expires, attestation2), a.manufacturer)
    assert dc.nonces(devices.owner.address).call() == 2
    assert grant_of(chain, tid, grantee) == (READ_DATA, expires, 0)


def test_authorize_refused_for_non_owner(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    tid = devices.ids[0]
    device = devices.keys[0]
    fn = chain.dc.functions.authorize(tid, a.member1.address, READ_DATA, chain.now() + 86_400, IN_PERSON)
    for who in (a.outsider, a.manufacturer, device):
        chain.reverts(fn, who, "NotAttester", tid, who.address, OWNER)
    # In person, the signer field is ignored: naming the owner does not make the caller the owner.
    impostor = chain.dc.functions.authorize(
        tid, a.outsider.address, READ_DATA, chain.now() + 86_400, (devices.owner.address, 2**63, b"")
    )
    chain.reverts(impostor, a.outsider, "NotAttester", tid, a.outsider.address, OWNER)


def test_authorize_refused_for_signature_of_non_owner(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid, grantee = devices.ids[0], a.outsider.address
    expires = chain.now() + 86_400
    message = {"tokenId": tid, "grantee": grantee, "permissions": READ_DATA, "expiresAt": expires}
    # A valid signature, but of someone who is not the owner.
    own = sign(chain, a.outsider, "Authorize", message)
    chain.reverts(
        dc.authorize(tid, grantee, READ_DATA, expires, own),
        a.outsider,
        "NotAttester",
        tid,
        a.outsider.address,
        OWNER,
    )
    by_device = sign(chain, devices.keys[0], "Authorize", message)
    chain.reverts(
        dc.authorize(tid, grantee, READ_DATA, expires, by_device),
        a.outsider,
        "NotAttester",
        tid,
        devices.keys[0].address,
        OWNER,
    )
    # Claiming to be the owner with someone else's signature.
    forged = sign(chain, a.outsider, "Authorize", message, signer=devices.owner.address)
    chain.reverts(
        dc.authorize(tid, grantee, READ_DATA, expires, forged),
        a.outsider,
        "InvalidSignature",
        devices.owner.address,
        0,
    )
    # Garbage and truncated signatures.
    good = sign(chain, devices.owner, "Authorize", message)
    for bad in (b"\x01", good[2][:64] + b"\x1d", b"\x00" * 65):
        chain.reverts(
            dc.authorize(tid, grantee, READ_DATA, expires, (good[0], good[1], bad)),
            a.outsider,
            "InvalidSignature",
            devices.owner.address,
            0,
        )
    # An unrecoverable signature never passes for the zero address.
    chain.reverts(
        dc.authorize(tid, grantee, READ_DATA, expires, (ZERO_ADDRESS, good[1], b"\x00" * 65)),
        a.outsider,
        "InvalidSignature",
        ZERO_ADDRESS,
        0,
    )
    assert dc.nonces(devices.owner.address).call() == 0
    assert grant_of(chain, tid, grantee) == (0, 0, 0)


def test_expired_signature_refused(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid, grantee = devices.ids[0], a.outsider.address
    expires = chain.now() + 86_400
    message = {"tokenId": tid, "grantee": grantee, "permissions": READ_DATA, "expiresAt": expires}
    deadline = chain.now() - 1
    stale = sign(chain, devices.owner, "Authorize", message, deadline=deadline)
    chain.reverts(
        dc.authorize(tid, grantee, READ_DATA, expires, stale), a.outsider, "SignatureExpired", deadline
    )
    # A signature valid when made expires once its deadline passes.
    soon = sign(chain, devices.owner, "Authorize", message, deadline=chain.now() + 60)
    chain.travel(120)
    chain.reverts(
        dc.authorize(tid, grantee, READ_DATA, expires, soon), a.outsider, "SignatureExpired", soon[1]
    )
    assert dc.nonces(devices.owner.address).call() == 0


def test_signature_valid_up_to_and_including_its_deadline(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid, grantee = devices.ids[0], a.outsider.address
    expires = chain.now() + 86_400
    deadline = chain.now() + 100
    message = {"tokenId": tid, "grantee": grantee, "permissions": READ_DATA, "expiresAt": expires}
    attestation = sign(chain, devices.owner, "Authorize", message, deadline=deadline)
    chain.w3.provider.make_request("evm_setNextBlockTimestamp", [deadline])
    tx = dc.authorize(tid, grantee, READ_DATA, expires, attestation).transact(
        {"from": a.outsider.address, "gas": 300_000}
    )
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1
    assert chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"] == deadline
    assert grant_of(chain, tid, grantee) == (READ_DATA, expires, 0)


def test_replayed_signature_refused(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid, grantee = devices.ids[0], a.outsider.address
    expires = chain.now() + 86_400
    message = {"tokenId": tid, "grantee": grantee, "permissions": READ_DATA, "expiresAt": expires}
    attestation = sign(chain, devices.owner, "Authorize", message)
    fn = dc.authorize(tid, grantee, READ_DATA, expires, attestation)
    chain.send(fn, a.outsider)
    chain.reverts(fn, a.outsider, "InvalidSignature", devices.owner.address, 1)
    chain.reverts(fn, a.member1, "InvalidSignature", devices.owner.address, 1)
    # Revoked, the same grant cannot be brought back by replaying the old signature.
    chain.send(dc.revokeAuthorization(tid, grantee, IN_PERSON), devices.owner)
    chain.reverts(fn, a.outsider, "InvalidSignature", devices.owner.address, 1)
    assert dc.nonces(devices.owner.address).call() == 1
    # A signature made for a future nonce is refused now.
    ahead = sign(chain, devices.owner, "Authorize", message, nonce=5)
    chain.reverts(
        dc.authorize(tid, grantee, READ_DATA, expires, ahead),
        a.outsider,
        "InvalidSignature",
        devices.owner.address,
        1,
    )


def test_signature_for_another_domain_refused(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid, grantee = devices.ids[0], a.outsider.address
    expires = chain.now() + 86_400
    message = {"tokenId": tid, "grantee": grantee, "permissions": READ_DATA, "expiresAt": expires}
    for other in (
        sign(chain, devices.owner, "Authorize", message, chain_id=1),
        sign(chain, devices.owner, "Authorize", message, verifying_contract=chain.dl.address),
        sign(chain, devices.owner, "Authorize", message, name="DeviceLicense"),
    ):
        chain.reverts(
            dc.authorize(tid, grantee, READ_DATA, expires, other),
            a.outsider,
            "InvalidSignature",
            devices.owner.address,
            0,
        )


def test_signature_binds_every_field(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid, grantee = devices.ids[0], a.outsider.address
    expires = chain.now() + 86_400
    message = {"tokenId": tid, "grantee": grantee, "permissions": READ_DATA, "expiresAt": expires}
    signer, deadline, sig = sign(chain, devices.owner, "Authorize", message)
    good = (signer, deadline, sig)
    tampered = [
        dc.authorize(devices.ids[1], grantee, READ_DATA, expires, good),  # same owner, other token
        dc.authorize(tid, a.member1.address, READ_DATA, expires, good),
        dc.authorize(tid, grantee, READ_DATA | MANAGE, expires, good),
        dc.authorize(tid, grantee, READ_DATA, expires + 1, good),
        dc.authorize(tid, grantee, READ_DATA, expires, (signer, deadline + 1, sig)),
    ]
    for fn in tampered:
        chain.reverts(fn, a.outsider, "InvalidSignature", devices.owner.address, 0)
    # A signature of another action does not authorise this one.
    revoke_sig = sign(chain, devices.owner, "RevokeAuthorization", {"tokenId": tid, "grantee": grantee})
    chain.reverts(
        dc.authorize(tid, grantee, READ_DATA, expires, revoke_sig),
        a.outsider,
        "InvalidSignature",
        devices.owner.address,
        0,
    )
    chain.send(dc.authorize(tid, grantee, READ_DATA, expires, good), a.outsider)  # untampered works


def test_authorize_argument_refusals(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    owner = devices.owner
    tid, grantee = devices.ids[0], a.outsider.address
    expires = chain.now() + 86_400
    for bad in (0, 16, 31, 255):
        chain.reverts(dc.authorize(tid, grantee, bad, expires, IN_PERSON), owner, "InvalidPermissions", bad)
    past = chain.now() - 1
    chain.reverts(dc.authorize(tid, grantee, READ_DATA, past, IN_PERSON), owner, "ExpiryInPast", past)
    chain.reverts(dc.authorize(tid, grantee, READ_DATA, 0, IN_PERSON), owner, "ExpiryInPast", 0)
    chain.reverts(
        dc.authorize(tid, ZERO_ADDRESS, READ_DATA, expires, IN_PERSON), owner, "InvalidGrantee", ZERO_ADDRESS
    )
    chain.reverts(
        dc.authorize(tid, owner.address, READ_DATA, expires, IN_PERSON),
        owner,
        "InvalidGrantee",
        owner.address,
    )
    # The same checks apply on the signed path.
    message = {"tokenId": tid, "grantee": owner.address, "permissions": READ_DATA, "expiresAt": expires}
    signed = sign(chain, owner, "Authorize", message)
    chain.reverts(
        dc.authorize(tid, owner.address, READ_DATA, expires, signed),
        a.outsider,
        "InvalidGrantee",
        owner.address,
    )
    # The device itself is a legitimate grantee (e.g. to read its own data).
    chain.send(dc.authorize(tid, devices.keys[0].address, READ_DATA, expires, IN_PERSON), owner)


def test_expired_grant_counts_as_absent(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid, grantee = devices.ids[0], a.outsider.address
    expires = authorize(chain, devices, grantee, READ_DATA | MANAGE, seconds=1000)
    assert grant_of(chain, tid, grantee) == (READ_DATA | MANAGE, expires, 0)
    chain.travel(2000)
    assert grant_of(chain, tid, grantee) == (0, 0, 0)
    assert dc.hasPermission(tid, grantee, READ_DATA).call() is False
    # An expired MANAGE grant cannot record end of life.
    chain.reverts(
        dc.recordEndOfLife(tid, DECOMMISSIONED, EVIDENCE, IN_PERSON),
        a.outsider,
        "NotAttester",
        tid,
        grantee,
        OWNER,
    )
    chain.reverts(
        dc.revokeAuthorization(tid, grantee, IN_PERSON), devices.owner, "NoAuthorization", tid, grantee
    )
    later = authorize(chain, devices, grantee, READ_DATA)
    assert grant_of(chain, tid, grantee) == (READ_DATA, later, 0)


def test_transfer_clears_grants(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    owner, new_owner = devices.owner, a.member1
    tid, other = devices.ids[0], devices.ids[1]
    expires = authorize(chain, devices, a.outsider.address, READ_DATA | MANAGE)
    authorize(chain, devices, a.manufacturer.address, FACTORY_RESET)
    authorize(chain, devices, a.outsider.address, READ_DATA, tid=other)

    receipt = chain.send(dc.transferFrom(owner.address, new_owner.address, tid), owner)
    assert event(chain, receipt, "AuthorizationsCleared") == {"tokenId": tid, "epoch": 1}
    assert dc.ownerOf(tid).call() == new_owner.address
    assert lifecycle(chain, tid) == (ACTIVE, 0, ZERO32, 1)
    for grantee in (a.outsider.address, a.manufacturer.address):
        assert grant_of(chain, tid, grantee) == (0, 0, 0)
        assert dc.hasPermission(tid, grantee, READ_DATA).call() is False
    chain.reverts(
        dc.recordFactoryReset(tid, IN_PERSON),
        a.manufacturer,
        "NotAttester",
        tid,
        a.manufacturer.address,
        DEVICE,
    )
    chain.reverts(
        dc.revokeAuthorization(tid, a.outsider.address, IN_PERSON),
        new_owner,
        "NoAuthorization",
        tid,
        a.outsider.address,
    )
    # Other tokens keep their grants; the batch id survives.
    assert grant_of(chain, other, a.outsider.address)[0] == READ_DATA
    assert lifecycle(chain, other) == (ACTIVE, 0, ZERO32, 0)
    assert dc.batchOf(tid).call() == devices.batch_id

    # The old owner may no longer grant; the new one may, in the new epoch.
    chain.reverts(
        dc.authorize(tid, a.outsider.address, READ_DATA, expires, IN_PERSON),
        owner,
        "NotAttester",
        tid,
        owner.address,
        OWNER,
    )
    chain.send(dc.authorize(tid, a.outsider.address, OTA, expires, IN_PERSON), new_owner)
    assert grant_of(chain, tid, a.outsider.address) == (OTA, expires, 1)

    # safeTransferFrom clears too, and the epoch keeps counting.
    receipt = chain.send(dc.safeTransferFrom(new_owner.address, owner.address, tid), new_owner)
    assert event(chain, receipt, "AuthorizationsCleared") == {"tokenId": tid, "epoch": 2}
    assert grant_of(chain, tid, a.outsider.address) == (0, 0, 0)
    assert lifecycle(chain, tid)[3] == 2


def test_approved_operator_transfer_clears_grants(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid = devices.ids[0]
    authorize(chain, devices, a.outsider.address, MANAGE)
    chain.send(dc.approve(a.member2.address, tid), devices.owner)
    receipt = chain.send(dc.transferFrom(devices.owner.address, a.member3.address, tid), a.member2)
    assert event(chain, receipt, "AuthorizationsCleared") == {"tokenId": tid, "epoch": 1}
    assert grant_of(chain, tid, a.outsider.address) == (0, 0, 0)
    # A refused transfer changes nothing.
    chain.reverts(
        dc.transferFrom(a.member3.address, a.member1.address, tid), a.outsider, "NotOwnerNorApproved"
    )
    assert lifecycle(chain, tid)[3] == 1


# ------------------------------------------------------------------ revokeAuthorization


def test_owner_revokes_in_person(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid, grantee = devices.ids[0], a.outsider.address
    authorize(chain, devices, grantee, READ_DATA | OTA)
    authorize(chain, devices, a.manufacturer.address, FACTORY_RESET)
    receipt = chain.send(dc.revokeAuthorization(tid, grantee, IN_PERSON), devices.owner)
    assert event(chain, receipt, "AuthorizationRevoked") == {
        "tokenId": tid,
        "grantee": grantee,
        "attestedBy": devices.owner.address,
    }
    assert grant_of(chain, tid, grantee) == (0, 0, 0)
    assert dc.hasPermission(tid, grantee, READ_DATA).call() is False
    assert grant_of(chain, tid, a.manufacturer.address)[0] == FACTORY_RESET  # others untouched
    chain.reverts(
        dc.revokeAuthorization(tid, grantee, IN_PERSON), devices.owner, "NoAuthorization", tid, grantee
    )


def test_owner_signed_revocation_relayed(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid, grantee = devices.ids[0], a.outsider.address
    authorize(chain, devices, grantee, READ_DATA)
    attestation = sign(chain, devices.owner, "RevokeAuthorization", {"tokenId": tid, "grantee": grantee})
    # Signed for this grantee only.
    chain.reverts(
        dc.revokeAuthorization(tid, a.member1.address, attestation),
        a.member1,
        "InvalidSignature",
        devices.owner.address,
        0,
    )
    receipt = chain.send(dc.revokeAuthorization(tid, grantee, attestation), a.member1)
    assert event(chain, receipt, "AuthorizationRevoked")["attestedBy"] == devices.owner.address
    assert grant_of(chain, tid, grantee) == (0, 0, 0)
    assert dc.nonces(devices.owner.address).call() == 1


def test_revoke_refusals(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid, grantee = devices.ids[0], a.outsider.address
    authorize(chain, devices, grantee, MANAGE)
    fn = dc.revokeAuthorization(tid, grantee, IN_PERSON)
    for who in (a.outsider, a.manufacturer, devices.keys[0]):  # not even the grantee or a MANAGE holder
        chain.reverts(fn, who, "NotAttester", tid, who.address, OWNER)
    not_owner = sign(chain, a.outsider, "RevokeAuthorization", {"tokenId": tid, "grantee": grantee})
    chain.reverts(
        dc.revokeAuthorization(tid, grantee, not_owner),
        a.member1,
        "NotAttester",
        tid,
        a.outsider.address,
        OWNER,
    )
    chain.reverts(
        dc.revokeAuthorization(tid, a.member1.address, IN_PERSON),
        devices.owner,
        "NoAuthorization",
        tid,
        a.member1.address,
    )
    chain.reverts(
        dc.revokeAuthorization(devices.ids[1], grantee, IN_PERSON),
        devices.owner,
        "NoAuthorization",
        devices.ids[1],
        grantee,
    )
    assert grant_of(chain, tid, grantee)[0] == MANAGE


# ------------------------------------------------------------------ recordFactoryReset


def test_device_resets_in_person(chain: Chain, devices: Devices) -> None:
    dc = chain.dc.functions
    device, tid = devices.keys[0], devices.ids[0]
    receipt = send_as(chain, dc.recordFactoryReset(tid, IN_PERSON), device)
    assert event(chain, receipt, "FactoryReset") == {
        "tokenId": tid,
        "count": 1,
        "attestedBy": device.address,
        "role": DEVICE,
    }
    assert lifecycle(chain, tid) == (ACTIVE, 1, ZERO32, 0)
    receipt = send_as(chain, dc.recordFactoryReset(tid, IN_PERSON), device)
    assert event(chain, receipt, "FactoryReset")["count"] == 2
    assert lifecycle(chain, tid) == (ACTIVE, 2, ZERO32, 0)
    assert lifecycle(chain, devices.ids[1]) == (ACTIVE, 0, ZERO32, 0)
    assert dc.nonces(device.address).call() == 0
    # Counting lives beside the batch id and owner without disturbing them.
    assert dc.batchOf(tid).call() == devices.batch_id
    assert dc.ownerOf(tid).call() == devices.owner.address


def test_device_signed_reset_relayed(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    device, tid = devices.keys[0], devices.ids[0]
    attestation = sign(chain, device, "FactoryReset", {"tokenId": tid})
    # Signed for this token only.
    chain.reverts(
        dc.recordFactoryReset(devices.ids[1], attestation), a.outsider, "InvalidSignature", device.address, 0
    )
    receipt = chain.send(dc.recordFactoryReset(tid, attestation), a.outsider)
    assert event(chain, receipt, "FactoryReset") == {
        "tokenId": tid,
        "count": 1,
        "attestedBy": device.address,
        "role": DEVICE,
    }
    assert dc.nonces(device.address).call() == 1
    assert lifecycle(chain, tid)[1] == 1
    chain.reverts(dc.recordFactoryReset(tid, attestation), a.outsider, "InvalidSignature", device.address, 1)
    chain.send(dc.recordFactoryReset(tid, sign(chain, device, "FactoryReset", {"tokenId": tid})), a.buyer)
    assert lifecycle(chain, tid)[1] == 2
    assert dc.nonces(device.address).call() == 2


def test_manufacturer_with_factory_reset_grant_resets(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    m, tid = a.manufacturer, devices.ids[0]
    authorize(chain, devices, m.address, FACTORY_RESET | READ_DATA)
    receipt = chain.send(dc.recordFactoryReset(tid, IN_PERSON), m)
    assert event(chain, receipt, "FactoryReset") == {
        "tokenId": tid,
        "count": 1,
        "attestedBy": m.address,
        "role": MANUFACTURER,
    }
    # Signed by the manufacturer and relayed works too.
    signed = sign(chain, m, "FactoryReset", {"tokenId": tid})
    receipt = chain.send(dc.recordFactoryReset(tid, signed), a.outsider)
    assert event(chain, receipt, "FactoryReset")["role"] == MANUFACTURER
    assert event(chain, receipt, "FactoryReset")["count"] == 2
    assert lifecycle(chain, tid)[1] == 2
    # The grant is per token.
    chain.reverts(
        dc.recordFactoryReset(devices.ids[1], IN_PERSON), m, "NotAttester", devices.ids[1], m.address, DEVICE
    )


def test_reset_refusals(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    m, tid = a.manufacturer, devices.ids[0]
    fn = dc.recordFactoryReset(tid, IN_PERSON)
    chain.reverts(fn, m, "NotAttester", tid, m.address, DEVICE)  # no grant
    chain.reverts(fn, devices.owner, "NotAttester", tid, devices.owner.address, DEVICE)
    chain.reverts(fn, devices.keys[1], "NotAttester", tid, devices.keys[1].address, DEVICE)  # other device
    chain.reverts(fn, a.outsider, "NotAttester", tid, a.outsider.address, DEVICE)
    # A grantee holding FACTORY_RESET is not enough unless it is the manufacturer.
    authorize(chain, devices, a.outsider.address, 15)
    chain.reverts(fn, a.outsider, "NotAttester", tid, a.outsider.address, DEVICE)
    # The manufacturer needs the FACTORY_RESET bit itself.
    authorize(chain, devices, m.address, READ_DATA | MANAGE | OTA)
    chain.reverts(fn, m, "NotAttester", tid, m.address, DEVICE)
    # ...and a live grant.
    authorize(chain, devices, m.address, FACTORY_RESET, seconds=1000)
    chain.travel(2000)
    chain.reverts(fn, m, "NotAttester", tid, m.address, DEVICE)
    # ...that was not revoked.
    authorize(chain, devices, m.address, FACTORY_RESET)
    chain.send(dc.revokeAuthorization(tid, m.address, IN_PERSON), devices.owner)
    chain.reverts(fn, m, "NotAttester", tid, m.address, DEVICE)
    # Signatures by the wrong parties.
    by_owner = sign(chain, devices.owner, "FactoryReset", {"tokenId": tid})
    chain.reverts(
        dc.recordFactoryReset(tid, by_owner), a.outsider, "NotAttester", tid, devices.owner.address, DEVICE
    )
    by_other_device = sign(chain, devices.keys[1], "FactoryReset", {"tokenId": tid})
    chain.reverts(
        dc.recordFactoryReset(tid, by_other_device),
        a.outsider,
        "NotAttester",
        tid,
        devices.keys[1].address,
        DEVICE,
    )
    forged = sign(chain, a.outsider, "FactoryReset", {"tokenId": tid}, signer=devices.keys[0].address)
    chain.reverts(
        dc.recordFactoryReset(tid, forged), a.outsider, "InvalidSignature", devices.keys[0].address, 0
    )
    assert lifecycle(chain, tid)[1] == 0


# ------------------------------------------------------------------ recordFirmwareUpdate


def test_device_updates_firmware(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    device, tid = devices.keys[0], devices.ids[0]
    publish(chain, "1.1.0", IMAGE_1_1)
    publish(chain, "1.2.0", IMAGE_1_2)
    message = {"tokenId": tid, "fromVersion": "1.0.0", "toVersion": "1.1.0", "imageHash": IMAGE_1_1}
    attestation = sign(chain, device, "FirmwareUpdate", message)
    receipt = chain.send(dc.recordFirmwareUpdate(tid, "1.0.0", "1.1.0", IMAGE_1_1, attestation), a.outsider)
    assert event(chain, receipt, "FirmwareUpdated") == {
        "tokenId": tid,
        "fromVersion": "1.0.0",
        "toVersion": "1.1.0",
        "imageHash": IMAGE_1_1,
        "relayedBy": a.outsider.address,
    }
    assert lifecycle(chain, tid) == (ACTIVE, 0, Web3.keccak(text="1.1.0"), 0)
    assert dc.nonces(device.address).call() == 1
    # In person, the device is the relayer.
    receipt = send_as(chain, dc.recordFirmwareUpdate(tid, "1.1.0", "1.2.0", IMAGE_1_2, IN_PERSON), device)
    assert event(chain, receipt, "FirmwareUpdated") == {
        "tokenId": tid,
        "fromVersion": "1.1.0",
        "toVersion": "1.2.0",
        "imageHash": IMAGE_1_2,
        "relayedBy": device.address,
    }
    assert lifecycle(chain, tid) == (ACTIVE, 0, Web3.keccak(text="1.2.0"), 0)
    # Going back to an earlier published version is allowed.
    send_as(chain, dc.recordFirmwareUpdate(tid, "1.2.0", "1.1.0", IMAGE_1_1, IN_PERSON), device)
    assert lifecycle(chain, tid)[2] == Web3.keccak(text="1.1.0")
    assert lifecycle(chain, devices.ids[1])[2] == ZERO32  # per device


def test_ota_signature_binds_versions_and_image(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    device, tid = devices.keys[0], devices.ids[0]
    publish(chain, "1.1.0", IMAGE_1_1)
    publish(chain, "1.2.0", IMAGE_1_2)
    message = {"tokenId": tid, "fromVersion": "1.0.0", "toVersion": "1.1.0", "imageHash": IMAGE_1_1}
    attestation = sign(chain, device, "FirmwareUpdate", message)
    for fn in (
        dc.recordFirmwareUpdate(tid, "0.9.0", "1.1.0", IMAGE_1_1, attestation),
        dc.recordFirmwareUpdate(tid, "1.0.0", "1.2.0", IMAGE_1_2, attestation),
        dc.recordFirmwareUpdate(tid, "1.0.0", "1.1.0", IMAGE_1_2, attestation),
    ):
        chain.reverts(fn, a.outsider, "InvalidSignature", device.address, 0)


def test_ota_refused_for_unpublished_firmware(chain: Chain, devices: Devices) -> None:
    dc = chain.dc.functions
    device, tid = devices.keys[0], devices.ids[0]
    chain.reverts(
        dc.recordFirmwareUpdate(tid, "1.0.0", "9.9.9", IMAGE_1_1, IN_PERSON),
        device,
        "FirmwareNotPublished",
        1,
        "9.9.9",
        IMAGE_1_1,
    )
    publish(chain, "1.1.0", IMAGE_1_1)
    chain.reverts(
        dc.recordFirmwareUpdate(tid, "1.0.0", "1.1.0", IMAGE_1_2, IN_PERSON),
        device,
        "FirmwareNotPublished",
        1,
        "1.1.0",
        IMAGE_1_2,
    )
    chain.reverts(
        dc.recordFirmwareUpdate(tid, "1.0.0", "1.1.0", ZERO32, IN_PERSON),
        device,
        "FirmwareNotPublished",
        1,
        "1.1.0",
        ZERO32,
    )
    # An unpublished version with a zero image hash is not mistaken for a match.
    chain.reverts(
        dc.recordFirmwareUpdate(tid, "1.0.0", "2.0.0", ZERO32, IN_PERSON),
        device,
        "FirmwareNotPublished",
        1,
        "2.0.0",
        ZERO32,
    )
    assert lifecycle(chain, tid)[2] == ZERO32


def test_ota_from_version_must_match_current(chain: Chain, devices: Devices) -> None:
    dc = chain.dc.functions
    device, tid = devices.keys[0], devices.ids[0]
    publish(chain, "1.1.0", IMAGE_1_1)
    publish(chain, "1.2.0", IMAGE_1_2)
    send_as(chain, dc.recordFirmwareUpdate(tid, "1.0.0", "1.1.0", IMAGE_1_1, IN_PERSON), device)
    current = Web3.keccak(text="1.1.0")
    for stale in ("1.0.0", "", "1.2.0"):
        chain.reverts(
            dc.recordFirmwareUpdate(tid, stale, "1.2.0", IMAGE_1_2, IN_PERSON),
            device,
            "FirmwareVersionMismatch",
            tid,
            current,
            stale,
        )
    # The first update takes any fromVersion (it is in the certificate document).
    other, other_id = devices.keys[1], devices.ids[1]
    send_as(chain, dc.recordFirmwareUpdate(other_id, "0.1-beta", "1.2.0", IMAGE_1_2, IN_PERSON), other)
    assert lifecycle(chain, other_id)[2] == Web3.keccak(text="1.2.0")


def test_ota_to_same_version_refused(chain: Chain, devices: Devices) -> None:
    dc = chain.dc.functions
    device, tid = devices.keys[0], devices.ids[0]
    publish(chain, "1.1.0", IMAGE_1_1)
    chain.reverts(
        dc.recordFirmwareUpdate(tid, "1.1.0", "1.1.0", IMAGE_1_1, IN_PERSON), device, "SameFirmware", "1.1.0"
    )
    send_as(chain, dc.recordFirmwareUpdate(tid, "1.0.0", "1.1.0", IMAGE_1_1, IN_PERSON), device)
    chain.reverts(
        dc.recordFirmwareUpdate(tid, "1.1.0", "1.1.0", IMAGE_1_1, IN_PERSON), device, "SameFirmware", "1.1.0"
    )


def test_ota_refused_for_non_device_attesters(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid = devices.ids[0]
    publish(chain, "1.1.0", IMAGE_1_1)
    authorize(chain, devices, a.outsider.address, 15)
    authorize(chain, devices, a.manufacturer.address, 15)
    fn = dc.recordFirmwareUpdate(tid, "1.0.0", "1.1.0", IMAGE_1_1, IN_PERSON)
    for who in (devices.owner, a.manufacturer, a.outsider, devices.keys[1]):
        chain.reverts(fn, who, "NotAttester", tid, who.address, DEVICE)
    message = {"tokenId": tid, "fromVersion": "1.0.0", "toVersion": "1.1.0", "imageHash": IMAGE_1_1}
    for key in (devices.owner, a.manufacturer, devices.keys[1]):
        signed = sign(chain, key, "FirmwareUpdate", message)
        chain.reverts(
            dc.recordFirmwareUpdate(tid, "1.0.0", "1.1.0", IMAGE_1_1, signed),
            a.member1,
            "NotAttester",
            tid,
            key.address,
            DEVICE,
        )
    assert lifecycle(chain, tid)[2] == ZERO32


def test_firmware_of_another_licence_does_not_count(chain: Chain, devices: Devices) -> None:
    m = chain.accounts.manufacturer
    dc = chain.dc.functions
    design2 = Web3.keccak(text="design: Acme Tracker T2 rev A")
    assert chain.issue_device_licence(m, design2, "T2", "A") == 2
    publish(chain, "2.0.0", IMAGE_1_2, licence_id=2)
    device, tid = devices.keys[0], devices.ids[0]
    chain.reverts(
        dc.recordFirmwareUpdate(tid, "1.0.0", "2.0.0", IMAGE_1_2, IN_PERSON),
        device,
        "FirmwareNotPublished",
        1,
        "2.0.0",
        IMAGE_1_2,
    )
    # A device of licence 2 may take it.
    (t2_device,) = device_keys(1, "t2 device")
    mint(chain, chain.accounts.buyer, [t2_device], licence_id=2, design=design2)
    send_as(
        chain, dc.recordFirmwareUpdate(token_id(t2_device), "1.0.0", "2.0.0", IMAGE_1_2, IN_PERSON), t2_device
    )
    assert lifecycle(chain, token_id(t2_device))[2] == Web3.keccak(text="2.0.0")


def test_nonces_are_per_signer_across_actions(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    device, tid = devices.keys[0], devices.ids[0]
    publish(chain, "1.1.0", IMAGE_1_1)
    message = {"tokenId": tid, "fromVersion": "1.0.0", "toVersion": "1.1.0", "imageHash": IMAGE_1_1}
    ota_at_0 = sign(chain, device, "FirmwareUpdate", message)  # nonce 0
    chain.send(dc.recordFactoryReset(tid, sign(chain, device, "FactoryReset", {"tokenId": tid})), a.outsider)
    chain.reverts(
        dc.recordFirmwareUpdate(tid, "1.0.0", "1.1.0", IMAGE_1_1, ota_at_0),
        a.outsider,
        "InvalidSignature",
        device.address,
        1,
    )
    chain.send(
        dc.recordFirmwareUpdate(
            tid, "1.0.0", "1.1.0", IMAGE_1_1, sign(chain, device, "FirmwareUpdate", message)
        ),
        a.outsider,
    )
    assert dc.nonces(device.address).call() == 2
    assert dc.nonces(devices.keys[1].address).call() == 0


# ------------------------------------------------------------------ recordEndOfLife


def test_owner_decommissions_then_recycles(chain: Chain, devices: Devices) -> None:
    dc = chain.dc.functions
    owner, tid = devices.owner, devices.ids[0]
    receipt = chain.send(dc.recordEndOfLife(tid, DECOMMISSIONED, EVIDENCE, IN_PERSON), owner)
    assert event(chain, receipt, "EndOfLife") == {
        "tokenId": tid,
        "stage": DECOMMISSIONED,
        "evidenceHash": EVIDENCE,
        "attestedBy": owner.address,
        "role": OWNER,
    }
    assert dc.stageOf(tid).call() == DECOMMISSIONED
    assert lifecycle(chain, tid) == (DECOMMISSIONED, 0, ZERO32, 0)
    recycled = Web3.keccak(text="recycling record")
    receipt = chain.send(dc.recordEndOfLife(tid, RECYCLED, recycled, IN_PERSON), owner)
    assert event(chain, receipt, "EndOfLife") == {
        "tokenId": tid,
        "stage": RECYCLED,
        "evidenceHash": recycled,
        "attestedBy": owner.address,
        "role": OWNER,
    }
    assert dc.stageOf(tid).call() == RECYCLED
    assert dc.stageOf(devices.ids[1]).call() == ACTIVE
    # The certificate stays, with its batch and owner.
    assert dc.ownerOf(tid).call() == owner.address
    assert dc.batchOf(tid).call() == devices.batch_id


def test_owner_signed_decommission_then_disposal(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    owner, tid = devices.owner, devices.ids[0]
    message = {"tokenId": tid, "stage": DECOMMISSIONED, "evidenceHash": EVIDENCE}
    signed = sign(chain, owner, "EndOfLife", message)
    # Bound to the stage and evidence.
    chain.reverts(
        dc.recordEndOfLife(tid, DECOMMISSIONED, IMAGE_1_1, signed),
        a.outsider,
        "InvalidSignature",
        owner.address,
        0,
    )
    receipt = chain.send(dc.recordEndOfLife(tid, DECOMMISSIONED, EVIDENCE, signed), a.outsider)
    assert event(chain, receipt, "EndOfLife")["attestedBy"] == owner.address
    disposal = sign(chain, owner, "EndOfLife", {**message, "stage": DISPOSED})
    chain.reverts(
        dc.recordEndOfLife(tid, RECYCLED, EVIDENCE, disposal),
        a.outsider,
        "InvalidSignature",
        owner.address,
        1,
    )
    receipt = chain.send(dc.recordEndOfLife(tid, DISPOSED, EVIDENCE, disposal), a.outsider)
    assert event(chain, receipt, "EndOfLife") == {
        "tokenId": tid,
        "stage": DISPOSED,
        "evidenceHash": EVIDENCE,
        "attestedBy": owner.address,
        "role": OWNER,
    }
    assert lifecycle(chain, tid)[0] == DISPOSED
    assert dc.nonces(owner.address).call() == 2


def test_manage_grantee_records_end_of_life(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    recycler, tid = a.outsider, devices.ids[0]
    authorize(chain, devices, recycler.address, MANAGE)
    receipt = chain.send(dc.recordEndOfLife(tid, DECOMMISSIONED, EVIDENCE, IN_PERSON), recycler)
    assert event(chain, receipt, "EndOfLife") == {
        "tokenId": tid,
        "stage": DECOMMISSIONED,
        "evidenceHash": EVIDENCE,
        "attestedBy": recycler.address,
        "role": GRANTEE,
    }
    # The grant outlives decommissioning; a signed record by the grantee, relayed, works too.
    signed = sign(chain, recycler, "EndOfLife", {"tokenId": tid, "stage": RECYCLED, "evidenceHash": EVIDENCE})
    receipt = chain.send(dc.recordEndOfLife(tid, RECYCLED, EVIDENCE, signed), a.member1)
    assert event(chain, receipt, "EndOfLife")["role"] == GRANTEE
    assert event(chain, receipt, "EndOfLife")["attestedBy"] == recycler.address
    assert dc.stageOf(tid).call() == RECYCLED


def test_end_of_life_refused_for_non_owner_without_manage(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid = devices.ids[0]
    authorize(chain, devices, a.outsider.address, READ_DATA | OTA | FACTORY_RESET)
    fn = dc.recordEndOfLife(tid, DECOMMISSIONED, EVIDENCE, IN_PERSON)
    for who in (a.outsider, a.manufacturer, devices.keys[0], a.member1):
        chain.reverts(fn, who, "NotAttester", tid, who.address, OWNER)
    # MANAGE on another token does not count.
    authorize(chain, devices, a.member1.address, MANAGE, tid=devices.ids[1])
    chain.reverts(fn, a.member1, "NotAttester", tid, a.member1.address, OWNER)
    signed = sign(
        chain, a.outsider, "EndOfLife", {"tokenId": tid, "stage": DECOMMISSIONED, "evidenceHash": EVIDENCE}
    )
    chain.reverts(
        dc.recordEndOfLife(tid, DECOMMISSIONED, EVIDENCE, signed),
        a.member2,
        "NotAttester",
        tid,
        a.outsider.address,
        OWNER,
    )
    assert dc.stageOf(tid).call() == ACTIVE


def test_end_of_life_needs_evidence(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    tid = devices.ids[0]
    chain.reverts(
        dc.recordEndOfLife(tid, DECOMMISSIONED, ZERO32, IN_PERSON), devices.owner, "ZeroEvidenceHash"
    )
    authorize(chain, devices, a.outsider.address, MANAGE)
    chain.reverts(dc.recordEndOfLife(tid, DECOMMISSIONED, ZERO32, IN_PERSON), a.outsider, "ZeroEvidenceHash")
    decommission(chain, devices, tid)
    chain.reverts(dc.recordEndOfLife(tid, RECYCLED, ZERO32, IN_PERSON), devices.owner, "ZeroEvidenceHash")


def test_end_of_life_stage_order(chain: Chain, devices: Devices) -> None:
    dc = chain.dc.functions
    owner = devices.owner
    tid, tid2 = devices.ids[0], devices.ids[1]

    def refused(t: int, current: int, to: int) -> None:
        chain.reverts(
            dc.recordEndOfLife(t, to, EVIDENCE, IN_PERSON), owner, "InvalidStageChange", t, current, to
        )

    for to in (ACTIVE, RECYCLED, DISPOSED):
        refused(tid, ACTIVE, to)
    decommission(chain, devices, tid)
    for to in (ACTIVE, DECOMMISSIONED):
        refused(tid, DECOMMISSIONED, to)
    chain.send(dc.recordEndOfLife(tid, RECYCLED, EVIDENCE, IN_PERSON), owner)
    for to in (ACTIVE, DECOMMISSIONED, RECYCLED, DISPOSED):
        refused(tid, RECYCLED, to)
    decommission(chain, devices, tid2)
    chain.send(dc.recordEndOfLife(tid2, DISPOSED, EVIDENCE, IN_PERSON), owner)
    for to in (ACTIVE, DECOMMISSIONED, RECYCLED, DISPOSED):
        refused(tid2, DISPOSED, to)
    assert (dc.stageOf(tid).call(), dc.stageOf(tid2).call()) == (RECYCLED, DISPOSED)


def test_retired_device_accepts_nothing_but_revocation(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    owner, device, tid = devices.owner, devices.keys[0], devices.ids[0]
    publish(chain, "1.1.0", IMAGE_1_1)
    authorize(chain, devices, a.manufacturer.address, FACTORY_RESET)
    authorize(chain, devices, a.outsider.address, READ_DATA)
    expires = chain.now() + 86_400
    decommission(chain, devices, tid)
    retired = ("DeviceRetired", tid, DECOMMISSIONED)

    chain.reverts(dc.transferFrom(owner.address, a.member1.address, tid), owner, *retired)
    chain.reverts(dc.safeTransferFrom(owner.address, a.member1.address, tid), owner, *retired)
    chain.reverts(dc.authorize(tid, a.member1.address, READ_DATA, expires, IN_PERSON), owner, *retired)
    chain.reverts(dc.recordFactoryReset(tid, IN_PERSON), device, *retired)
    chain.reverts(dc.recordFactoryReset(tid, IN_PERSON), a.manufacturer, *retired)
    chain.reverts(
        dc.recordFactoryReset(tid, sign(chain, device, "FactoryReset", {"tokenId": tid})),
        a.outsider,
        *retired,
    )
    chain.reverts(dc.recordFirmwareUpdate(tid, "1.0.0", "1.1.0", IMAGE_1_1, IN_PERSON), device, *retired)
    assert lifecycle(chain, tid) == (DECOMMISSIONED, 0, ZERO32, 0)
    assert dc.ownerOf(tid).call() == owner.address

    # Taking access away is still allowed.
    receipt = chain.send(dc.revokeAuthorization(tid, a.outsider.address, IN_PERSON), owner)
    assert event(chain, receipt, "AuthorizationRevoked")["grantee"] == a.outsider.address
    assert grant_of(chain, tid, a.outsider.address) == (0, 0, 0)
    signed = sign(chain, owner, "RevokeAuthorization", {"tokenId": tid, "grantee": a.manufacturer.address})
    chain.send(dc.revokeAuthorization(tid, a.manufacturer.address, signed), a.member2)
    assert grant_of(chain, tid, a.manufacturer.address) == (0, 0, 0)

    chain.send(dc.recordEndOfLife(tid, RECYCLED, EVIDENCE, IN_PERSON), owner)
    chain.reverts(
        dc.transferFrom(owner.address, a.member1.address, tid), owner, "DeviceRetired", tid, RECYCLED
    )
    # Other devices are unaffected.
    chain.send(dc.transferFrom(owner.address, a.member1.address, devices.ids[1]), owner)


# ------------------------------------------------------------------ nonexistent tokens


def test_every_action_on_a_nonexistent_token_reverts(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    (ghost,) = device_keys(1, "never minted")
    tid = token_id(ghost)
    expires = chain.now() + 86_400
    publish(chain, "1.1.0", IMAGE_1_1)
    for fn, who in (
        (dc.authorize(tid, a.outsider.address, READ_DATA, expires, IN_PERSON), devices.owner),
        (dc.revokeAuthorization(tid, a.outsider.address, IN_PERSON), devices.owner),
        (dc.recordFactoryReset(tid, IN_PERSON), ghost),
        (dc.recordFactoryReset(tid, sign(chain, ghost, "FactoryReset", {"tokenId": tid})), a.outsider),
        (dc.recordFirmwareUpdate(tid, "1.0.0", "1.1.0", IMAGE_1_1, IN_PERSON), ghost),
        (dc.recordEndOfLife(tid, DECOMMISSIONED, EVIDENCE, IN_PERSON), devices.owner),
        (dc.recordEndOfLife(tid, DECOMMISSIONED, EVIDENCE, IN_PERSON), a.outsider),
        (dc.transferFrom(devices.owner.address, a.outsider.address, tid), devices.owner),
        (dc.lifecycle(tid), a.outsider),
        (dc.lifecycle(0), a.outsider),
    ):
        chain.reverts(fn, who, "TokenDoesNotExist")
    assert dc.stageOf(tid).call() == ACTIVE
    assert grant_of(chain, tid, a.outsider.address) == (0, 0, 0)
    assert dc.hasPermission(tid, a.outsider.address, READ_DATA).call() is False
    assert dc.nonces(ghost.address).call() == 0
    # Minting it later yields a clean lifecycle.
    mint(chain, a.buyer, [ghost], root=Web3.keccak(text="ghost batch"))
    assert lifecycle(chain, tid) == (ACTIVE, 0, ZERO32, 0)


def test_lifecycle_fields_share_the_slot_without_interfering(chain: Chain, devices: Devices) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    owner, device, tid = devices.owner, devices.keys[0], devices.ids[0]
    publish(chain, "1.1.0", IMAGE_1_1)
    for _ in range(3):
        send_as(chain, dc.recordFactoryReset(tid, IN_PERSON), device)
    send_as(chain, dc.recordFirmwareUpdate(tid, "1.0.0", "1.1.0", IMAGE_1_1, IN_PERSON), device)
    chain.send(dc.transferFrom(owner.address, a.member1.address, tid), owner)
    chain.send(dc.recordEndOfLife(tid, DECOMMISSIONED, EVIDENCE, IN_PERSON), a.member1)
    assert lifecycle(chain, tid) == (DECOMMISSIONED, 3, Web3.keccak(text="1.1.0"), 1)
    assert dc.ownerOf(tid).call() == a.member1.address
    assert dc.batchOf(tid).call() == devices.batch_id
    assert tuple(dc.certificate(tid).call()) == (a.member1.address, devices.batch_id, 1, ROOT)
    assert dc.tokenURI(tid).call() == URI + device.address.lower()
    assert dc.balanceOf(a.member1.address).call() == 1
    for other in devices.ids[1:]:
        assert lifecycle(chain, other) == (ACTIVE, 0, ZERO32, 0)
