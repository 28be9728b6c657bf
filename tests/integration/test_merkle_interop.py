"""Our Merkle tree against the real @openzeppelin/merkle-tree library, run by node."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from devicemint.devices.merkle import MerkleTree, leaf_hash, verify_proof

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "js" / "merkle_interop.js"
NODE_MODULES = REPO / "node_modules"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH; the Merkle interop test needs it (it is part of the toolchain)")
    if not (NODE_MODULES / "@openzeppelin" / "merkle-tree").is_dir():
        pytest.fail(f"@openzeppelin/merkle-tree is not installed under {NODE_MODULES}; run `npm ci`")
    return node


def _values(n: int, rng: random.Random) -> list[tuple[str, bytes]]:
    values = []
    for _ in range(n):
        address = "0x" + rng.randbytes(20).hex()
        values.append((address, rng.randbytes(32)))
    return values


def _run_js(tmp_path: Path, values, root: bytes, proofs) -> dict:
    payload = {
        "values": [[address, "0x" + doc.hex()] for address, doc in values],
        "root": "0x" + root.hex(),
        "proofs": [["0x" + p.hex() for p in proof] for proof in proofs],
    }
    data = tmp_path / "values.json"
    data.write_text(json.dumps(payload))
    result = subprocess.run(
        [_node(), str(SCRIPT), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"DEVICEMINT_NODE_MODULES": str(NODE_MODULES), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_root_and_every_proof_match_openzeppelin(tmp_path: Path, size: int) -> None:
    rng = random.Random(size)
    values = _values(size, rng)
    leaves = [leaf_hash(address, doc) for address, doc in values]
    tree = MerkleTree.build(leaves)
    proofs = [tree.proof_for(leaf) for leaf in leaves]

    js = _run_js(tmp_path, values, tree.root, proofs)

    assert js["root"] == "0x" + tree.root.hex()
    # Same flat layout, node for node (this is what to_bytes stores).
    assert js["dump"] == ["0x" + node.hex() for node in tree.nodes]
    for i, proof in enumerate(proofs):
        assert js["proofs"][i] == ["0x" + p.hex() for p in proof], f"proof of value {i} differs"
        assert verify_proof(tree.root, leaves[i], proof)
    assert js["ourProofsAccepted"] == [True] * size


def test_checksummed_and_lowercase_addresses_give_the_same_leaf(tmp_path: Path) -> None:
    # The JS library takes the address in any case; so must we.
    rng = random.Random(42)
    values = _values(3, rng)
    mixed = [("0x" + address[2:].upper(), doc) for address, doc in values]
    tree = MerkleTree.build([leaf_hash(a, d) for a, d in mixed])
    proofs = [tree.proof_for(leaf_hash(a, d)) for a, d in mixed]
    js = _run_js(tmp_path, values, tree.root, proofs)
    assert js["root"] == "0x" + tree.root.hex()
    assert js["ourProofsAccepted"] == [True] * 3


def test_a_wrong_proof_is_refused_by_openzeppelin_too(tmp_path: Path) -> None:
    rng = random.Random(7)
    values = _values(7, rng)
    leaves = [leaf_hash(address, doc) for address, doc in values]
    tree = MerkleTree.build(leaves)
    proofs = [tree.proof_for(leaf) for leaf in leaves]
    proofs[3] = proofs[4]  # proof of a different leaf
    js = _run_js(tmp_path, values, tree.root, proofs)
    assert js["ourProofsAccepted"][3] is False
    assert not verify_proof(tree.root, leaves[3], proofs[3])
