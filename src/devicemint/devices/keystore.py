"""Device keystore: many device private keys in one passphrase-encrypted file.

A simulated factory batch comes with the private keys of its devices (a real
factory keeps them in the devices' secure elements; the simulator must keep
them somewhere so lifecycle records can later be signed by "the device").
They are stored together, encrypted as a whole:

* key derivation: scrypt (n=2**15, r=8, p=1, 32-byte key, random 16-byte salt);
* encryption: AES-256-GCM with a random 12-byte nonce; the header (format,
  version, KDF and cipher parameters) is the associated data, so it cannot be
  altered without the passphrase check failing;
* the file is a small JSON envelope; the plaintext is JSON
  ``{"0xAddress": "hex private key", ...}``.

Files are written to a temporary file, fsynced and atomically renamed, with
mode 0600. Private keys are never logged and never appear in exception
messages.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from devicemint.devices.proof import address_of_private_key, checksum_address
from devicemint.errors import DevicemintError
from devicemint.files import write_atomically

__all__ = ["FORMAT", "VERSION", "KeystoreError", "read_keystore", "write_keystore"]

FORMAT = "devicemint-device-keystore"
VERSION = 1
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
KEY_LENGTH = 32
SALT_LENGTH = 16
NONCE_LENGTH = 12
# Refuse absurd KDF parameters from a file before spending memory on them.
_MAX_SCRYPT_N = 2**20


class KeystoreError(DevicemintError):
    """The keystore cannot be read or written (wrong passphrase, damaged file, bad key)."""


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    kdf = Scrypt(salt=salt, length=KEY_LENGTH, n=n, r=r, p=p)
    return kdf.derive(passphrase.encode("utf-8"))


def _header(salt: bytes, nonce: bytes, n: int, r: int, p: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "kdf": "scrypt",
        "kdfparams": {
            "n": n,
            "r": r,
            "p": p,
            "dklen": KEY_LENGTH,
            "salt": base64.b64encode(salt).decode("ascii"),
        },
        "cipher": "aes-256-gcm",
        "nonce": base64.b64encode(nonce).decode("ascii"),
    }


def _associated_data(header: Mapping[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def write_keystore(path: str | Path, keys: Mapping[str, bytes], passphrase: str) -> None:
    """Encrypt ``{address: 32-byte private key}`` into ``path`` (atomically, mode 0600).

    Every key must belong to the address it is filed under; a mismatch is
    refused (naming the address, not the key).
    """
    if not passphrase:
        raise KeystoreError("the keystore passphrase must not be empty")
    path = Path(path)
    plain: dict[str, str] = {}
    for address, key in keys.items():
        key = bytes(key)
        if len(key) != 32:
            raise KeystoreError(f"the private key for {address} is not 32 bytes")
        try:
            derived = address_of_private_key(key)
        except ValueError:
            raise KeystoreError(f"the private key for {address} is not a valid secp256k1 key") from None
        if derived.lower() != address.lower():
            raise KeystoreError(f"the private key filed under {address} belongs to another address")
        plain[derived] = key.hex()

    salt = os.urandom(SALT_LENGTH)
    nonce = os.urandom(NONCE_LENGTH)
    header = _header(salt, nonce, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    secret = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    plaintext = json.dumps(plain, separators=(",", ":")).encode("utf-8")
    ciphertext = AESGCM(secret).encrypt(nonce, plaintext, _associated_data(header))
    envelope = dict(header, count=len(plain), ciphertext=base64.b64encode(ciphertext).decode("ascii"))
    write_atomically(path, json.dumps(envelope, indent=2).encode("utf-8") + b"\n")


def read_keystore(path: str | Path, passphrase: str) -> dict[str, bytes]:
    """Decrypt a keystore: ``{checksummed address: 32-byte private key}``."""
    path = Path(path)
    try:
        envelope = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise KeystoreError(f"{path}: no such keystore file") from None
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"{path}: not a devicemint keystore ({exc.__class__.__name__})") from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise KeystoreError(f"{path}: not a devicemint device keystore")
    if envelope.get("version") != VERSION:
        raise KeystoreError(
            f"{path}: keystore version {envelope.get('version')!r} is not supported (expected 1)"
        )
    try:
        params = envelope["kdfparams"]
        n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(params["salt"], validate=True)
        nonce = base64.b64decode(envelope["nonce"], validate=True)
        ciphertext = base64.b64decode(envelope["ciphertext"], validate=True)
        if (
            envelope["kdf"] != "scrypt"
            or envelope["cipher"] != "aes-256-gcm"
            or params["dklen"] != KEY_LENGTH
        ):
            raise ValueError("unsupported kdf or cipher")
        if not (1 < n <= _MAX_SCRYPT_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
            raise ValueError("scrypt parameters out of range")
        header = _header(salt, nonce, n, r, p)
    except (KeyError, TypeError, ValueError) as exc:
        raise KeystoreError(f"{path}: damaged keystore header ({exc})") from None
    secret = _derive(passphrase, salt, n, r, p)
    try:
        plaintext = AESGCM(secret).decrypt(nonce, ciphertext, _associated_data(header))
    except InvalidTag:
        raise KeystoreError(f"{path}: wrong passphrase, or the keystore file was modified") from None
    try:
        stored = json.loads(plaintext)
        return {checksum_address(bytes.fromhex(a[2:])): bytes.fromhex(k) for a, k in stored.items()}
    except (ValueError, AttributeError, TypeError):
        raise KeystoreError(f"{path}: keystore content is damaged") from None
