"""The authority: CA certificates, keys, revocations and CRLs in a real (SQLite) database."""

from __future__ import annotations

import hashlib
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from devicemint.config import Settings
from devicemint.db.models import Batch, Certificate, Document
from devicemint.db.session import transaction
from devicemint.errors import ConfigError, NotFound
from devicemint.pki.authority import Authority
from devicemint.pki.errors import NoFoundationRoot, PkiError
from devicemint.pki.models import CaCertificate, PublishedCrl
from devicemint.pki.profiles import RevocationReason, fingerprint
from devicemint.pki.signing import KeyFileSigner, issuer_key
from devicemint.pki.trust import TrustPath, crl_problems, path_problems
from devicemint.runtime import open_database

from .helpers import IMEI, NOW, PROVISIONED, SERIAL, Device, MemoryHsm, extension, issue_device, make_chain

HOLDER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OTHER_HOLDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PASSPHRASE = "pw"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Passphrase:
    """The passphrase callback, counting how often the authority needed a key."""

    def __init__(self, value: str = PASSPHRASE) -> None:
        self.value = value
        self.asked = 0

    def __call__(self) -> str:
        self.asked += 1
        return self.value


@pytest.fixture
def database(tmp_path: Path) -> sessionmaker[Session]:
    return open_database(Settings(home=tmp_path))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def passphrase() -> Passphrase:
    return Passphrase()


def make_authority(
    database: sessionmaker[Session], home: Path, clock: Clock, *, passphrase=PASSPHRASE, **options
) -> Authority:
    return Authority(
        sessions=database,
        home=home,
        passphrase=passphrase if callable(passphrase) else (lambda: passphrase),
        chain_id=31337,
        clock=clock,
        **options,
    )


@pytest.fixture
def authority(
    database: sessionmaker[Session], tmp_path: Path, clock: Clock, passphrase: Passphrase
) -> Authority:
    return make_authority(database, tmp_path, clock, passphrase=passphrase)


@pytest.fixture
def root(authority: Authority) -> x509.Certificate:
    return authority.create_foundation_root("Test Foundation")


@pytest.fixture
def manufacturer(authority: Authority, root: x509.Certificate) -> x509.Certificate:
    return authority.issue_manufacturer_root(holder=HOLDER, name="Acme Devices", licence_id=7, csr_pem=None)


def csr_for(key: ec.EllipticCurvePrivateKey, organisation: str = "Acme Devices") -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def count(database: sessionmaker[Session], model: type) -> int:
    with database() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def store_device(
    database: sessionmaker[Session], device: Device, certificate: x509.Certificate, *, serial: str = SERIAL
) -> None:
    """The rows the intake writes for a device: a document, its batch, its certificate."""
    digest = hashlib.sha256(serial.encode()).hexdigest()
    with transaction(database) as session:
        batch = Batch(
            file_sha256=digest,
            source_name="batch.csv",
            device_licence_id=1,
            device_count=1,
            tree=b"",
            uri="ipfs://batch",
        )
        session.add_all([batch, Document(sha256=digest, body=b"{}")])
        session.flush()
        session.add(
            Certificate(
                address=device.address,
                serial_number=serial,
                imei=IMEI,
                batch_id=batch.id,
                position=0,
                document_sha256=digest,
                x509_der=certificate.public_bytes(serialization.Encoding.DER),
                x509_serial=f"{certificate.serial_number:x}",
            )
        )


def issued_device(
    authority: Authority, database: sessionmaker[Session], manufacturer: x509.Certificate
) -> Device:
    """A device certified by the manufacturer root and stored as the intake stores it."""
    issuer = authority.device_issuer(holder=HOLDER, root_fingerprint=fingerprint(manufacturer))
    device = Device.new()
    store_device(database, device, issue_device(issuer, device))
    return device


# -- foundation root ---------------------------------------------------------------------------


def test_foundation_root_created_with_an_encrypted_key(authority: Authority, root: x509.Certificate) -> None:
    key_path = authority.foundation_key_path
    assert key_path == authority.directory / "foundation-root.key.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in key_path.read_bytes()
    assert KeyFileSigner.load(key_path, PASSPHRASE).public_key() == root.public_key()
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Test Foundation"
    assert root.not_valid_before_utc == NOW


