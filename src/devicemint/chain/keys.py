"""Signing keys for the parties that act on chain.

On the local dev chain (id 31337) each role uses one of anvil's well-known dev accounts, so the
demo runs with no set-up. On any other chain the key comes from an encrypted eth-account (V3)
keystore named in the settings, and the dev keys are refused outright: they are public.
"""

from __future__ import annotations

import json
from enum import IntEnum
from functools import cache

from eth_account import Account
from eth_account.signers.local import LocalAccount

from devicemint.config import LOCAL_CHAIN_ID, Settings
from devicemint.errors import ConfigError, KeyRefused

DEV_MNEMONIC = "test test test test test test test test test test test junk"


class DevRole(IntEnum):
    """Which dev account index each party uses on the local chain."""

    FOUNDATION = 0
    MANUFACTURER = 1
    COMMITTEE_1 = 2
    COMMITTEE_2 = 3
    COMMITTEE_3 = 4
    AUDITOR = 5
    OWNER = 6
    CX_AUDITOR = 7
    TREASURY = 9


@cache
def dev_account(index: int) -> LocalAccount:
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


@cache
def dev_addresses(count: int = 20) -> frozenset[str]:
    return frozenset(dev_account(i).address for i in range(count))


def refuse_dev_key(account: LocalAccount, chain_id: int) -> None:
    """Dev keys are published with every anvil; using one on a real chain loses the funds."""
    if chain_id != LOCAL_CHAIN_ID and account.address in dev_addresses():
        raise KeyRefused(
            f"{account.address} is a public development key; it is refused on chain {chain_id} "
            f"(only chain {LOCAL_CHAIN_ID} accepts dev keys). Use an encrypted keystore (key_file)."
        )


def load_signer(settings: Settings, role: DevRole, *, chain_id: int) -> LocalAccount:
    """The key that acts for `role`: the configured keystore, or the dev account on 31337."""
    if settings.key_file is not None:
        if settings.key_passphrase is None:
            raise ConfigError(f"key_file {settings.key_file} is set but DEVICEMINT_KEY_PASSPHRASE is not")
        try:
            keystore = json.loads(settings.key_file.read_text(encoding="utf-8"))
            account = Account.from_key(Account.decrypt(keystore, settings.key_passphrase))
        except FileNotFoundError as exc:
            raise ConfigError(f"key_file {settings.key_file} does not exist") from exc
        except ValueError as exc:
            # Never echo the passphrase or key material; the cause is enough.
            raise ConfigError(
                f"key_file {settings.key_file}: cannot decrypt (wrong passphrase or not a V3 keystore)"
            ) from exc
        refuse_dev_key(account, chain_id)
        return account
    if chain_id != LOCAL_CHAIN_ID:
        raise KeyRefused(
            f"no signing key configured for chain {chain_id}: set DEVICEMINT_KEY_FILE and "
            f"DEVICEMINT_KEY_PASSPHRASE (dev keys are only used on chain {LOCAL_CHAIN_ID})"
        )
    return dev_account(int(role))
