"""Dev keys are for chain 31337 only; elsewhere an encrypted keystore is required."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from devicemint.chain.keys import DevRole, dev_account, load_signer
from devicemint.chain.tx import sender_lock
from devicemint.config import Settings
from devicemint.errors import ChainError, ConfigError, KeyRefused


def test_dev_account_is_used_on_the_local_chain() -> None:
    signer = load_signer(Settings(), DevRole.MANUFACTURER, chain_id=31337)
    assert signer.address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_no_key_on_another_chain_is_refused() -> None:
    with pytest.raises(KeyRefused, match="chain 137"):
        load_signer(Settings(chain_id=137), DevRole.MANUFACTURER, chain_id=137)


def _keystore(tmp_path: Path, key: bytes, passphrase: str) -> Path:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(Account.encrypt(key, passphrase, kdf="scrypt", iterations=2**10)))
    return path


def test_a_dev_key_inside_a_keystore_is_still_refused_on_another_chain(tmp_path: Path) -> None:
    path = _keystore(tmp_path, dev_account(0).key, "pw")
    settings = Settings(chain_id=137, key_file=path, key_passphrase="pw")
    with pytest.raises(KeyRefused, match="public development key"):
        load_signer(settings, DevRole.FOUNDATION, chain_id=137)


def test_an_encrypted_keystore_is_used_on_another_chain(tmp_path: Path) -> None:
    account = Account.create()
    path = _keystore(tmp_path, account.key, "correct horse")
    settings = Settings(chain_id=137, key_file=path, key_passphrase="correct horse")
    assert load_signer(settings, DevRole.FOUNDATION, chain_id=137).address == account.address


def test_wrong_passphrase_says_so_without_echoing_secrets(tmp_path: Path) -> None:
    account = Account.create()
    path = _keystore(tmp_path, account.key, "right")
    settings = Settings(chain_id=137, key_file=path, key_passphrase="wrong-secret")
    with pytest.raises(ConfigError) as caught:
        load_signer(settings, DevRole.FOUNDATION, chain_id=137)
    assert "cannot decrypt" in str(caught.value)
    assert "wrong-secret" not in str(caught.value) and account.key.hex() not in str(caught.value)


def test_one_process_per_sender(tmp_path: Path) -> None:
    address = dev_account(1).address
    with sender_lock(tmp_path, address):
        with pytest.raises(ChainError, match="another devicemint process"), sender_lock(tmp_path, address):
            pass
        with sender_lock(tmp_path, dev_account(2).address):  # another key is independent
            pass
    with sender_lock(tmp_path, address):  # released when the holder finished
        pass