def test_foundation_root_is_stored(authority: Authority, root: x509.Certificate) -> None:
    assert authority.foundation_root() == root
    assert authority.ca_certificate(fingerprint(root)) == root


def test_foundation_root_publishes_its_first_crl(authority: Authority, root: x509.Certificate) -> None:
    crl = authority.latest_crl(fingerprint(root))
    assert crl is not None
    assert extension(crl, x509.CRLNumber).value.crl_number == 1
    assert len(crl) == 0
    assert crl.is_signature_valid(root.public_key())
    assert crl.last_update_utc == NOW
    assert crl.next_update_utc == NOW + timedelta(days=7)


def test_foundation_root_is_created_once(authority: Authority, root: x509.Certificate) -> None:
    key_before = authority.foundation_key_path.read_bytes()
    with pytest.raises(PkiError, match="already exists") as caught:
        authority.create_foundation_root("Another Foundation")
    assert fingerprint(root).hex() in str(caught.value)
    assert authority.foundation_key_path.read_bytes() == key_before
    assert authority.foundation_root() == root


@pytest.mark.parametrize("organisation", ["", "   "])
def test_foundation_root_needs_a_name(authority: Authority, organisation: str) -> None:
    with pytest.raises(PkiError, match="name"):
        authority.create_foundation_root(organisation)
    assert not authority.foundation_key_path.exists()
    with pytest.raises(NoFoundationRoot):
        authority.foundation_root()


def test_foundation_name_is_trimmed(authority: Authority) -> None:
    root = authority.create_foundation_root("  Spaced Foundation \n")
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Spaced Foundation Root CA"


def test_reading_needs_no_passphrase(authority: Authority, passphrase: Passphrase) -> None:
    with pytest.raises(NoFoundationRoot):
        authority.foundation_root()
    authority.create_foundation_root("Test Foundation")
    asked = passphrase.asked
    root = authority.foundation_root()
    authority.latest_crl(fingerprint(root))
    authority.ca_certificate(fingerprint(root))
    assert passphrase.asked == asked


def test_an_interrupted_creation_reuses_the_key_on_disk(authority: Authority) -> None:
    # A run killed after writing the key but before storing the certificate.
    earlier = KeyFileSigner.generate(authority.foundation_key_path, PASSPHRASE)
    root = authority.create_foundation_root("Test Foundation")
    assert root.public_key() == earlier.public_key()


def test_foundation_root_with_a_custom_signer(
    database: sessionmaker[Session], tmp_path: Path, clock: Clock
) -> None:
    hsm = MemoryHsm()
    authority = make_authority(database, tmp_path, clock, foundation_signer=hsm)
    root = authority.create_foundation_root("HSM Foundation")
    assert root.public_key() == hsm.public_key()
    assert not authority.foundation_key_path.exists()
    assert len(hsm.calls) == 2  # the certificate and its first CRL
    crl = authority.latest_crl(fingerprint(root))
    assert crl is not None and crl.is_signature_valid(hsm.public_key())
    # Later foundation acts sign with the same HSM, never with a key file.
    manufacturer = authority.issue_manufacturer_root(holder=HOLDER, name="Acme", licence_id=1, csr_pem=None)
    manufacturer.verify_directly_issued_by(root)
    assert authority.revoke_manufacturer_root(fingerprint(manufacturer), RevocationReason.KEY_COMPROMISE)
    assert len(hsm.calls) == 4 and not authority.foundation_key_path.exists()


def test_wrong_passphrase_for_the_foundation_key(
    database: sessionmaker[Session], tmp_path: Path, clock: Clock, root: x509.Certificate
) -> None:
    wrong = make_authority(database, tmp_path, clock, passphrase="not pw")
    with pytest.raises(PkiError, match="cannot decrypt") as caught:
        wrong.issue_manufacturer_root(holder=HOLDER, name="Acme", licence_id=1, csr_pem=None)
    assert "foundation-root.key.pem" in str(caught.value)
    assert "not pw" not in str(caught.value)


def test_authority_of_settings_asks_for_the_passphrase_only_to_sign(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, chain_id=137)
    authority = Authority.of(settings, open_database(settings))
    assert authority.chain_id == 137
    with pytest.raises(NoFoundationRoot):
        authority.foundation_root()
    with pytest.raises(ConfigError, match="chain 137"):
        authority.create_foundation_root("Test Foundation")
    assert not authority.foundation_key_path.exists()


