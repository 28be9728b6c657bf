"""Building and signing real EIP-4361 messages with eth-account keys, for the auth tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from siwe import SiweMessage
from siwe.siwe import ISO8601Datetime

DOMAIN = "portal.example:8000"
URI = "https://portal.example:8000"
CHAIN_ID = 31337
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def message(account: LocalAccount, nonce: str, *, issued_at: datetime = T0, **fields: Any) -> str:
    values: dict[str, Any] = {
        "domain": DOMAIN,
        "address": account.address,
        "statement": "Sign in to devicemint.",
        "uri": URI,
        "version": "1",
        "chain_id": CHAIN_ID,
        "nonce": nonce,
        "issued_at": ISO8601Datetime.from_datetime(issued_at),
    }
    for name in ("expiration_time", "not_before"):
        if isinstance(fields.get(name), datetime):
            fields[name] = ISO8601Datetime.from_datetime(fields[name])
    values.update(fields)
    return SiweMessage(**values).prepare_message()


def sign(account: LocalAccount, text: str) -> str:
    return "0x" + account.sign_message(encode_defunct(text=text)).signature.hex()


def signed(account: LocalAccount, nonce: str, **fields: Any) -> tuple[str, str]:
    text = message(account, nonce, **fields)
    return text, sign(account, text)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
