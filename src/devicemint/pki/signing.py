"""Keys that sign certificates and CRLs, behind one protocol so an HSM or a KMS can hold them.

The default is an encrypted key file: a P-256 key in PKCS#8 PEM, encrypted with the passphrase
(PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC, as `cryptography` writes it), so `openssl pkey`
opens it too. The key is decrypted into memory only; it is never printed or logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from devicemint.config import LOCAL_CHAIN_ID, Settings
from devicemint.errors import ConfigError, KeyRefused
from devicemint.files import write_atomically
from devicemint.pki.errors import PkiError

# Published with the code, like anvil's dev keys: encrypts CA keys on the local chain only.
DEV_PKI_PASSPHRASE = "devicemint-local-development-only"


@runtime_checkable
class Signer(Protocol):
    """An ECDSA P-256 key that signs without showing itself: a key file, an HSM, a cloud KMS."""

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The key's public half (what the certificate certifies)."""
        ...

    def sign(self, data: bytes) -> bytes:
        """A DER-encoded ECDSA signature over SHA-256(data)."""
        ...


class KeyFileSigner:
    """The default signer: a P-256 key from a passphrase-encrypted PKCS#8 file."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, *, path: Path) -> None:
        self._key = key
        self.path = path

    @classmethod
    def generate(cls, path: Path, passphrase: str) -> KeyFileSigner:
        """A new key, written encrypted (mode 0600) before anything is signed with it."""
        if path.exists():
            raise PkiError(f"{path} already holds a key; refusing to overwrite it")
        if not passphrase:
            raise PkiError(f"{path}: a CA key is only written encrypted, and the passphrase is empty")
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
        write_atomically(path, pem)
        return cls(key, path=path)

    @classmethod
    def load(cls, path: Path, passphrase: str) -> KeyFileSigner:
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise PkiError(f"{path}: no such key file") from None
        if b"ENCRYPTED PRIVATE KEY" not in pem:
            raise PkiError(f"{path}: the key is not encrypted; CA keys are only kept encrypted")
        try:
            key = serialization.load_pem_private_key(pem, passphrase.encode())
        except (ValueError, TypeError):
            # Never echo the passphrase or any key material: the file and the cause suffice.
            raise PkiError(
                f"{path}: cannot decrypt the key (wrong passphrase, or not a PKCS#8 key)"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise PkiError(f"{path}: the key is not an ECDSA P-256 key")
        return cls(key, path=path)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def __repr__(self) -> str:
        return f"KeyFileSigner({self.path})"


class _IssuerKey(ec.EllipticCurvePrivateKey):
    """`cryptography`'s certificate and CRL builders take a private-key object and call its
    `sign`; this one hands that call to any `Signer`, so the key itself can stay elsewhere."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    @property
    def curve(self) -> ec.EllipticCurve:
        return ec.SECP256R1()

    @property
    def key_size(self) -> int:
        return 256

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._signer.public_key()

    def sign(
        self, data: bytes | bytearray | memoryview, signature_algorithm: ec.EllipticCurveSignatureAlgorithm
    ) -> bytes:
        algorithm = getattr(signature_algorithm, "algorithm", None)
        if not isinstance(algorithm, hashes.SHA256) or isinstance(algorithm, Prehashed):
            raise PkiError("CA signatures are ECDSA with SHA-256")
        return self._signer.sign(bytes(data))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise PkiError("a CA key only signs")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise PkiError("a CA key does not reveal itself")

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        raise PkiError("a CA key does not reveal itself")

    def __copy__(self) -> _IssuerKey:
        return self

    def __deepcopy__(self, memo: dict) -> _IssuerKey:
        return self


def issuer_key(signer: Signer) -> ec.EllipticCurvePrivateKey:
    """`signer` in the form `cryptography`'s builders sign with."""
    return _IssuerKey(signer)


def pki_passphrase(settings: Settings) -> str:
    """The passphrase of this installation's CA keys: a file, the environment, or on 31337 the
    published dev passphrase, which every other chain refuses (it protects nothing)."""
    if settings.pki_passphrase_file is not None:
        try:
            passphrase = settings.pki_passphrase_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"pki_passphrase_file {settings.pki_passphrase_file}: cannot read it ({exc})"
            ) from exc
    elif settings.pki_passphrase:
        passphrase = settings.pki_passphrase
    elif settings.chain_id == LOCAL_CHAIN_ID:
        passphrase = DEV_PKI_PASSPHRASE
    else:
        raise ConfigError(
            f"no passphrase for the CA keys on chain {settings.chain_id}: set DEVICEMINT_PKI_PASSPHRASE "
            "or pki_passphrase_file (a file holding it)"
        )
    if not passphrase:
        raise ConfigError("the CA key passphrase is empty")
    if passphrase == DEV_PKI_PASSPHRASE and settings.chain_id != LOCAL_CHAIN_ID:
        raise KeyRefused(
            f"the development CA passphrase is published; it is refused on chain {settings.chain_id}"
        )
    return passphrase