# -- manufacturer roots --------------------------------------------------------------------------


def test_manufacturer_root_without_csr_makes_a_key_in_the_keystore(
    authority: Authority, tmp_path: Path, root: x509.Certificate
) -> None:
    certificate = authority.issue_manufacturer_root(
        holder=HOLDER.lower(), name="Acme Devices", licence_id=7, csr_pem=None
    )
    key_path = tmp_path / "pki" / "manufacturers" / f"{HOLDER}.key.pem"
    assert authority.manufacturer_key_path(HOLDER.lower()) == key_path
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert KeyFileSigner.load(key_path, PASSPHRASE).public_key() == certificate.public_key()
    certificate.verify_directly_issued_by(root)
    assert (
        certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
        == "Manufacturer Licence 7"
    )


def test_manufacturer_root_is_recorded_for_its_holder_and_licence(
    authority: Authority, database: sessionmaker[Session], manufacturer: x509.Certificate
) -> None:
    with database() as session:
        row = session.get_one(CaCertificate, fingerprint(manufacturer).hex())
    assert (row.role, row.holder, row.manufacturer_licence_id) == ("manufacturer_root", HOLDER, 7)
    assert authority.ca_certificate(fingerprint(manufacturer)) == manufacturer


def test_manufacturer_root_asked_again_is_the_same(
    authority: Authority, database: sessionmaker[Session], manufacturer: x509.Certificate, clock: Clock
) -> None:
    clock.advance(days=3)
    again = authority.issue_manufacturer_root(
        holder=HOLDER.lower(), name="Acme Devices", licence_id=7, csr_pem=None
    )
    assert again == manufacturer
    assert count(database, CaCertificate) == 2  # foundation + this one


def test_a_new_licence_gets_a_new_root_for_the_same_key(
    authority: Authority, manufacturer: x509.Certificate
) -> None:
    second = authority.issue_manufacturer_root(holder=HOLDER, name="Acme Devices", licence_id=8, csr_pem=None)
    assert second != manufacturer
    assert second.public_key() == manufacturer.public_key()


def test_manufacturer_root_certifies_the_csr_key(
    authority: Authority, tmp_path: Path, root: x509.Certificate
) -> None:
    own_key = ec.generate_private_key(ec.SECP256R1())
    certificate = authority.issue_manufacturer_root(
        holder=HOLDER, name="Acme Devices", licence_id=7, csr_pem=csr_for(own_key)
    )
    assert certificate.public_key() == own_key.public_key()
    certificate.verify_directly_issued_by(root)
    # The key stays with the manufacturer: nothing written to this home's keystore.
    assert not (tmp_path / "pki" / "manufacturers").exists()


@pytest.mark.parametrize(
    "csr_pem",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not a certificate request", id="text"),
        pytest.param(
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", id="junk"
        ),
    ],
)
def test_unreadable_csr_refused(authority: Authority, root: x509.Certificate, csr_pem: bytes) -> None:
    with pytest.raises(PkiError, match="not a PEM-encoded PKCS#10 CSR"):
        authority.issue_manufacturer_root(holder=HOLDER, name="Acme", licence_id=7, csr_pem=csr_pem)


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP256K1()], ids=["P-384", "secp256k1"])
def test_csr_for_other_than_p256_refused(
    authority: Authority, database: sessionmaker[Session], root: x509.Certificate, curve: ec.EllipticCurve
) -> None:
    with pytest.raises(PkiError, match="P-256"):
        authority.issue_manufacturer_root(
            holder=HOLDER, name="Acme", licence_id=7, csr_pem=csr_for(ec.generate_private_key(curve))
        )
    assert count(database, CaCertificate) == 1


def test_csr_with_a_broken_signature_refused(authority: Authority, root: x509.Certificate) -> None:
    csr = x509.load_pem_x509_csr(csr_for(ec.generate_private_key(ec.SECP256R1())))
    der = csr.public_bytes(serialization.Encoding.DER)
    signature = csr.signature
    tampered = bytearray(signature)
    tampered[10] ^= 0x01  # inside r: still valid DER, no longer a valid signature
    broken = der.replace(signature, bytes(tampered))
    pem = x509.load_der_x509_csr(broken).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(PkiError, match="does not verify"):
        authority.issue_manufacturer_root(holder=HOLDER, name="Acme", licence_id=7, csr_pem=pem)


