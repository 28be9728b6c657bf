"""Signing keys: the encrypted key file, the passphrase rules and the Signer adapter."""

from __future__ import annotations

import base64
import copy
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from devicemint.config import Settings
from devicemint.errors import ConfigError, KeyRefused
from devicemint.pki.errors import PkiError
from devicemint.pki.profiles import CertificateAuthority, DeviceIssuer, foundation_root
from devicemint.pki.signing import DEV_PKI_PASSPHRASE, KeyFileSigner, Signer, issuer_key, pki_passphrase
from devicemint.pki.trust import TrustPath, path_problems

from .helpers import NOW, Device, MemoryHsm, issue_device, make_manufacturer

PASSPHRASE = "correct horse battery staple"


def private_scalar(signer: KeyFileSigner) -> bytes:
    # The test reaches into the signer on purpose: to prove the secret is nowhere it should not be.
    return signer._key.private_numbers().private_value.to_bytes(32, "big")


def pem_body(pem: bytes) -> bytes:
    lines = [line for line in pem.splitlines() if not line.startswith(b"-----")]
    return base64.b64decode(b"".join(lines))


def write_pem(path: Path, key: object, encryption: serialization.KeySerializationEncryption) -> Path:
    path.write_bytes(
        key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
    )
    return path


def verifies(public_key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


# -- KeyFileSigner -------------------------------------------------------------------------------


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "ca.key.pem"


@pytest.fixture
def generated(key_path: Path) -> KeyFileSigner:
    return KeyFileSigner.generate(key_path, PASSPHRASE)


def test_generated_key_file_is_private_and_alone(generated: KeyFileSigner, key_path: Path) -> None:
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    # The atomic write leaves no temporary file behind.
    assert [p.name for p in key_path.parent.iterdir()] == [key_path.name]


def test_generated_key_file_is_encrypted_pkcs8(generated: KeyFileSigner, key_path: Path) -> None:
    pem = key_path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert pem.rstrip().endswith(b"-----END ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):  # encrypted: unreadable without the passphrase
        serialization.load_pem_private_key(pem, None)


def test_key_file_contains_neither_passphrase_nor_key(generated: KeyFileSigner, key_path: Path) -> None:
    pem = key_path.read_bytes()
    secret = private_scalar(generated)
    plain_der = generated._key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert PASSPHRASE.encode() not in pem
    assert secret not in pem_body(pem)
    assert secret.hex().encode() not in pem
    assert plain_der not in pem_body(pem)


def test_generated_key_is_p256_and_loads_back(generated: KeyFileSigner, key_path: Path) -> None:
    loaded = KeyFileSigner.load(key_path, PASSPHRASE)
    assert isinstance(loaded.public_key().curve, ec.SECP256R1)
    assert loaded.public_key() == generated.public_key()
    assert loaded.path == key_path


def test_signature_is_ecdsa_sha256_by_the_loaded_key(generated: KeyFileSigner, key_path: Path) -> None:
    signature = KeyFileSigner.load(key_path, PASSPHRASE).sign(b"a CRL")
    assert verifies(generated.public_key(), signature, b"a CRL")
    assert not verifies(generated.public_key(), signature, b"another CRL")


def test_repr_names_the_file_only(generated: KeyFileSigner, key_path: Path) -> None:
    assert repr(generated) == f"KeyFileSigner({key_path})"
    assert private_scalar(generated).hex() not in repr(generated)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openssl_opens_the_key_file(generated: KeyFileSigner, key_path: Path, tmp_path: Path) -> None:
    passfile = tmp_path / "pass"
    passfile.write_text(PASSPHRASE)
    result = subprocess.run(
        ["openssl", "pkey", "-in", str(key_path), "-passin", f"file:{passfile}", "-pubout"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    expected = generated.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert result.stdout == expected


def test_wrong_passphrase_names_the_file_and_leaks_nothing(generated: KeyFileSigner, key_path: Path) -> None:
    wrong = "not the passphrase at all"
    with pytest.raises(PkiError) as caught:
        KeyFileSigner.load(key_path, wrong)
    message = str(caught.value)
    assert str(key_path) in message
    assert "wrong passphrase" in message
    assert wrong not in message
    assert PASSPHRASE not in message
    assert private_scalar(generated).hex() not in message
    # The library's own exception is not chained into the traceback.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_missing_key_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.key.pem"
    with pytest.raises(PkiError, match="no such key file") as caught:
        KeyFileSigner.load(missing, PASSPHRASE)
    assert str(missing) in str(caught.value)


def test_unencrypted_pkcs8_key_refused(tmp_path: Path) -> None:
    path = write_pem(
        tmp_path / "plain.pem", ec.generate_private_key(ec.SECP256R1()), serialization.NoEncryption()
    )
    with pytest.raises(PkiError, match="not encrypted") as caught:
        KeyFileSigner.load(path, PASSPHRASE)
    assert str(path) in str(caught.value)


def test_unencrypted_traditional_ec_key_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain-ec.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(PkiError, match="not encrypted"):
        KeyFileSigner.load(path, PASSPHRASE)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(ec.generate_private_key(ec.SECP384R1()), id="P-384"),
        pytest.param(ec.generate_private_key(ec.SECP256K1()), id="secp256k1"),
        pytest.param(ed25519.Ed25519PrivateKey.generate(), id="Ed25519"),
    ],
)
def test_encrypted_key_other_than_p256_refused(tmp_path: Path, key: object) -> None:
    path = write_pem(tmp_path / "other.pem", key, serialization.BestAvailableEncryption(PASSPHRASE.encode()))
    with pytest.raises(PkiError, match="not an ECDSA P-256 key") as caught:
        KeyFileSigner.load(path, PASSPHRASE)
    assert str(path) in str(caught.value)


def test_garbage_in_an_encrypted_key_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pem"
    path.write_bytes(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
    with pytest.raises(PkiError, match="cannot decrypt"):
        KeyFileSigner.load(path, PASSPHRASE)


def test_generate_refuses_to_overwrite(generated: KeyFileSigner, key_path: Path) -> None:
    before = key_path.read_bytes()
    with pytest.raises(PkiError, match="refusing to overwrite") as caught:
        KeyFileSigner.generate(key_path, "another passphrase")
    assert str(key_path) in str(caught.value)
    assert key_path.read_bytes() == before
    assert KeyFileSigner.load(key_path, PASSPHRASE).public_key() == generated.public_key()


def test_each_generated_key_is_new(tmp_path: Path) -> None:
    first = KeyFileSigner.generate(tmp_path / "a.pem", PASSPHRASE)
    second = KeyFileSigner.generate(tmp_path / "b.pem", PASSPHRASE)
    assert first.public_key() != second.public_key()


# -- pki_passphrase --------------------------------------------------------------------------------


def test_dev_passphrase_is_the_default_on_the_local_chain() -> None:
    assert pki_passphrase(Settings(chain_id=31337)) == DEV_PKI_PASSPHRASE


def test_configured_passphrase_wins_on_the_local_chain() -> None:
    assert pki_passphrase(Settings(chain_id=31337, pki_passphrase="s3cret")) == "s3cret"


def test_configured_passphrase_used_on_another_chain() -> None:
    assert pki_passphrase(Settings(chain_id=137, pki_passphrase="s3cret")) == "s3cret"


@pytest.mark.parametrize("configured", [None, ""])
def test_missing_passphrase_on_another_chain(configured: str | None) -> None:
    with pytest.raises(ConfigError, match="no passphrase for the CA keys on chain 137"):
        pki_passphrase(Settings(chain_id=137, pki_passphrase=configured))


def test_dev_passphrase_refused_on_another_chain() -> None:
    with pytest.raises(KeyRefused, match="chain 137"):
        pki_passphrase(Settings(chain_id=137, pki_passphrase=DEV_PKI_PASSPHRASE))


def test_dev_passphrase_from_a_file_refused_on_another_chain(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(f"{DEV_PKI_PASSPHRASE}\n")
    with pytest.raises(KeyRefused):
        pki_passphrase(Settings(chain_id=137, pki_passphrase_file=secret))


def test_passphrase_file_is_read_and_stripped(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("  from a mounted secret \n\n")
    settings = Settings(chain_id=137, pki_passphrase_file=secret, pki_passphrase="from the environment")
    assert pki_passphrase(settings) == "from a mounted secret"


@pytest.mark.parametrize("chain_id", [31337, 137])
@pytest.mark.parametrize("content", ["", " \n\t\n"])
def test_empty_passphrase_file_refused(tmp_path: Path, content: str, chain_id: int) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(content)
    with pytest.raises(ConfigError, match="empty"):
        pki_passphrase(Settings(chain_id=chain_id, pki_passphrase_file=secret))


def test_unreadable_passphrase_file_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-secret"
    with pytest.raises(ConfigError) as caught:
        pki_passphrase(Settings(chain_id=31337, pki_passphrase_file=missing))
    assert str(missing) in str(caught.value)


# -- Signer protocol and the builder adapter ----------------------------------------------------


def test_memory_hsm_and_key_file_are_signers(generated: KeyFileSigner) -> None:
    assert isinstance(MemoryHsm(), Signer)
    assert isinstance(generated, Signer)
    assert not isinstance(object(), Signer)


def test_custom_signer_signs_a_foundation_root() -> None:
    hsm = MemoryHsm()
    root = foundation_root(hsm, organisation="HSM Foundation", now=NOW)
    assert len(hsm.calls) == 1
    assert hsm.calls[0] == root.tbs_certificate_bytes
    root.verify_directly_issued_by(root)
    assert root.public_key() == hsm.public_key()
    assert root.signature_hash_algorithm is not None
    assert root.signature_hash_algorithm.name == "sha256"


def test_custom_signers_sign_a_whole_chain_that_verifies() -> None:
    foundation_hsm, manufacturer_hsm = MemoryHsm(), MemoryHsm()
    foundation = CertificateAuthority(
        foundation_root(foundation_hsm, organisation="F", now=NOW), foundation_hsm
    )
    manufacturer = make_manufacturer(foundation, manufacturer_hsm)
    device = Device.new()
    device_cert = issue_device(DeviceIssuer(manufacturer, chain_id=31337), device)

    assert (len(foundation_hsm.calls), len(manufacturer_hsm.calls)) == (2, 1)
    assert manufacturer_hsm.calls == [device_cert.tbs_certificate_bytes]
    device_cert.verify_directly_issued_by(manufacturer.certificate)
    path = TrustPath(device_cert, manufacturer.certificate, foundation.certificate)
    assert path_problems(path, at=NOW.replace(year=2026)) == []


def test_adapter_forwards_sha256_signatures() -> None:
    hsm = MemoryHsm()
    key = issuer_key(hsm)
    signature = key.sign(b"tbs", ec.ECDSA(hashes.SHA256()))
    assert hsm.calls == [b"tbs"]
    assert verifies(hsm.public_key(), signature, b"tbs")
    assert key.public_key() == hsm.public_key()
    assert isinstance(key.curve, ec.SECP256R1)
    assert key.key_size == 256


@pytest.mark.parametrize(
    "algorithm",
    [
        pytest.param(ec.ECDSA(hashes.SHA384()), id="sha384"),
        pytest.param(ec.ECDSA(hashes.SHA1()), id="sha1"),
        pytest.param(ec.ECDSA(Prehashed(hashes.SHA256())), id="prehashed-sha256"),
    ],
)
def test_adapter_refuses_other_than_sha256(algorithm: ec.EllipticCurveSignatureAlgorithm) -> None:
    hsm = MemoryHsm()
    with pytest.raises(PkiError, match="SHA-256"):
        issuer_key(hsm).sign(b"tbs", algorithm)
    assert hsm.calls == []


def test_builder_with_sha384_refused_before_the_signer_signs() -> None:
    hsm = MemoryHsm()
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(hsm.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW.replace(year=2026))
    )
    with pytest.raises(PkiError, match="SHA-256"):
        builder.sign(issuer_key(hsm), hashes.SHA384())
    assert hsm.calls == []


def test_adapter_never_reveals_or_uses_the_key_otherwise() -> None:
    key = issuer_key(MemoryHsm())
    with pytest.raises(PkiError):
        key.private_numbers()
    with pytest.raises(PkiError):
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    with pytest.raises(PkiError):
        key.exchange(ec.ECDH(), ec.generate_private_key(ec.SECP256R1()).public_key())
    assert copy.copy(key) is key
    assert copy.deepcopy(key) is key
