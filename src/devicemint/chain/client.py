"""Connecting to the configured chain."""

from __future__ import annotations

import requests
from web3 import Web3

from devicemint.config import Settings
from devicemint.errors import ChainError


def connect(settings: Settings) -> Web3:
    """A Web3 for the configured endpoint, refusing a node on another chain than configured."""
    url = settings.effective_rpc_url
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 120}))
    try:
        chain_id = int(w3.eth.chain_id)
    except requests.RequestException as exc:
        hint = " (start the local node with `devicemint node start`)" if settings.is_local_chain else ""
        raise ChainError(f"cannot reach the chain at {url}{hint}") from exc
    if chain_id != settings.chain_id:
        raise ChainError(
            f"the node at {url} is chain {chain_id}, but the settings say chain {settings.chain_id}; "
            "set DEVICEMINT_CHAIN_ID to match or use another DEVICEMINT_RPC_URL"
        )
    return w3