def test_manufacturer_root_needs_the_foundation_root(authority: Authority) -> None:
    with pytest.raises(NoFoundationRoot):
        authority.issue_manufacturer_root(holder=HOLDER, name="Acme", licence_id=7, csr_pem=None)


def test_request_makes_a_csr_with_the_keystore_key(authority: Authority, root: x509.Certificate) -> None:
    pem = authority.request(HOLDER, "Acme Devices")
    csr = x509.load_pem_x509_csr(pem)
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme Devices"
    key_path = authority.manufacturer_key_path(HOLDER)
    assert csr.public_key() == KeyFileSigner.load(key_path, PASSPHRASE).public_key()
    # Asked again, the same key.
    assert x509.load_pem_x509_csr(authority.request(HOLDER, "Acme Devices")).public_key() == csr.public_key()
    certificate = authority.issue_manufacturer_root(
        holder=HOLDER, name="Acme Devices", licence_id=7, csr_pem=pem
    )
    ca = authority.manufacturer_ca(holder=HOLDER, root_fingerprint=fingerprint(certificate))
    assert ca.certificate == certificate


def test_manufacturer_ca_with_the_wrong_key_file(
    database: sessionmaker[Session], tmp_path: Path, clock: Clock, manufacturer: x509.Certificate
) -> None:
    stray = tmp_path / "stray.key.pem"
    KeyFileSigner.generate(stray, PASSPHRASE)
    authority = make_authority(database, tmp_path, clock, manufacturer_key=stray)
    assert authority.manufacturer_key_path(HOLDER) == stray
    with pytest.raises(PkiError, match="not the key that certificate certifies"):
        authority.manufacturer_ca(holder=HOLDER, root_fingerprint=fingerprint(manufacturer))


def test_manufacturer_ca_without_its_key(authority: Authority, root: x509.Certificate) -> None:
    csr = csr_for(ec.generate_private_key(ec.SECP256R1()))
    certificate = authority.issue_manufacturer_root(holder=HOLDER, name="Acme", licence_id=7, csr_pem=csr)
    with pytest.raises(PkiError, match="DEVICEMINT_MANUFACTURER_CA_KEY") as caught:
        authority.manufacturer_ca(holder=HOLDER, root_fingerprint=fingerprint(certificate))
    assert HOLDER in str(caught.value)


