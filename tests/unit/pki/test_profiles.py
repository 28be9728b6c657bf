"""The three certificate profiles, the CRL, and the small naming helpers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from devicemint.devices.proof import address_of_public_key, checksum_address
from devicemint.pki.errors import PkiError
from devicemint.pki.profiles import (
    FOUNDATION_ROOT_VALIDITY,
    MANUFACTURER_ROOT_VALIDITY,
    CertificateAuthority,
    RevocationReason,
    caip10,
    device_public_key,
    fingerprint,
    imei_urn,
    manufacturer_root,
)

from .helpers import (
    IMEI,
    IMEI_URN,
    NOW,
    PROVISIONED,
    SERIAL,
    Chain,
    Device,
    MemoryHsm,
    extension,
    issue_device,
    make_chain,
    make_foundation,
    make_manufacturer,
)


def names(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attribute.value) for attribute in name.get_attributes_for_oid(oid)]


@pytest.fixture(scope="module")
def chain() -> Chain:
    return make_chain()


# -- foundation root ---------------------------------------------------------------------------


def test_foundation_root_is_self_signed(chain: Chain) -> None:
    root = chain.foundation.certificate
    assert root.issuer == root.subject
    root.verify_directly_issued_by(root)
    assert names(root.subject, NameOID.ORGANIZATION_NAME) == ["Test Foundation"]
    assert names(root.subject, NameOID.COMMON_NAME) == ["Test Foundation Root CA"]


def test_foundation_root_is_a_ca_for_one_level_below_manufacturers(chain: Chain) -> None:
    constraints = extension(chain.foundation.certificate, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is True
    assert constraints.value.path_length == 1


@pytest.mark.parametrize("which", ["foundation", "manufacturer"])
def test_ca_key_usage_is_cert_and_crl_signing_only_and_critical(chain: Chain, which: str) -> None:
    certificate = getattr(chain, which).certificate
    usage = extension(certificate, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    assert not usage.value.key_encipherment


@pytest.mark.parametrize("which", ["foundation", "manufacturer"])
def test_ca_carries_subject_key_identifier_of_its_key(chain: Chain, which: str) -> None:
    certificate = getattr(chain, which).certificate
    ski = extension(certificate, x509.SubjectKeyIdentifier)
    assert not ski.critical
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())


def test_foundation_root_validity(chain: Chain) -> None:
    root = chain.foundation.certificate
    assert root.not_valid_before_utc == NOW
    assert root.not_valid_after_utc - root.not_valid_before_utc == FOUNDATION_ROOT_VALIDITY
    assert isinstance(root.public_key().curve, ec.SECP256R1)


# -- manufacturer root -------------------------------------------------------------------------


def test_manufacturer_root_names_the_manufacturer_and_its_licence(chain: Chain) -> None:
    subject = chain.manufacturer.certificate.subject
    assert names(subject, NameOID.ORGANIZATION_NAME) == ["Acme Devices"]
    assert names(subject, NameOID.ORGANIZATIONAL_UNIT_NAME) == ["Manufacturer Licence 7"]
    assert names(subject, NameOID.COMMON_NAME) == ["Acme Devices Manufacturer Root CA"]


def test_manufacturer_root_licence_number_is_in_the_ou() -> None:
    other = make_manufacturer(make_foundation(), licence_id=1234)
    assert names(other.certificate.subject, NameOID.ORGANIZATIONAL_UNIT_NAME) == ["Manufacturer Licence 1234"]


def test_manufacturer_root_is_issued_by_the_foundation(chain: Chain) -> None:
    certificate = chain.manufacturer.certificate
    assert certificate.issuer == chain.foundation.certificate.subject
    certificate.verify_directly_issued_by(chain.foundation.certificate)
    aki = extension(certificate, x509.AuthorityKeyIdentifier)
    foundation_ski = extension(chain.foundation.certificate, x509.SubjectKeyIdentifier).value
    assert aki.value.key_identifier == foundation_ski.digest


def test_manufacturer_root_certifies_devices_only(chain: Chain) -> None:
    constraints = extension(chain.manufacturer.certificate, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is True
    assert constraints.value.path_length == 0


def test_manufacturer_root_validity(chain: Chain) -> None:
    certificate = chain.manufacturer.certificate
    assert certificate.not_valid_before_utc == NOW
    assert certificate.not_valid_after_utc - NOW == MANUFACTURER_ROOT_VALIDITY


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(ec.generate_private_key(ec.SECP256K1()).public_key(), id="secp256k1"),
        pytest.param(ec.generate_private_key(ec.SECP384R1()).public_key(), id="P-384"),
        pytest.param(ed25519.Ed25519PrivateKey.generate().public_key(), id="Ed25519"),
    ],
)
def test_manufacturer_root_key_must_be_p256(key: object) -> None:
    foundation = make_foundation()
    with pytest.raises(PkiError, match="P-256"):
        manufacturer_root(foundation, key, name="Acme", licence_id=1, now=NOW)  # type: ignore[arg-type]


def test_certificate_authority_refuses_a_signer_of_another_key(chain: Chain) -> None:
    with pytest.raises(PkiError, match="not the key that certificate certifies"):
        CertificateAuthority(chain.manufacturer.certificate, MemoryHsm())


def test_ca_serials_are_random_and_distinct(chain: Chain) -> None:
    again = make_manufacturer(chain.foundation)
    assert again.certificate.serial_number != chain.manufacturer.certificate.serial_number
    assert again.certificate.serial_number > 2**64


# -- device certificate ------------------------------------------------------------------------


def test_device_certificate_certifies_the_devices_secp256k1_key(chain: Chain) -> None:
    key = chain.device_cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256K1)
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert point == chain.device.public_key
    assert checksum_address(address_of_public_key(point)) == chain.device.address


def test_device_subject(chain: Chain) -> None:
    subject = chain.device_cert.subject
    assert names(subject, NameOID.SERIAL_NUMBER) == [SERIAL]
    assert names(subject, NameOID.COMMON_NAME) == [chain.device.address]
    assert names(subject, NameOID.ORGANIZATION_NAME) == ["Acme Devices"]


def test_device_san_is_exactly_the_imei_urn_and_caip10_account(chain: Chain) -> None:
    san = extension(chain.device_cert, x509.SubjectAlternativeName)
    assert not san.critical
    assert list(san.value) == [
        x509.UniformResourceIdentifier(IMEI_URN),
        x509.UniformResourceIdentifier(f"eip155:31337:{chain.device.address}"),
    ]


def test_device_san_follows_the_chain_id() -> None:
    polygon = make_chain(chain_id=137)
    uris = extension(polygon.device_cert, x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    )
    assert f"eip155:137:{polygon.device.address}" in uris
    assert not any(uri.startswith("eip155:31337:") for uri in uris)


def test_device_validity_from_provisioning_day_forever(chain: Chain) -> None:
    assert chain.device_cert.not_valid_before_utc == datetime(2025, 2, 3, 0, 0, tzinfo=UTC)
    assert chain.device_cert.not_valid_after_utc == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_device_is_an_end_entity_that_signs(chain: Chain) -> None:
    constraints = extension(chain.device_cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is False
    usage = extension(chain.device_cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not (usage.value.key_cert_sign or usage.value.crl_sign or usage.value.content_commitment)


def test_device_is_issued_by_the_manufacturer_root(chain: Chain) -> None:
    manufacturer = chain.manufacturer.certificate
    assert chain.device_cert.issuer == manufacturer.subject
    chain.device_cert.verify_directly_issued_by(manufacturer)
    aki = extension(chain.device_cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == extension(manufacturer, x509.SubjectKeyIdentifier).value.digest
    ski = extension(chain.device_cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(chain.device_cert.public_key())


def test_each_device_certificate_has_its_own_serial(chain: Chain) -> None:
    other = issue_device(chain.issuer, Device.new(), serial_number="SN-2", imei="356938035643809")
    assert other.serial_number != chain.device_cert.serial_number


@pytest.mark.parametrize(
    "public_key",
    [
        pytest.param(b"\x04" + b"\x01" * 64, id="off-curve"),
        pytest.param(b"\x04" + b"\x00" * 10, id="short"),
        pytest.param(b"", id="empty"),
    ],
)
def test_device_key_must_be_a_secp256k1_point(chain: Chain, public_key: bytes) -> None:
    with pytest.raises(PkiError, match="secp256k1"):
        device_public_key(public_key)
    with pytest.raises(PkiError, match="secp256k1"):
        chain.issuer.issue(
            serial_number=SERIAL,
            imei=IMEI,
            address=chain.device.address,
            public_key=public_key,
            provisioning_date=PROVISIONED,
        )


def test_device_with_a_bad_imei_is_not_issued(chain: Chain) -> None:
    with pytest.raises(PkiError, match="15 digits"):
        issue_device(chain.issuer, Device.new(), imei="4901542032375")


def test_device_san_carries_the_checksummed_address_whatever_case_is_given(chain: Chain) -> None:
    device = Device.new()
    certificate = issue_device(chain.issuer, device, address=device.address.lower())
    uris = extension(certificate, x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    )
    assert f"eip155:31337:{device.address}" in uris


# -- CRL ---------------------------------------------------------------------------------------


def test_empty_crl(chain: Chain) -> None:
    crl = chain.manufacturer.crl([], number=1, now=NOW)
    assert len(crl) == 0
    assert crl.issuer == chain.manufacturer.certificate.subject
    assert crl.is_signature_valid(chain.manufacturer.certificate.public_key())
    assert not crl.is_signature_valid(chain.foundation.certificate.public_key())


def test_crl_number_and_validity(chain: Chain) -> None:
    crl = chain.manufacturer.crl([], number=42, now=NOW)
    assert extension(crl, x509.CRLNumber).value.crl_number == 42
    assert crl.last_update_utc == NOW
    assert crl.next_update_utc == NOW + timedelta(days=7)


def test_crl_names_its_issuers_key(chain: Chain) -> None:
    crl = chain.foundation.crl([], number=1, now=NOW)
    aki = extension(crl, x509.AuthorityKeyIdentifier).value
    assert (
        aki.key_identifier == extension(chain.foundation.certificate, x509.SubjectKeyIdentifier).value.digest
    )


def test_crl_lists_revoked_serials_with_reason(chain: Chain) -> None:
    when = NOW - timedelta(hours=3)
    serial = chain.device_cert.serial_number
    crl = chain.manufacturer.crl([(serial, when, RevocationReason.KEY_COMPROMISE)], number=2, now=NOW)
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    assert entry.revocation_date_utc == when
    reason = entry.extensions.get_extension_for_class(x509.CRLReason)
    assert reason.value.reason is x509.ReasonFlags.key_compromise
    assert crl.get_revoked_certificate_by_serial_number(serial + 1) is None


def test_unspecified_reason_has_no_reason_extension(chain: Chain) -> None:
    crl = chain.manufacturer.crl([(5, NOW, RevocationReason.UNSPECIFIED)], number=1, now=NOW)
    entry = crl.get_revoked_certificate_by_serial_number(5)
    assert entry is not None
    assert len(entry.extensions) == 0


def test_crl_lists_every_revocation(chain: Chain) -> None:
    revoked = [
        (11, NOW, RevocationReason.SUPERSEDED),
        (12, NOW, RevocationReason.CESSATION_OF_OPERATION),
        (13, NOW, RevocationReason.UNSPECIFIED),
    ]
    crl = chain.foundation.crl(revoked, number=3, now=NOW)
    assert sorted(entry.serial_number for entry in crl) == [11, 12, 13]


@pytest.mark.parametrize("reason", list(RevocationReason))
def test_every_revocation_reason_maps_to_its_rfc5280_flag(reason: RevocationReason) -> None:
    assert reason.flag.name == reason.value
    assert isinstance(reason.flag, x509.ReasonFlags)


# -- helpers -------------------------------------------------------------------------------------


def test_fingerprint_is_sha256_of_the_der(chain: Chain) -> None:
    certificate = chain.manufacturer.certificate
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert fingerprint(certificate) == hashlib.sha256(der).digest()
    assert fingerprint(certificate) != fingerprint(chain.foundation.certificate)


@pytest.mark.parametrize(
    ("imei", "urn"),
    [
        ("490154203237518", "urn:imei:49015420-323751-8"),
        ("356938035643809", "urn:imei:35693803-564380-9"),
        ("000000000000000", "urn:imei:00000000-000000-0"),
    ],
)
def test_imei_urn_is_rfc7254(imei: str, urn: str) -> None:
    assert imei_urn(imei) == urn


@pytest.mark.parametrize(
    "imei",
    [
        pytest.param("", id="empty"),
        pytest.param("49015420323751", id="14-digits"),
        pytest.param("4901542032375180", id="16-digits"),
        pytest.param("49015420323751X", id="letter"),
        pytest.param("49015420-323751-8", id="already-hyphenated"),
        pytest.param(" 49015420323751", id="space"),
        pytest.param("+49015420323751", id="sign"),
    ],
)
def test_imei_urn_rejects_what_is_not_15_digits(imei: str) -> None:
    with pytest.raises(PkiError, match="15 digits"):
        imei_urn(imei)


@pytest.mark.parametrize(
    "imei",
    [
        pytest.param("٤٩٠١٥٤٢٠٣٢٣٧٥١٨", id="arabic-indic"),
        pytest.param("４９０１５４２０３２３７５１８", id="full-width"),
        pytest.param("²" * 15, id="superscript"),
    ],
)
def test_imei_urn_rejects_non_ascii_digits(imei: str) -> None:
    with pytest.raises(PkiError):
        imei_urn(imei)


def test_caip10() -> None:
    address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert caip10(31337, address) == f"eip155:31337:{address}"
    assert caip10(1, address) == f"eip155:1:{address}"
