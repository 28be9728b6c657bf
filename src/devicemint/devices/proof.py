"""The device's proof of possession: an EIP-712 signature by the device key.

At provisioning the device signs, with the private key that never leaves it,
the static facts of its certificate. Anyone holding the certificate document
can recompute the digest and recover the signer, which must be the device's
own address, i.e. the token id. This proves that the factory minted a
certificate for a key that exists in a real device, and that the device agreed
with the recorded serial, IMEI, test results and firmware.

Typed data (EIP-712)::

    EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)
      name = "devicemint", version = "1", chainId, verifyingContract = DeviceCertificate

    DeviceProof(address device,string serialNumber,string imei,uint256 deviceLicenceId,
                string manufacturingDate,string ictResult,bytes32 ictReportSha256,
                string mechanicalResult,bytes32 mechanicalReportSha256,bool qaPassed,
                string qaInspectionDate,string qaInspector,string firmwareVersion,
                bytes32 firmwareSha256,string provisioningDate)

Dates are the ISO ``YYYY-MM-DD`` strings of the factory file.

Why there is no nonce and no deadline, although DESIGN asks for both on
signatures: those protect an *authorisation* from being replayed. This proof
authorises nothing repeatable. It is single-use by construction: it names the
device address, the device address is the token id, and a token id can be
minted exactly once, so a replayed proof can only ever describe the one
certificate it was made for. The domain binds it to one chain and one
DeviceCertificate contract, so it cannot be replayed on another deployment
either. A deadline would also be harmful: the proof is verified again, years
later, by anyone checking the certificate.

Hot path: a factory batch recovers one signature per device, so the digest is
computed by hand (a few keccaks over fixed-layout words) rather than through
``eth_account.messages.encode_typed_data``, which is ~50x slower; the unit
tests prove both agree.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import coincurve

from devicemint.chain import eip712
from devicemint.devices.merkle import keccak256
from devicemint.errors import DevicemintError

__all__ = [
    "DEVICE_PROOF_TYPE",
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "DeviceProofFields",
    "ProofDomain",
    "SignatureError",
    "address_of_private_key",
    "checksum_address",
    "is_checksum_address",
    "proof_digest",
    "recover_signer",
    "recover_public_key",
    "recover_signer_bytes",
    "sign_proof",
    "typed_data",
]

DOMAIN_NAME = "devicemint"
DOMAIN_VERSION = "1"

EIP712_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
DEVICE_PROOF_TYPE = (
    "DeviceProof(address device,string serialNumber,string imei,uint256 deviceLicenceId,"
    "string manufacturingDate,string ictResult,bytes32 ictReportSha256,string mechanicalResult,"
    "bytes32 mechanicalReportSha256,bool qaPassed,string qaInspectionDate,string qaInspector,"
    "string firmwareVersion,bytes32 firmwareSha256,string provisioningDate)"
)

_DOMAIN_TYPEHASH = keccak256(EIP712_DOMAIN_TYPE.encode())
_PROOF_TYPEHASH = keccak256(DEVICE_PROOF_TYPE.encode())

# secp256k1 group order; signatures with s above half of it are the malleable twin.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2
_UINT256_LIMIT = 1 << 256
_ZERO12 = bytes(12)
_TRUE = (1).to_bytes(32, "big")
_FALSE = bytes(32)


class SignatureError(DevicemintError, ValueError):
    """A signature is malformed or cannot be recovered."""


# --------------------------------------------------------------------------- #
# Addresses
# --------------------------------------------------------------------------- #

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_NIBBLE_HIGH = bytes.maketrans(b"0123456789abcdef", b"\x00" * 8 + b"\x20" * 8)
_IS_LETTER = bytes.maketrans(b"0123456789abcdef", b"\x00" * 10 + b"\x20" * 6)


def checksum_address(raw: bytes) -> str:
    """EIP-55 checksummed ``0x`` form of a 20-byte address."""
    if len(raw) != 20:
        raise ValueError(f"an address is 20 bytes, got {len(raw)}")
    lower = raw.hex().encode("ascii")
    nibbles = keccak256(lower)[:20].hex().encode("ascii")
    # Upper-case a letter where the digest nibble is >= 8: flip bit 0x20 of exactly those
    # characters, with both masks built by bytes.translate (C speed; no per-character loop).
    mask = int.from_bytes(nibbles.translate(_NIBBLE_HIGH)) & int.from_bytes(lower.translate(_IS_LETTER))
    return "0x" + (int.from_bytes(lower) ^ mask).to_bytes(40).decode("ascii")


def is_checksum_address(text: str) -> bool:
    """True iff ``text`` is a 0x address in its exact EIP-55 form."""
    if len(text) != 42 or text[:2] != "0x" or not _HEX_DIGITS.issuperset(text[2:]):
        return False
    return checksum_address(bytes.fromhex(text[2:])) == text


def _address_raw(address: str | bytes, what: str = "address") -> bytes:
    if isinstance(address, bytes | bytearray):
        if len(address) != 20:
            raise ValueError(f"{what} must be 20 bytes, got {len(address)}")
        return bytes(address)
    text = address[2:] if address[:2] in ("0x", "0X") else address
    if len(text) != 40 or not _HEX_DIGITS.issuperset(text):
        raise ValueError(f"{what} must be 0x followed by 40 hex digits, got {address!r}")
    return bytes.fromhex(text)


def address_of_private_key(private_key: bytes) -> str:
    """Checksummed address of a 32-byte secp256k1 private key."""
    public = coincurve.PrivateKey(bytes(private_key)).public_key.format(compressed=False)
    return checksum_address(keccak256(public[1:])[12:])


# --------------------------------------------------------------------------- #
# Domain and message
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class ProofDomain:
    """EIP-712 domain of one DeviceCertificate deployment; the separator is computed once."""

    chain_id: int
    verifying_contract: str
    separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.chain_id, bool) or not isinstance(self.chain_id, int) or self.chain_id <= 0:
            raise ValueError(f"chain id must be a positive integer, got {self.chain_id!r}")
        raw = _address_raw(self.verifying_contract, "verifying contract")
        object.__setattr__(self, "verifying_contract", checksum_address(raw))
        separator = keccak256(
            _DOMAIN_TYPEHASH
            + keccak256(DOMAIN_NAME.encode())
            + keccak256(DOMAIN_VERSION.encode())
            + self.chain_id.to_bytes(32, "big")
            + _ZERO12
            + raw
        )
        object.__setattr__(self, "separator", separator)

    def as_eip712(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


@dataclass(frozen=True, slots=True)
class DeviceProofFields:
    """The signed facts, exactly as they appear in the factory file (dates as ISO strings)."""

    device: str
    serial_number: str
    imei: str
    device_licence_id: int
    manufacturing_date: str
    ict_result: str
    ict_report_sha256: bytes
    mechanical_result: str
    mechanical_report_sha256: bytes
    qa_passed: bool
    qa_inspection_date: str
    qa_inspector: str
    firmware_version: str
    firmware_sha256: bytes
    provisioning_date: str

    def as_eip712_message(self) -> dict[str, Any]:
        """The ``message`` object of the typed data, as a wallet or eth_account takes it."""
        return {
            "device": self.device,
            "serialNumber": self.serial_number,
            "imei": self.imei,
            "deviceLicenceId": self.device_licence_id,
            "manufacturingDate": self.manufacturing_date,
            "ictResult": self.ict_result,
            "ictReportSha256": bytes(self.ict_report_sha256),
            "mechanicalResult": self.mechanical_result,
            "mechanicalReportSha256": bytes(self.mechanical_report_sha256),
            "qaPassed": self.qa_passed,
            "qaInspectionDate": self.qa_inspection_date,
            "qaInspector": self.qa_inspector,
            "firmwareVersion": self.firmware_version,
            "firmwareSha256": bytes(self.firmware_sha256),
            "provisioningDate": self.provisioning_date,
        }


_PROOF_TYPES = [
    {"name": "device", "type": "address"},
    {"name": "serialNumber", "type": "string"},
    {"name": "imei", "type": "string"},
    {"name": "deviceLicenceId", "type": "uint256"},
    {"name": "manufacturingDate", "type": "string"},
    {"name": "ictResult", "type": "string"},
    {"name": "ictReportSha256", "type": "bytes32"},
    {"name": "mechanicalResult", "type": "string"},
    {"name": "mechanicalReportSha256", "type": "bytes32"},
    {"name": "qaPassed", "type": "bool"},
    {"name": "qaInspectionDate", "type": "string"},
    {"name": "qaInspector", "type": "string"},
    {"name": "firmwareVersion", "type": "string"},
    {"name": "firmwareSha256", "type": "bytes32"},
    {"name": "provisioningDate", "type": "string"},
]


def typed_data(domain: ProofDomain, fields: DeviceProofFields) -> dict[str, Any]:
    """The full EIP-712 structure (for wallets, device SDKs, eth_account, and our tests)."""
    return eip712.typed_data(
        domain=domain.as_eip712(),
        primary_type="DeviceProof",
        fields=_PROOF_TYPES,
        message=fields.as_eip712_message(),
    )


# Dates, results, inspector and firmware version repeat across a batch; serial and IMEI do not.
@functools.lru_cache(maxsize=4096)
def _hash_repeated(text: str) -> bytes:
    return keccak256(text.encode("utf-8"))


def _bytes32(value: bytes, name: str) -> bytes:
    if len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes, got {len(value)}")
    return bytes(value)


def struct_hash(fields: DeviceProofFields) -> bytes:
    """EIP-712 ``hashStruct(DeviceProof)``."""
    licence = fields.device_licence_id
    if isinstance(licence, bool) or not isinstance(licence, int) or not 0 <= licence < _UINT256_LIMIT:
        raise ValueError(f"device licence id must be a uint256, got {licence!r}")
    h = _hash_repeated
    return keccak256(
        b"".join(
            (
                _PROOF_TYPEHASH,
                _ZERO12,
                _address_raw(fields.device, "device address"),
                keccak256(fields.serial_number.encode("utf-8")),
                keccak256(fields.imei.encode("utf-8")),
                licence.to_bytes(32, "big"),
                h(fields.manufacturing_date),
                h(fields.ict_result),
                _bytes32(fields.ict_report_sha256, "ICT report sha256"),
                h(fields.mechanical_result),
                _bytes32(fields.mechanical_report_sha256, "mechanical report sha256"),
                _TRUE if fields.qa_passed else _FALSE,
                h(fields.qa_inspection_date),
                h(fields.qa_inspector),
                h(fields.firmware_version),
                _bytes32(fields.firmware_sha256, "firmware sha256"),
                h(fields.provisioning_date),
            )
        )
    )


def proof_digest(domain: ProofDomain, fields: DeviceProofFields) -> bytes:
    """The 32-byte EIP-712 digest the device signs: keccak(0x1901 || domainSeparator || hashStruct)."""
    return keccak256(b"\x19\x01" + domain.separator + struct_hash(fields))


# --------------------------------------------------------------------------- #
# Sign and recover
# --------------------------------------------------------------------------- #


def sign_proof(domain: ProofDomain, fields: DeviceProofFields, private_key: bytes) -> bytes:
    """Sign as the device: 65 bytes ``r || s || v`` with ``v`` in {27, 28} and low ``s``."""
    if len(private_key) != 32:
        raise ValueError("a device private key is 32 bytes")
    key = coincurve.PrivateKey(bytes(private_key))
    sig = key.sign_recoverable(proof_digest(domain, fields), hasher=None)
    return sig[:64] + bytes((sig[64] + 27,))


def recover_public_key(domain: ProofDomain, fields: DeviceProofFields, signature: bytes | str) -> bytes:
    """The signer's secp256k1 public key, 65 bytes uncompressed (``04 || x || y``).

    A factory row carries only the device's address; its proof of possession yields the key
    itself, which the device's X.509 certificate certifies.
    """
    return _recover(proof_digest(domain, fields), signature)


def address_of_public_key(public_key: bytes) -> bytes:
    """The 20 raw address bytes of a 65-byte uncompressed public key."""
    return keccak256(public_key[1:])[12:]


def recover_signer_bytes(domain: ProofDomain, fields: DeviceProofFields, signature: bytes | str) -> bytes:
    """The 20 raw bytes of the signer's address (the fast form for batch validation)."""
    return address_of_public_key(recover_public_key(domain, fields, signature))


