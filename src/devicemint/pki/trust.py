"""Checking a device's chain of trust: path validation by `cryptography`'s RFC 5280 verifier,
then revocation, either from CRLs (offline bundles) or from the authority's own records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

from devicemint.devices.proof import address_of_public_key, checksum_address
from devicemint.pki.profiles import caip10, imei_urn


@dataclass(frozen=True)
class TrustPath:
    """One device's certificate and the two CA certificates above it."""

    device: x509.Certificate
    manufacturer_root: x509.Certificate
    foundation_root: x509.Certificate

    def links(self) -> tuple[tuple[x509.Certificate, x509.Certificate], ...]:
        """(certificate, its issuer) for each certificate a CRL may withdraw."""
        return ((self.manufacturer_root, self.foundation_root), (self.device, self.manufacturer_root))


def describe(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


def path_problems(path: TrustPath, *, at: datetime) -> list[str]:
    """Why the path does not verify at `at` (signatures, validity, CA constraints, key
    identifiers, the foundation root as the only trust anchor); empty when it does."""
    verifier = (
        PolicyBuilder()
        .store(Store([path.foundation_root]))
        .time(at)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.webpki_defaults_ee()
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(path.device, [path.manufacturer_root])
    except VerificationError as exc:
        return [f"the X.509 chain does not verify: {exc}"]
    return []


def crl_problems(
    path: TrustPath, crls: Sequence[x509.CertificateRevocationList], *, at: datetime
) -> list[str]:
    """Revocation as the CRLs say: each CA must have a current CRL, signed by it, and neither the
    manufacturer root nor the device may be on them."""
    problems = []
    for certificate, issuer in path.links():
        key = issuer.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            problems.append(f"{describe(issuer)} is not an ECDSA CA, as every CA of this network is")
            continue
        signed = [c for c in crls if c.issuer == issuer.subject and c.is_signature_valid(key)]
        if not signed:
            problems.append(f"no CRL signed by {describe(issuer)}, so its revocations cannot be checked")
            continue
        crl = max(signed, key=lambda c: c.last_update_utc)
        if crl.next_update_utc is not None and crl.next_update_utc < at:
            problems.append(
                f"the CRL of {describe(issuer)} lapsed at {crl.next_update_utc:%Y-%m-%d %H:%M} UTC; "
                "fetch a current one"
            )
        entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        if entry is not None:
            problems.append(revoked_message(certificate, issuer, entry.revocation_date_utc, _reason(entry)))
    return problems


def revoked_message(
    certificate: x509.Certificate, issuer: x509.Certificate, when: datetime, reason: str
) -> str:
    return f"{describe(certificate)} was revoked by {describe(issuer)} on {when:%Y-%m-%d} ({reason})"


def _reason(entry: x509.RevokedCertificate) -> str:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        return "unspecified"


def binding_problems(
    device: x509.Certificate, *, serial_number: str, imei: str, address: str, chain_id: int
) -> list[str]:
    """Whether the certificate is this device's: its key is the one behind the 0x address, its
    subject serialNumber the serial, its subjectAltName the IMEI and the CAIP-10 account id."""
    problems = []
    key = device.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256K1):
        return ["the device certificate does not certify a secp256k1 key"]
    point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    certified = checksum_address(address_of_public_key(point))
    if certified.lower() != address.lower():
        problems.append(f"the device certificate certifies the key of {certified}, not {address}")
    serials = [a.value for a in device.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)]
    if serials != [serial_number]:
        problems.append(f"the device certificate names serial {serials}, not {serial_number!r}")
    try:
        names = device.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = set(names.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        uris = set()
    for wanted in (imei_urn(imei), caip10(chain_id, checksum_address(bytes.fromhex(address[2:])))):
        if wanted not in uris:
            problems.append(f"the device certificate's subjectAltName lacks {wanted}")
    return problems
