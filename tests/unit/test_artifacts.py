"""The committed contract artifacts match contracts/ exactly, and load from the package."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from devicemint.chain.artifacts import ARTIFACT_NAMES, decode_custom_error, load_artifact

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "build_contracts.mjs"
ARTIFACTS = ROOT / "src" / "devicemint" / "chain" / "artifacts"


def run_check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(root / "scripts" / "build_contracts.mjs"), "--check"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_committed_artifacts_match_sources() -> None:
    result = run_check(ROOT)
    assert result.returncode == 0, result.stderr


def test_check_names_every_artifact_that_disagrees(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "contracts", copy / "contracts")
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    shutil.copytree(ARTIFACTS, copy / "src" / "devicemint" / "chain" / "artifacts")
    (copy / "node_modules").symlink_to(ROOT / "node_modules")
    # A source edit (even a comment changes the metadata hash in the bytecode) ...
    certificate = copy / "contracts" / "DeviceCertificate.sol"
    certificate.write_text(certificate.read_text() + "\n// tampered\n")
    # ... and a hand-edited artifact are both caught.
    token = copy / "src" / "devicemint" / "chain" / "artifacts" / "StakingToken.json"
    tampered = token.read_text().replace('"bytecode": "0x', '"bytecode": "0x00', 1)
    assert tampered != token.read_text()
    token.write_text(tampered)
    stale = copy / "src" / "devicemint" / "chain" / "artifacts" / "Removed.json"
    stale.write_text("{}\n")
    result = run_check(copy)
    assert result.returncode == 1
    assert "DeviceCertificate.json" in result.stderr
    assert "StakingToken.json" in result.stderr
    assert "Removed.json" in result.stderr
    for untouched in ("DeviceLicense.json", "ManufacturerLicense.json", "NaiveCertificate.json"):
        assert untouched not in result.stderr


def test_artifact_files_are_canonical_json() -> None:
    for name in ARTIFACT_NAMES:
        text = (ARTIFACTS / f"{name}.json").read_text()
        data = json.loads(text)
        assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert data["contractName"] == name
        assert data["compiler"]["version"].startswith("0.8.30+")
        assert data["compiler"]["settings"]["evmVersion"] == "cancun"
        assert len(data["sourceHash"]) == 64


def test_load_artifact() -> None:
    artifact = load_artifact("DeviceCertificate")
    assert artifact.name == "DeviceCertificate"
    assert artifact.bytecode.startswith("0x") and len(artifact.bytecode) > 1000
    assert artifact.deployed_bytecode.startswith("0x")
    names = {item.get("name") for item in artifact.abi}
    assert {"openBatch", "mintBatch", "certificate", "BatchOpened", "DevicesMinted"} <= names
    assert load_artifact("DeviceCertificate") is artifact  # cached
    with pytest.raises(KeyError, match="no contract artifact"):
        load_artifact("Nope")


def test_decode_custom_error() -> None:
    selector = function_signature_to_4byte_selector("DeviceAlreadyMinted(uint256,address)")
    data = selector + encode(["uint256", "address"], [3, "0x" + "ab" * 20])
    decoded = decode_custom_error("0x" + data.hex())
    assert decoded is not None
    assert decoded.name == "DeviceAlreadyMinted"
    assert decoded.args == (3, "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB")
    assert decoded.describe().startswith("DeviceAlreadyMinted(3, ")
    assert decode_custom_error(b"\x12\x34\x56\x78") is None
    assert decode_custom_error(selector + b"\x00") is None  # truncated arguments