def test_manufacturer_key_of_its_own_configured_file(
    database: sessionmaker[Session],
    tmp_path: Path,
    clock: Clock,
    authority: Authority,
    root: x509.Certificate,
) -> None:
    # "Bring your own key": the manufacturer made its key and CSR elsewhere.
    own_path = tmp_path / "factory" / "root.key.pem"
    own = KeyFileSigner.generate(own_path, PASSPHRASE)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")]))
        .sign(issuer_key(own), hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    certificate = authority.issue_manufacturer_root(holder=HOLDER, name="Acme", licence_id=7, csr_pem=csr)
    factory = make_authority(database, tmp_path, clock, manufacturer_key=own_path)
    issuer = factory.device_issuer(holder=HOLDER, root_fingerprint=fingerprint(certificate))
    device_cert = issue_device(issuer, Device.new())
    device_cert.verify_directly_issued_by(certificate)


def test_unknown_ca_certificate(authority: Authority) -> None:
    with pytest.raises(NotFound, match="ab" * 32):
        authority.ca_certificate(bytes.fromhex("ab" * 32))


# -- devices and their issuer ----------------------------------------------------------------------


def test_device_issuer_publishes_the_manufacturers_first_crl(
    authority: Authority, manufacturer: x509.Certificate
) -> None:
    assert authority.latest_crl(fingerprint(manufacturer)) is None
    authority.device_issuer(holder=HOLDER, root_fingerprint=fingerprint(manufacturer))
    crl = authority.latest_crl(fingerprint(manufacturer))
    assert crl is not None
    assert extension(crl, x509.CRLNumber).value.crl_number == 1
    assert crl.is_signature_valid(manufacturer.public_key())


def test_issued_device_verifies_with_published_crls(
    authority: Authority,
    database: sessionmaker[Session],
    root: x509.Certificate,
    manufacturer: x509.Certificate,
) -> None:
    device = issued_device(authority, database, manufacturer)
    path = authority.trust_path(device.address.lower(), root_fingerprint=fingerprint(manufacturer))
    assert path.foundation_root == root
    assert path.manufacturer_root == manufacturer
    at = datetime.combine(PROVISIONED, datetime.min.time(), tzinfo=NOW.tzinfo) + timedelta(hours=1)
    crls = [authority.latest_crl(fingerprint(root)), authority.latest_crl(fingerprint(manufacturer))]
    assert path_problems(path, at=at) == []
    assert crl_problems(path, [c for c in crls if c is not None], at=NOW + timedelta(days=1)) == []
    assert authority.revocation_problems(path) == []
    assert authority.issuer_of(path.device) == manufacturer


def test_unknown_device(authority: Authority, root: x509.Certificate) -> None:
    with pytest.raises(NotFound):
        authority.device_certificate(Device.new().address)
    with pytest.raises(NotFound):
        authority.revoke_device(Device.new().address, RevocationReason.KEY_COMPROMISE)


def test_issuer_of_a_device_from_an_unknown_manufacturer(
    authority: Authority, manufacturer: x509.Certificate
) -> None:
    stranger = make_chain().device_cert
    with pytest.raises(NotFound, match="not a manufacturer root known here"):
        authority.issuer_of(stranger)


# -- revocation ------------------------------------------------------------------------------------


def test_revoke_manufacturer_root(
    authority: Authority, root: x509.Certificate, manufacturer: x509.Certificate, clock: Clock
) -> None:
    clock.advance(hours=5)
    assert authority.revoke_manufacturer_root(fingerprint(manufacturer), RevocationReason.PRIVILEGE_WITHDRAWN)
    crl = authority.latest_crl(fingerprint(root))
    assert crl is not None
    assert extension(crl, x509.CRLNumber).value.crl_number == 2
    assert crl.is_signature_valid(root.public_key())
    entry = crl.get_revoked_certificate_by_serial_number(manufacturer.serial_number)
    assert entry is not None
    assert entry.revocation_date_utc == clock.now
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.privilege_withdrawn
    )


def test_revoking_a_manufacturer_root_twice(
    authority: Authority,
    database: sessionmaker[Session],
    root: x509.Certificate,
    manufacturer: x509.Certificate,
) -> None:
    assert authority.revoke_manufacturer_root(fingerprint(manufacturer), RevocationReason.PRIVILEGE_WITHDRAWN)
    crls = count(database, PublishedCrl)
    assert not authority.revoke_manufacturer_root(fingerprint(manufacturer), RevocationReason.KEY_COMPROMISE)
    assert count(database, PublishedCrl) == crls
    crl = authority.latest_crl(fingerprint(root))
    assert crl is not None and len(crl) == 1


def test_revoked_manufacturer_root_in_revocation_problems(
    authority: Authority,
    database: sessionmaker[Session],
    root: x509.Certificate,
    manufacturer: x509.Certificate,
) -> None:
    device = issued_device(authority, database, manufacturer)
    path = authority.trust_path(device.address, root_fingerprint=fingerprint(manufacturer))
    authority.revoke_manufacturer_root(fingerprint(manufacturer), RevocationReason.PRIVILEGE_WITHDRAWN)
    problems = authority.revocation_problems(path)
    assert problems == [
        f"{manufacturer.subject.rfc4514_string()} was revoked by {root.subject.rfc4514_string()} "
        f"on {NOW:%Y-%m-%d} (privilege_withdrawn)"
    ]
    # The published CRL says the same to anyone offline.
    crls = [authority.latest_crl(fingerprint(root)), authority.latest_crl(fingerprint(manufacturer))]
    offline = crl_problems(path, [c for c in crls if c is not None], at=NOW)
    assert len(offline) == 1 and "privilegeWithdrawn" in offline[0]


def test_the_foundation_root_is_not_a_manufacturer_root_to_revoke(
    authority: Authority, root: x509.Certificate
) -> None:
    with pytest.raises((PkiError, NotFound)):
        authority.revoke_manufacturer_root(fingerprint(root), RevocationReason.KEY_COMPROMISE)
    crl = authority.latest_crl(fingerprint(root))
    assert crl is not None and len(crl) == 0


