"""EIP-712 typed data as wallets and eth_account take it.

Every devicemint signature uses the same domain fields (name, version, chain id, verifying
contract), so a signature made for one chain or contract is worthless on any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DOMAIN_FIELDS = (
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
)


def typed_data(
    *,
    domain: Mapping[str, Any],
    primary_type: str,
    fields: Sequence[Mapping[str, str]],
    message: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": [dict(f) for f in DOMAIN_FIELDS], primary_type: [dict(f) for f in fields]},
        "primaryType": primary_type,
        "domain": dict(domain),
        "message": dict(message),
    }