def recover_signer(domain: ProofDomain, fields: DeviceProofFields, signature: bytes | str) -> str:
    """Checksummed address of whoever signed ``fields`` under ``domain``.

    ``signature`` is 65 bytes, or their hex (with or without 0x) as stored in a
    certificate document. Raises :class:`SignatureError` if it is not 65 bytes, has a
    ``v`` other than 27/28 (or 0/1), an ``r``/``s`` out of range, a high
    ``s`` (the malleable twin; EIP-2 and OpenZeppelin's ECDSA refuse it too),
    or does not correspond to any public key.
    """
    return checksum_address(recover_signer_bytes(domain, fields, signature))


def _signature_bytes(signature: bytes | str) -> bytes:
    if not isinstance(signature, str):
        return bytes(signature)
    text = signature[2:] if signature[:2] in ("0x", "0X") else signature
    if not _HEX_DIGITS.issuperset(text) or len(text) % 2:
        raise SignatureError("a signature is 0x followed by 130 hex digits (65 bytes r || s || v)")
    return bytes.fromhex(text)


def _recover(digest: bytes, signature: bytes | str) -> bytes:
    signature = _signature_bytes(signature)
    if len(signature) != 65:
        raise SignatureError(f"a signature is 65 bytes (r || s || v), got {len(signature)}")
    v = signature[64]
    if v in (27, 28):
        recid = v - 27
    elif v in (0, 1):
        recid = v
    else:
        raise SignatureError(f"signature v is {v}, expected 27 or 28")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < r < SECP256K1_N:
        raise SignatureError("signature r is out of range (0 < r < n)")
    if not 0 < s <= _HALF_N:
        if s == 0 or s >= SECP256K1_N:
            raise SignatureError("signature s is out of range (0 < s < n)")
        raise SignatureError(
            "signature s is in the upper half of the curve order; use the low-s form (EIP-2)"
        )
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            bytes(signature[:64]) + bytes((recid,)), digest, hasher=None
        )
    except ValueError:
        raise SignatureError("signature does not correspond to any public key") from None
    return public.format(compressed=False)