def test_revoke_device(
    authority: Authority, database: sessionmaker[Session], manufacturer: x509.Certificate, clock: Clock
) -> None:
    device = issued_device(authority, database, manufacturer)
    device_cert = authority.device_certificate(device.address)
    clock.advance(days=1)
    assert authority.revoke_device(device.address.lower(), RevocationReason.KEY_COMPROMISE)
    crl = authority.latest_crl(fingerprint(manufacturer))
    assert crl is not None
    assert extension(crl, x509.CRLNumber).value.crl_number == 2  # after device_issuer's first
    assert crl.is_signature_valid(manufacturer.public_key())
    entry = crl.get_revoked_certificate_by_serial_number(device_cert.serial_number)
    assert entry is not None
    assert entry.revocation_date_utc == clock.now
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.key_compromise
    )

    assert not authority.revoke_device(device.address, RevocationReason.KEY_COMPROMISE)
    again = authority.latest_crl(fingerprint(manufacturer))
    assert again is not None and extension(again, x509.CRLNumber).value.crl_number == 2

    path = authority.trust_path(device.address, root_fingerprint=fingerprint(manufacturer))
    problems = authority.revocation_problems(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{device_cert.subject.rfc4514_string()} was revoked by")
    assert problems[0].endswith("(key_compromise)")


def test_revoking_one_device_leaves_the_others(
    authority: Authority, database: sessionmaker[Session], manufacturer: x509.Certificate
) -> None:
    revoked = issued_device(authority, database, manufacturer)
    issuer = authority.device_issuer(holder=HOLDER, root_fingerprint=fingerprint(manufacturer))
    other = Device.new()
    other_cert = issue_device(issuer, other, serial_number="SN-2", imei="356938035643809")
    authority.revoke_device(revoked.address, RevocationReason.CESSATION_OF_OPERATION)
    path = TrustPath(other_cert, manufacturer, authority.foundation_root())
    assert authority.revocation_problems(path) == []


# -- CRLs --------------------------------------------------------------------------------------------


def test_write_crl_numbers_each_crl(authority: Authority, root: x509.Certificate, clock: Clock) -> None:
    clock.advance(days=2)
    crl = authority.write_crl(fingerprint(root))
    assert extension(crl, x509.CRLNumber).value.crl_number == 2
    assert crl.last_update_utc == clock.now
    assert crl.next_update_utc == clock.now + timedelta(days=7)
    latest = authority.latest_crl(fingerprint(root))
    assert latest is not None and latest.public_bytes(serialization.Encoding.DER) == crl.public_bytes(
        serialization.Encoding.DER
    )


def test_write_crl_of_a_manufacturer(authority: Authority, manufacturer: x509.Certificate) -> None:
    crl = authority.write_crl(fingerprint(manufacturer))
    assert crl.issuer == manufacturer.subject
    assert crl.is_signature_valid(manufacturer.public_key())
    assert extension(crl, x509.CRLNumber).value.crl_number == 1


def test_write_crl_of_an_unknown_ca(authority: Authority, root: x509.Certificate) -> None:
    with pytest.raises(NotFound):
        authority.write_crl(b"\x00" * 32)


def test_latest_crl_of_an_unknown_ca(authority: Authority) -> None:
    assert authority.latest_crl(b"\x00" * 32) is None


def test_refresh_crl_only_when_missing_or_about_to_lapse(
    authority: Authority, manufacturer: x509.Certificate, clock: Clock
) -> None:
    ca = authority.manufacturer_ca(holder=HOLDER, root_fingerprint=fingerprint(manufacturer))

    def number() -> int | None:
        crl = authority.latest_crl(fingerprint(manufacturer))
        return None if crl is None else extension(crl, x509.CRLNumber).value.crl_number

    authority.refresh_crl(ca)  # missing: written
    assert number() == 1
    authority.refresh_crl(ca)  # current: kept
    assert number() == 1
    clock.advance(days=5, hours=23, minutes=59)  # lapses in just over a day
    authority.refresh_crl(ca)
    assert number() == 1
    clock.advance(minutes=2)  # now less than a day left
    authority.refresh_crl(ca)
    assert number() == 2
    latest = authority.latest_crl(fingerprint(manufacturer))
    assert latest is not None and latest.last_update_utc == clock.now
