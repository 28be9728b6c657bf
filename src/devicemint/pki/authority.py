"""The chain of trust as this installation keeps it: CA certificates and revocations in the
database, CA keys in encrypted files under ``$DEVICEMINT_HOME/pki`` (or any `Signer`).

Each step that signs something stores it in one database transaction, after the key it used is
safely on disk, so a run killed at any point is finished by running it again: an existing key
file is reused, an already issued certificate is returned instead of a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from devicemint.config import Settings
from devicemint.db.models import Certificate
from devicemint.db.session import transaction
from devicemint.errors import NotFound
from devicemint.pki.errors import NoFoundationRoot, PkiError
from devicemint.pki.models import FOUNDATION_ROOT, MANUFACTURER_ROOT, CaCertificate, PublishedCrl, Revocation
from devicemint.pki.profiles import (
    CertificateAuthority,
    DeviceIssuer,
    RevocationReason,
    fingerprint,
    foundation_root,
    manufacturer_root,
)
from devicemint.pki.signing import KeyFileSigner, Signer, issuer_key, pki_passphrase
from devicemint.pki.trust import TrustPath, describe, revoked_message

# A CRL is rewritten when it has less than this left, whenever its CA's key is at hand.
CRL_REFRESH_MARGIN = timedelta(days=1)


class Authority:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        home: Path,
        passphrase: Callable[[], str],
        chain_id: int,
        manufacturer_key: Path | None = None,
        foundation_signer: Signer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.directory = home / "pki"
        self._passphrase = passphrase
        self.chain_id = chain_id
        self._manufacturer_key = manufacturer_key
        # An HSM or KMS that holds the foundation key; by default the encrypted key file.
        self._foundation_signer = foundation_signer
        self.clock = clock

    @classmethod
    def of(cls, settings: Settings, sessions: sessionmaker[Session]) -> Authority:
        # The passphrase is asked for only when a key is used: reading and verifying need none.
        return cls(
            sessions=sessions,
            home=settings.home,
            passphrase=lambda: pki_passphrase(settings),
            chain_id=settings.chain_id,
            manufacturer_key=settings.manufacturer_ca_key,
        )

    # -- keys ------------------------------------------------------------------------------

    @property
    def foundation_key_path(self) -> Path:
        return self.directory / "foundation-root.key.pem"

    def manufacturer_key_path(self, holder: str) -> Path:
        """Where the manufacturer's root key is: the configured file, else this home's keystore."""
        if self._manufacturer_key is not None:
            return self._manufacturer_key
        return self.directory / "manufacturers" / f"{Web3.to_checksum_address(holder)}.key.pem"

    def _key(self, path: Path, *, create: bool) -> KeyFileSigner:
        if path.exists():
            return KeyFileSigner.load(path, self._passphrase())
        if not create:
            raise PkiError(f"{path}: no such key file")
        return KeyFileSigner.generate(path, self._passphrase())

    # -- foundation root ---------------------------------------------------------------------

    def create_foundation_root(self, organisation: str) -> x509.Certificate:
        """The trust anchor, once per installation, with its first (empty) CRL."""
        if not organisation.strip():
            raise PkiError("the foundation root needs the foundation's name")
        with self.sessions() as session:
            existing = self._foundation_row(session)
        if existing is not None:
            raise PkiError(
                f"the foundation root CA already exists (SHA-256 {existing.fingerprint}); it is created once"
            )
        signer = self._foundation_signer or self._key(self.foundation_key_path, create=True)
        certificate = foundation_root(signer, organisation=organisation.strip(), now=self.clock())
        authority = CertificateAuthority(certificate, signer)
        with transaction(self.sessions) as session:
            self._add_ca(session, certificate, FOUNDATION_ROOT)
            self._publish_crl(session, authority)
        return certificate

    def foundation_root(self) -> x509.Certificate:
        with self.sessions() as session:
            row = self._foundation_row(session)
        if row is None:
            raise NoFoundationRoot()
        return x509.load_der_x509_certificate(row.der)

    def _foundation_ca(self) -> CertificateAuthority:
        root = self.foundation_root()  # first: without a root, its key is not the problem
        return CertificateAuthority(
            root, self._foundation_signer or self._key(self.foundation_key_path, create=False)
        )

    @staticmethod
    def _foundation_row(session: Session) -> CaCertificate | None:
        return session.scalar(select(CaCertificate).where(CaCertificate.role == FOUNDATION_ROOT))

    # -- manufacturer roots --------------------------------------------------------------------

    def request(self, holder: str, organisation: str) -> bytes:
        """A root-certificate request (PEM CSR) for a manufacturer, its key made (or reused) in
        this home's encrypted keystore: the "bring your own key" path, key kept by the maker."""
        signer = self._key(self.manufacturer_key_path(holder), create=True)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation)]))
            .sign(issuer_key(signer), hashes.SHA256())
        )
        return csr.public_bytes(serialization.Encoding.PEM)

    def issue_manufacturer_root(
        self, *, holder: str, name: str, licence_id: int, csr_pem: bytes | None
    ) -> x509.Certificate:
        """The manufacturer root for licence `licence_id`: certifying the CSR's key, or a key made
        now in the manufacturer's encrypted keystore. Asked again, it returns the same one."""
        holder = Web3.to_checksum_address(holder)
        with self.sessions() as session:
            issued = session.scalar(
                select(CaCertificate).where(
                    CaCertificate.holder == holder, CaCertificate.manufacturer_licence_id == licence_id
                )
            )
        if issued is not None:
            return x509.load_der_x509_certificate(issued.der)
        if csr_pem is None:
            public_key = self._key(self.manufacturer_key_path(holder), create=True).public_key()
        else:
            public_key = csr_public_key(csr_pem)
        certificate = manufacturer_root(
            self._foundation_ca(), public_key, name=name, licence_id=licence_id, now=self.clock()
        )
        with transaction(self.sessions) as session:
            self._add_ca(
                session, certificate, MANUFACTURER_ROOT, manufacturer_licence_id=licence_id, holder=holder
            )
        return certificate

    def ca_certificate(self, sha256: bytes) -> x509.Certificate:
        with self.sessions() as session:
            row = session.get(CaCertificate, sha256.hex())
        if row is None:
            raise NotFound(f"no CA certificate with SHA-256 {sha256.hex()} is known here")
        return x509.load_der_x509_certificate(row.der)

    def manufacturer_ca(self, *, holder: str, root_fingerprint: bytes) -> CertificateAuthority:
        """The manufacturer root the chain names (by fingerprint) with its key, ready to sign."""
        certificate = self.ca_certificate(root_fingerprint)
        path = self.manufacturer_key_path(holder)
        if not path.exists():
            raise PkiError(
                f"the manufacturer root key of {holder} is not at {path}; device certificates are signed "
                "with it: set DEVICEMINT_MANUFACTURER_CA_KEY to the key file the CSR was made with"
            )
        return CertificateAuthority(certificate, self._key(path, create=False))

    def device_issuer(self, *, holder: str, root_fingerprint: bytes) -> DeviceIssuer:
        """The issuer of a manufacturer's device certificates, its CRL made current first."""
        manufacturer = self.manufacturer_ca(holder=holder, root_fingerprint=root_fingerprint)
        self.refresh_crl(manufacturer)
        return DeviceIssuer(manufacturer, chain_id=self.chain_id)

    # -- revocation ------------------------------------------------------------------------

    def revoke_manufacturer_root(self, root_fingerprint: bytes, reason: RevocationReason) -> bool:
        """Put a manufacturer root on the foundation's CRL (every device under it falls with it).
        False if it already was."""
        with self.sessions() as session:
            row = session.get(CaCertificate, root_fingerprint.hex())
        if row is None or row.role != MANUFACTURER_ROOT:
            raise PkiError(
                f"{root_fingerprint.hex()} is not the fingerprint of a manufacturer root known here"
            )
        return self._revoke(self._foundation_ca(), x509.load_der_x509_certificate(row.der), reason)

    def revoke_device(self, address: str, reason: RevocationReason) -> bool:
        """Put one device's certificate (a cloned or stolen device) on its manufacturer's CRL,
        signed with the manufacturer root key. False if it already was."""
        device = self.device_certificate(address)
        issuer = self.issuer_of(device)
        with self.sessions() as session:
            holder = session.get_one(CaCertificate, fingerprint(issuer).hex()).holder
        assert holder is not None
        return self._revoke(
            self.manufacturer_ca(holder=holder, root_fingerprint=fingerprint(issuer)), device, reason
        )

    def _revoke(
        self, ca: CertificateAuthority, certificate: x509.Certificate, reason: RevocationReason
    ) -> bool:
        issuer = fingerprint(ca.certificate).hex()
        serial = f"{certificate.serial_number:x}"
        with transaction(self.sessions) as session:
            done = session.scalar(
                select(Revocation).where(Revocation.issuer_fingerprint == issuer, Revocation.serial == serial)
            )
            if done is not None:
                return False
            session.add(
                Revocation(
                    issuer_fingerprint=issuer,
                    serial=serial,
                    subject=describe(certificate),
                    reason=reason.value,
                    revoked_at=self.clock(),
                )
            )
            session.flush()
            self._publish_crl(session, ca)
        return True

    def revocation_problems(self, path: TrustPath) -> list[str]:
        """Revocation as this authority's records say (current even when a CRL has lapsed)."""
        problems = []
        with self.sessions() as session:
            for certificate, issuer in path.links():
                found = session.scalar(
                    select(Revocation).where(
                        Revocation.issuer_fingerprint == fingerprint(issuer).hex(),
                        Revocation.serial == f"{certificate.serial_number:x}",
                    )
                )
                if found is not None:
                    problems.append(revoked_message(certificate, issuer, found.revoked_at, found.reason))
        return problems

    # -- CRLs ------------------------------------------------------------------------------

    def write_crl(self, ca_fingerprint: bytes) -> x509.CertificateRevocationList:
        """A new CRL for the foundation root or a manufacturer root (with that CA's key)."""
        with self.sessions() as session:
            row = session.get(CaCertificate, ca_fingerprint.hex())
        if row is None:
            raise NotFound(f"no CA certificate with SHA-256 {ca_fingerprint.hex()} is known here")
        if row.role == FOUNDATION_ROOT:
            ca = self._foundation_ca()
        else:
            assert row.holder is not None
            ca = self.manufacturer_ca(holder=row.holder, root_fingerprint=ca_fingerprint)
        with transaction(self.sessions) as session:
            return self._publish_crl(session, ca)

    def refresh_crl(self, ca: CertificateAuthority) -> None:
        """Write a CRL if the CA has none or its newest lapses within CRL_REFRESH_MARGIN."""
        current = self.latest_crl(fingerprint(ca.certificate))
        lapses = current.next_update_utc if current is not None else None
        if lapses is None or lapses - CRL_REFRESH_MARGIN < self.clock():
            with transaction(self.sessions) as session:
                self._publish_crl(session, ca)

    def latest_crl(self, ca_fingerprint: bytes) -> x509.CertificateRevocationList | None:
        with self.sessions() as session:
            der = session.scalar(
                select(PublishedCrl.der)
                .where(PublishedCrl.issuer_fingerprint == ca_fingerprint.hex())
                .order_by(PublishedCrl.number.desc())
                .limit(1)
            )
        return None if der is None else x509.load_der_x509_crl(der)

    def _publish_crl(self, session: Session, ca: CertificateAuthority) -> x509.CertificateRevocationList:
        issuer = fingerprint(ca.certificate).hex()
        revoked = session.scalars(select(Revocation).where(Revocation.issuer_fingerprint == issuer)).all()
        number = (
            session.scalar(
                select(func.max(PublishedCrl.number)).where(PublishedCrl.issuer_fingerprint == issuer)
            )
            or 0
        ) + 1
        now = self.clock()
        crl = ca.crl(
            ((int(r.serial, 16), r.revoked_at, RevocationReason(r.reason)) for r in revoked),
            number=number,
            now=now,
        )
        assert crl.next_update_utc is not None
        session.add(
            PublishedCrl(
                issuer_fingerprint=issuer,
                number=number,
                der=crl.public_bytes(serialization.Encoding.DER),
                this_update=now,
                next_update=crl.next_update_utc,
            )
        )
        return crl

    # -- devices ---------------------------------------------------------------------------

    def device_certificate(self, address: str) -> x509.Certificate:
        with self.sessions() as session:
            der = session.scalar(
                select(Certificate.x509_der).where(Certificate.address == Web3.to_checksum_address(address))
            )
        if der is None:
            raise NotFound(f"no X.509 certificate was issued for device {address}")
        return x509.load_der_x509_certificate(der)

    def trust_path(self, address: str, *, root_fingerprint: bytes) -> TrustPath:
        """The device's certificate under the manufacturer root the chain names, and the anchor."""
        return TrustPath(
            device=self.device_certificate(address),
            manufacturer_root=self.ca_certificate(root_fingerprint),
            foundation_root=self.foundation_root(),
        )

    def issuer_of(self, certificate: x509.Certificate) -> x509.Certificate:
        """The manufacturer root (known here) that signed a device certificate."""
        with self.sessions() as session:
            candidates = session.scalars(
                select(CaCertificate.der).where(CaCertificate.role == MANUFACTURER_ROOT)
            )
            for der in candidates:
                issuer = x509.load_der_x509_certificate(der)
                if issuer.subject == certificate.issuer:
                    try:
                        certificate.verify_directly_issued_by(issuer)
                    except (ValueError, TypeError, InvalidSignature):
                        continue
                    return issuer
        raise NotFound(f"the issuer of {describe(certificate)} is not a manufacturer root known here")

    @staticmethod
    def _add_ca(session: Session, certificate: x509.Certificate, role: str, **identity: object) -> None:
        session.add(
            CaCertificate(
                fingerprint=fingerprint(certificate).hex(),
                role=role,
                der=certificate.public_bytes(serialization.Encoding.DER),
                **identity,
            )
        )


def csr_public_key(csr_pem: bytes) -> ec.EllipticCurvePublicKey:
    """The key a manufacturer's root-certificate request asks to certify (P-256, self-signed)."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise PkiError("the root certificate request is not a PEM-encoded PKCS#10 CSR") from exc
    if not csr.is_signature_valid:
        raise PkiError("the root certificate request's signature does not verify")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise PkiError("the root certificate request must be for an ECDSA P-256 key")
    return key
