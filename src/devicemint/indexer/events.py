"""Raw logs of the programme's contracts decoded with their ABIs, and what each is about.

Logs are fetched raw (eth_getLogs) and decoded here with eth_abi: web3's per-log formatting
costs more than the node spends serving a 500-device mint, and an indexer replays millions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic, to_checksum_address

from devicemint.chain.artifacts import load_artifact

#: The contracts whose every event is kept (the staking token is the network's, not ours).
INDEXED_CONTRACTS = ("ManufacturerLicense", "DeviceLicense", "DeviceCertificate")
#: JSON numbers above this lose precision in JavaScript; such values are kept as strings.
_MAX_SAFE_INTEGER = 2**53 - 1


@dataclass(frozen=True)
class EventAbi:
    contract: str
    name: str
    indexed: tuple[tuple[str, str], ...]  # (name, type) in topic order
    data: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DecodedLog:
    block_number: int
    log_index: int
    block_hash: str
    tx_hash: str
    contract: str
    name: str
    args: dict[str, Any]


@cache
def event_abis(contract: str) -> dict[bytes, EventAbi]:
    """topic0 -> the event's decoding recipe, for one contract's artifact."""
    found = {}
    for item in load_artifact(contract).abi:
        if item.get("type") != "event":
            continue
        inputs = item["inputs"]
        topic = bytes(event_abi_to_log_topic(item))  # type: ignore[arg-type]
        found[topic] = EventAbi(
            contract=contract,
            name=item["name"],
            indexed=tuple((i["name"], i["type"]) for i in inputs if i["indexed"]),
            data=tuple((i["name"], i["type"]) for i in inputs if not i["indexed"]),
        )
    return found


def _json_value(kind: str, value: Any) -> Any:
    if kind == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and value > _MAX_SAFE_INTEGER:
        return str(value)
    return value


def decode_log(contract: str, raw: Mapping[str, Any]) -> DecodedLog | None:
    """A raw JSON-RPC log of `contract`, decoded; None for an event not in its ABI."""
    topics = [bytes.fromhex(t[2:]) for t in raw["topics"]]
    abi = event_abis(contract).get(topics[0]) if topics else None
    if abi is None:
        return None
    args: dict[str, Any] = {}
    for (name, kind), topic in zip(abi.indexed, topics[1:], strict=True):
        (args[name],) = abi_decode([kind], topic)
    values = abi_decode([kind for _, kind in abi.data], bytes.fromhex(raw["data"][2:]))
    args.update(zip((name for name, _ in abi.data), values, strict=True))
    kinds = dict(abi.indexed + abi.data)
    return DecodedLog(
        block_number=int(raw["blockNumber"], 16),
        log_index=int(raw["logIndex"], 16),
        block_hash=raw["blockHash"],
        tx_hash=raw["transactionHash"],
        contract=contract,
        name=abi.name,
        args={name: _json_value(kinds[name], value) for name, value in args.items()},
    )


def device_of(token_id: int | str) -> str:
    """The device address a certificate token id stands for."""
    return to_checksum_address(f"0x{int(token_id):040x}")


def subject_of(log: DecodedLog) -> str:
    """What an event is about: the key its projection (if any) is rebuilt by."""
    args = log.args
    if log.contract == "DeviceCertificate":
        token = args.get("tokenId", args.get("id"))
        if token is not None:
            return f"device:{device_of(token)}"
        if "batchId" in args:
            return f"batch:{args['batchId']}"
        if "deviceLicenceId" in args:
            return f"device_licence:{args['deviceLicenceId']}"
    if log.contract == "DeviceLicense":
        if "proposalId" in args:
            return f"proposal:{args['proposalId']}"
        if "licenceId" in args or "tokenId" in args:  # tokenId: the licence token itself
            return f"device_licence:{args.get('licenceId', args.get('tokenId'))}"
    if log.contract == "ManufacturerLicense":
        if "licenceId" in args:
            return f"manufacturer_licence:{args['licenceId']}"
        if "tokenId" in args:  # the soulbound licence token itself
            return f"manufacturer_licence:{args['tokenId']}"
        for key in ("staker", "manufacturer"):
            if key in args:
                return f"account:{args[key]}"
    return log.contract


def canonical_json(value: Mapping[str, Any]) -> str:
    """Compact JSON with sorted keys: the exact text stored (event arguments, webhook bodies)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
