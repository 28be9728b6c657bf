"""Compiled contract artifacts shipped inside the package.

The JSON files under `devicemint/chain/artifacts/` are produced by `scripts/build_contracts.mjs`
from `contracts/` with the pinned solc and committed, so installing devicemint never needs a
Solidity compiler; `node scripts/build_contracts.mjs --check` proves they match the sources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from hexbytes import HexBytes

#: Every contract with an artifact. NaiveCertificate is the benchmark baseline, never deployed.
ARTIFACT_NAMES: tuple[str, ...] = (
    "StakingToken",
    "ManufacturerLicense",
    "DeviceLicense",
    "DeviceCertificate",
    "NaiveCertificate",
)


@dataclass(frozen=True)
class Artifact:
    """ABI and bytecode of one contract, as compiled by the project build."""

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: str
    deployed_bytecode: str
    source_hash: str
    compiler_version: str


@cache
def load_artifact(name: str) -> Artifact:
    """The packaged artifact of contract `name` (e.g. "DeviceCertificate"); read once, cached."""
    if name not in ARTIFACT_NAMES:
        raise KeyError(f"no contract artifact named {name!r}; known: {', '.join(ARTIFACT_NAMES)}")
    text = resources.files("devicemint.chain").joinpath("artifacts", f"{name}.json").read_text("utf-8")
    data = json.loads(text)
    return Artifact(
        name=data["contractName"],
        abi=tuple(data["abi"]),
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        source_hash=data["sourceHash"],
        compiler_version=data["compiler"]["version"],
    )


@dataclass(frozen=True)
class CustomError:
    """A Solidity custom error decoded from revert data."""

    name: str
    signature: str
    args: tuple[Any, ...]

    def describe(self) -> str:
        return f"{self.name}({', '.join(repr(a) for a in self.args)})"


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


@cache
def custom_errors() -> dict[bytes, tuple[str, str, tuple[str, ...]]]:
    """4-byte selector -> (name, signature, argument types) for every error in our ABIs."""
    found: dict[bytes, tuple[str, str, tuple[str, ...]]] = {}
    for contract_name in ARTIFACT_NAMES:
        for item in load_artifact(contract_name).abi:
            if item.get("type") != "error":
                continue
            types = tuple(_abi_type(p) for p in item["inputs"])
            signature = f"{item['name']}({','.join(types)})"
            found[function_signature_to_4byte_selector(signature)] = (item["name"], signature, types)
    return found


def decode_custom_error(data: str | bytes) -> CustomError | None:
    """Decodes revert data into the custom error it encodes, or None if it is not one of ours."""
    raw = HexBytes(data)
    known = custom_errors().get(bytes(raw[:4]))
    if known is None:
        return None
    name, signature, types = known
    try:
        args = abi_decode(list(types), bytes(raw[4:])) if types else ()
    except DecodingError:
        return None
    # Addresses as EIP-55 checksummed strings, the way web3 returns them everywhere else.
    args = tuple(to_checksum_address(v) if t == "address" else v for t, v in zip(types, args, strict=True))
    return CustomError(name=name, signature=signature, args=args)
