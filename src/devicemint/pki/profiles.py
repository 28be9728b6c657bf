"""The three certificate profiles of the chain of trust, and the CRLs that withdraw them.

    foundation root CA (self-signed, P-256)
      -> manufacturer root CA (pathlen 0; names the manufacturer and its licence id;
         its SHA-256 fingerprint is what the on-chain manufacturer licence records)
           -> device certificate (the device's own secp256k1 key, so it matches the token's
              0x address; subject serialNumber = device serial; SAN urn:imei (RFC 7254) and
              the CAIP-10 account id; valid from the provisioning date)

Every certificate carries subject and authority key identifiers, so `openssl verify` and any
RFC 5280 path builder link them without guessing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devicemint.devices.proof import address_of_public_key, checksum_address
from devicemint.pki.errors import PkiError
from devicemint.pki.signing import Signer, issuer_key

FOUNDATION_ROOT_VALIDITY = timedelta(days=25 * 365)
MANUFACTURER_ROOT_VALIDITY = timedelta(days=20 * 365)
# RFC 5280 section 4.1.2.5: 99991231235959Z means "no well-defined expiration date"; IEEE
# 802.1AR device identities use it too. A device's identity lasts as long as the device.
DEVICE_NOT_AFTER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
# How long a CRL is current; `devicemint pki crl` writes the next one before it lapses.
CRL_VALIDITY = timedelta(days=7)

_CA_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_DEVICE_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


class RevocationReason(StrEnum):
    """RFC 5280 reason codes a revocation here may give."""

    KEY_COMPROMISE = "key_compromise"  # a cloned or extracted device key
    CA_COMPROMISE = "ca_compromise"
    AFFILIATION_CHANGED = "affiliation_changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation_of_operation"  # stolen, destroyed, withdrawn from service
    PRIVILEGE_WITHDRAWN = "privilege_withdrawn"  # a licence revoked for cause
    UNSPECIFIED = "unspecified"

    @property
    def flag(self) -> x509.ReasonFlags:
        return x509.ReasonFlags[self.value]


def fingerprint(certificate: x509.Certificate) -> bytes:
    """SHA-256 of the DER certificate: what the chain records, what `openssl x509 -fingerprint
    -sha256` prints."""
    return certificate.fingerprint(hashes.SHA256())


def imei_urn(imei: str) -> str:
    """RFC 7254 section 4: ``urn:imei:`` TAC (8 digits) ``-`` SNR (6) ``-`` check digit."""
    if len(imei) != 15 or not (imei.isascii() and imei.isdigit()):
        raise PkiError(f"an IMEI is 15 digits, got {imei!r}")
    return f"urn:imei:{imei[:8]}-{imei[8:14]}-{imei[14]}"


def caip10(chain_id: int, address: str) -> str:
    """The CAIP-10 account id of an EVM address: ``eip155:<chain id>:<address>``."""
    return f"eip155:{chain_id}:{address}"


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate together with the signer of its key."""

    certificate: x509.Certificate
    signer: Signer
    _key: ec.EllipticCurvePrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.signer.public_key() != self.certificate.public_key():
            raise PkiError(
                f"the key offered for {self.certificate.subject.rfc4514_string()} is not the key that "
                "certificate certifies"
            )
        object.__setattr__(self, "_key", issuer_key(self.signer))

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return (
            builder.issuer_name(self.certificate.subject)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.signer.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )

    def crl(
        self, revoked: Iterable[tuple[int, datetime, RevocationReason]], *, number: int, now: datetime
    ) -> x509.CertificateRevocationList:
        """A CRL listing `revoked` (serial, when, why), current for CRL_VALIDITY from `now`."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now)
            .next_update(now + CRL_VALIDITY)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.signer.public_key()), critical=False
            )
        )
        for serial, when, reason in revoked:
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
            if reason is not RevocationReason.UNSPECIFIED:
                entry = entry.add_extension(x509.CRLReason(reason.flag), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self._key, hashes.SHA256())


def _ca_builder(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    *,
    path_length: int,
    now: datetime,
    valid: timedelta,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + valid)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def foundation_root(signer: Signer, *, organisation: str, now: datetime) -> x509.Certificate:
    """The self-signed trust anchor. Path length 1: manufacturer roots, then devices only."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} Root CA"),
        ]
    )
    builder = _ca_builder(
        subject, signer.public_key(), path_length=1, now=now, valid=FOUNDATION_ROOT_VALIDITY
    ).issuer_name(subject)
    return builder.sign(issuer_key(signer), hashes.SHA256())


def manufacturer_subject(name: str, licence_id: int) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"Manufacturer Licence {licence_id}"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Manufacturer Root CA"),
        ]
    )


def manufacturer_root(
    foundation: CertificateAuthority,
    public_key: ec.EllipticCurvePublicKey,
    *,
    name: str,
    licence_id: int,
    now: datetime,
) -> x509.Certificate:
    """A manufacturer's CA, path length 0: it certifies devices, never another CA."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise PkiError("a manufacturer root key is an ECDSA P-256 key")
    builder = _ca_builder(
        manufacturer_subject(name, licence_id),
        public_key,
        path_length=0,
        now=now,
        valid=MANUFACTURER_ROOT_VALIDITY,
    )
    return foundation.sign(builder)


def device_public_key(uncompressed: bytes) -> ec.EllipticCurvePublicKey:
    """A device's secp256k1 key from its 65 uncompressed bytes (recovered from its proof)."""
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), uncompressed)
    except ValueError as exc:
        raise PkiError("the device public key is not a point on secp256k1") from exc


class DeviceIssuer:
    """Issues device certificates under one manufacturer root (on the minting hot path, so the
    parts every certificate shares are built once)."""

    def __init__(self, manufacturer: CertificateAuthority, *, chain_id: int) -> None:
        self.manufacturer = manufacturer
        self.chain_id = chain_id
        self._organisation = manufacturer.certificate.subject.get_attributes_for_oid(
            NameOID.ORGANIZATION_NAME
        )[0]

    def issue(
        self, *, serial_number: str, imei: str, address: str, public_key: bytes, provisioning_date: date
    ) -> x509.Certificate:
        key = device_public_key(public_key)
        if address_of_public_key(public_key) != bytes.fromhex(address[2:]):
            raise PkiError(f"the public key offered for device {address} is another device's key")
        address = checksum_address(bytes.fromhex(address[2:]))
        subject = x509.Name(
            [
                self._organisation,
                x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number),
                x509.NameAttribute(NameOID.COMMON_NAME, address),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .public_key(key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.combine(provisioning_date, time(), tzinfo=UTC))
            .not_valid_after(DEVICE_NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_DEVICE_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.UniformResourceIdentifier(imei_urn(imei)),
                        x509.UniformResourceIdentifier(caip10(self.chain_id, address)),
                    ]
                ),
                critical=False,
            )
        )
        return self.manufacturer.sign(builder)
