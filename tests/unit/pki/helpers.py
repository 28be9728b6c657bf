"""Small builders for the PKI tests: an in-memory "HSM" signer and a three-level chain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import coincurve
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from devicemint.devices.proof import address_of_private_key
from devicemint.pki.profiles import CertificateAuthority, DeviceIssuer, foundation_root, manufacturer_root
from devicemint.pki.trust import TrustPath

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PROVISIONED = date(2025, 2, 3)
# RFC 7254's own example IMEI (Luhn-valid).
IMEI = "490154203237518"
IMEI_URN = "urn:imei:49015420-323751-8"
SERIAL = "SN-000042"
CHAIN_ID = 31337


class MemoryHsm:
    """A signer that only signs: public_key() and sign(), nothing else, counting signatures.

    Stands in for an HSM or a cloud KMS to prove the CA code never needs the key itself.
    """

    def __init__(self, curve: ec.EllipticCurve | None = None) -> None:
        self.__key = ec.generate_private_key(curve or ec.SECP256R1())
        self.calls: list[bytes] = []

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.__key.public_key()

    def sign(self, data: bytes) -> bytes:
        self.calls.append(data)
        return self.__key.sign(data, ec.ECDSA(hashes.SHA256()))


@dataclass(frozen=True)
class Device:
    key: coincurve.PrivateKey
    address: str

    @classmethod
    def new(cls) -> Device:
        key = coincurve.PrivateKey()
        return cls(key, address_of_private_key(key.secret))

    @property
    def public_key(self) -> bytes:
        return self.key.public_key.format(compressed=False)


@dataclass(frozen=True)
class Chain:
    """A foundation root, one manufacturer root under it, and one device certificate."""

    foundation: CertificateAuthority
    manufacturer: CertificateAuthority
    issuer: DeviceIssuer
    device: Device
    device_cert: x509.Certificate

    @property
    def path(self) -> TrustPath:
        return TrustPath(self.device_cert, self.manufacturer.certificate, self.foundation.certificate)


def make_foundation(
    signer: MemoryHsm | None = None, *, organisation: str = "Test Foundation"
) -> CertificateAuthority:
    signer = signer or MemoryHsm()
    return CertificateAuthority(foundation_root(signer, organisation=organisation, now=NOW), signer)


def make_manufacturer(
    foundation: CertificateAuthority,
    signer: MemoryHsm | None = None,
    *,
    name: str = "Acme Devices",
    licence_id: int = 7,
) -> CertificateAuthority:
    signer = signer or MemoryHsm()
    certificate = manufacturer_root(
        foundation, signer.public_key(), name=name, licence_id=licence_id, now=NOW
    )
    return CertificateAuthority(certificate, signer)


def issue_device(
    issuer: DeviceIssuer,
    device: Device,
    *,
    serial_number: str = SERIAL,
    imei: str = IMEI,
    address: str | None = None,
    provisioning_date: date = PROVISIONED,
) -> x509.Certificate:
    return issuer.issue(
        serial_number=serial_number,
        imei=imei,
        address=device.address if address is None else address,
        public_key=device.public_key,
        provisioning_date=provisioning_date,
    )


def make_chain(*, chain_id: int = CHAIN_ID) -> Chain:
    foundation = make_foundation()
    manufacturer = make_manufacturer(foundation)
    issuer = DeviceIssuer(manufacturer, chain_id=chain_id)
    device = Device.new()
    return Chain(foundation, manufacturer, issuer, device, issue_device(issuer, device))


def extension(certificate: x509.Certificate | x509.CertificateRevocationList, kind: type) -> x509.Extension:
    return certificate.extensions.get_extension_for_class(kind)
