"""Device keystore: scrypt + AES-256-GCM, atomic 0600 writes, clear refusals that never show a key."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from devicemint.devices.keystore import KeystoreError, read_keystore, write_keystore
from devicemint.devices.proof import address_of_private_key

KEYS = {address_of_private_key(k): k for k in (bytes([n]) * 32 for n in range(1, 4))}


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "devices.keys.json"
    write_keystore(path, KEYS, "correct horse")
    assert read_keystore(path, "correct horse") == KEYS


def test_lower_case_addresses_are_filed_checksummed(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_keystore(path, {a.lower(): k for a, k in KEYS.items()}, "pw")
    assert read_keystore(path, "pw") == KEYS


def test_file_is_an_encrypted_envelope_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_keystore(path, KEYS, "pw")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    envelope = json.loads(path.read_text())
    assert envelope["format"] == "devicemint-device-keystore"
    assert envelope["version"] == 1
    assert envelope["kdf"] == "scrypt"
    assert envelope["kdfparams"]["n"] == 2**15
    assert envelope["kdfparams"]["r"] == 8
    assert envelope["kdfparams"]["p"] == 1
    assert len(base64.b64decode(envelope["kdfparams"]["salt"])) == 16
    assert envelope["cipher"] == "aes-256-gcm"
    assert len(base64.b64decode(envelope["nonce"])) == 12
    assert envelope["count"] == 3
    raw = path.read_bytes()
    for address, key in KEYS.items():
        assert key.hex().encode() not in raw
        assert address.encode() not in raw  # even the addresses are inside the ciphertext
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]  # no temporary file left behind


def test_every_write_uses_a_fresh_salt_and_nonce(tmp_path: Path) -> None:
    write_keystore(tmp_path / "a.json", KEYS, "pw")
    write_keystore(tmp_path / "b.json", KEYS, "pw")
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["kdfparams"]["salt"] != b["kdfparams"]["salt"]
    assert a["nonce"] != b["nonce"]
    assert a["ciphertext"] != b["ciphertext"]


def test_wrong_passphrase_is_a_clear_error_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_keystore(path, KEYS, "right")
    with pytest.raises(KeystoreError) as excinfo:
        read_keystore(path, "wrong")
    message = str(excinfo.value)
    assert "wrong passphrase" in message
    assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__
    for key in KEYS.values():
        assert key.hex() not in message


@pytest.mark.parametrize(
    "tamper",
    [
        lambda env: env["kdfparams"].update(n=2**14),  # header is authenticated
        lambda env: env.update(nonce=base64.b64encode(os.urandom(12)).decode()),
        lambda env: env.update(
            ciphertext=base64.b64encode(
                bytes([base64.b64decode(env["ciphertext"])[0] ^ 1]) + base64.b64decode(env["ciphertext"])[1:]
            ).decode()
        ),
    ],
)
def test_modified_file_is_refused(tmp_path: Path, tamper) -> None:
    path = tmp_path / "k.json"
    write_keystore(path, KEYS, "pw")
    envelope = json.loads(path.read_text())
    tamper(envelope)
    path.write_text(json.dumps(envelope))
    with pytest.raises(KeystoreError, match="wrong passphrase, or the keystore file was modified"):
        read_keystore(path, "pw")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"not json", "not a devicemint keystore"),
        (b'{"format": "something-else"}', "not a devicemint device keystore"),
        (b'{"format": "devicemint-device-keystore", "version": 9}', "version 9 is not supported"),
        (b'{"format": "devicemint-device-keystore", "version": 1}', "damaged keystore header"),
    ],
)
def test_not_a_keystore(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "k.json"
    path.write_bytes(content)
    with pytest.raises(KeystoreError, match=fragment):
        read_keystore(path, "pw")


def test_absurd_kdf_parameters_are_refused_before_use(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_keystore(path, KEYS, "pw")
    envelope = json.loads(path.read_text())
    envelope["kdfparams"]["n"] = 2**30
    path.write_text(json.dumps(envelope))
    with pytest.raises(KeystoreError, match="scrypt parameters out of range"):
        read_keystore(path, "pw")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="no such keystore file"):
        read_keystore(tmp_path / "nope.json", "pw")


def test_key_filed_under_the_wrong_address_is_refused_naming_the_address_only(tmp_path: Path) -> None:
    (address, _), (_, other_key) = list(KEYS.items())[:2]
    with pytest.raises(KeystoreError) as excinfo:
        write_keystore(tmp_path / "k.json", {address: other_key}, "pw")
    assert address in str(excinfo.value)
    assert other_key.hex() not in str(excinfo.value)
    assert not (tmp_path / "k.json").exists()


@pytest.mark.parametrize("key", [b"\x01" * 31, b"\x00" * 32, b"\xff" * 32])
def test_invalid_private_keys_are_refused(tmp_path: Path, key: bytes) -> None:
    with pytest.raises(KeystoreError, match="0x" + "ab" * 20):
        write_keystore(tmp_path / "k.json", {"0x" + "ab" * 20: key}, "pw")


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="must not be empty"):
        write_keystore(tmp_path / "k.json", KEYS, "")


def test_overwrite_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_keystore(path, KEYS, "pw")
    first = dict(list(KEYS.items())[:1])
    write_keystore(path, first, "pw")
    assert read_keystore(path, "pw") == first
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]
