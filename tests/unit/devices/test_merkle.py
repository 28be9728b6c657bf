"""Merkle tree: layout, proofs, blob round trip, Solidity-equivalent leaf hash."""

from __future__ import annotations

import os
import random
import time

import pytest
from eth_abi import encode
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from devicemint.devices.merkle import (
    MerkleError,
    MerkleTree,
    keccak256,
    leaf_hash,
    node_hash,
    verify_proof,
)


def _leaves(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(n)]


@given(st.binary(max_size=600))
def test_fast_keccak_equals_eth_hash(data: bytes) -> None:
    assert keccak256(data) == keccak(data)


def test_leaf_hash_is_double_keccak_of_abi_encoding() -> None:
    address = "0x" + "ab" * 20
    doc = bytes(range(32))
    expected = keccak(keccak(encode(["address", "bytes32"], [address, doc])))
    assert leaf_hash(address, doc) == expected
    assert leaf_hash(bytes.fromhex("ab" * 20), doc) == expected
    assert leaf_hash("0x" + "AB" * 20, doc) == expected


@pytest.mark.parametrize(
    ("address", "doc", "fragment"),
    [
        ("0x" + "ab" * 19, bytes(32), "40 hex digits"),
        ("0x" + "zz" * 20, bytes(32), "not hexadecimal"),
        ("0x" + "ab" * 20, bytes(31), "32 bytes"),
    ],
)
def test_leaf_hash_refuses_malformed_input(address: str, doc: bytes, fragment: str) -> None:
    with pytest.raises(MerkleError, match=fragment):
        leaf_hash(address, doc)


def test_single_leaf_tree_is_its_own_root() -> None:
    (leaf,) = _leaves(1)
    tree = MerkleTree.build([leaf])
    assert tree.root == leaf
    assert tree.proof_for(leaf) == []
    assert verify_proof(tree.root, leaf, [])


def test_two_leaf_root_is_sorted_pair_hash() -> None:
    a, b = _leaves(2)
    tree = MerkleTree.build([a, b])
    assert tree.root == keccak(min(a, b) + max(a, b))
    assert tree.root == node_hash(a, b) == node_hash(b, a)


def test_layout_leaves_sorted_at_the_end_in_reverse() -> None:
    leaves = _leaves(5, seed=3)
    tree = MerkleTree.build(leaves)
    assert len(tree.nodes) == 9
    assert list(tree.nodes[4:]) == sorted(leaves, reverse=True)
    assert tree.leaves() == sorted(leaves)
    for i in range(4):
        assert tree.nodes[i] == node_hash(tree.nodes[2 * i + 1], tree.nodes[2 * i + 2])
    assert tree.leaf_index(min(leaves)) == 8
    assert tree.leaf_index(max(leaves)) == 4


def test_build_order_does_not_matter() -> None:
    leaves = _leaves(33, seed=5)
    shuffled = leaves[:]
    random.Random(1).shuffle(shuffled)
    assert MerkleTree.build(leaves).root == MerkleTree.build(shuffled).root


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 100])
def test_every_leaf_proves_and_a_modified_leaf_does_not(n: int) -> None:
    leaves = _leaves(n, seed=n)
    tree = MerkleTree.build(leaves)
    assert len(tree) == n
    for leaf in leaves:
        proof = tree.proof_for(leaf)
        assert verify_proof(tree.root, leaf, proof)
        modified = bytes([leaf[0] ^ 1]) + leaf[1:]
        assert not verify_proof(tree.root, modified, proof)
        if proof:
            bad = list(proof)
            bad[-1] = bytes([bad[-1][0] ^ 0x80]) + bad[-1][1:]
            assert not verify_proof(tree.root, leaf, bad)


def test_verify_proof_refuses_wrong_lengths_instead_of_raising() -> None:
    leaves = _leaves(4)
    tree = MerkleTree.build(leaves)
    proof = tree.proof_for(leaves[0])
    assert not verify_proof(tree.root[:31], leaves[0], proof)
    assert not verify_proof(tree.root, leaves[0] + b"\x00", proof)
    assert not verify_proof(tree.root, leaves[0], [*proof[:-1], proof[-1][:16]])


def test_unknown_leaf_is_a_clear_error() -> None:
    tree = MerkleTree.build(_leaves(4))
    stranger = b"\x11" * 32
    assert stranger not in tree
    with pytest.raises(MerkleError, match="not in this tree"):
        tree.proof_for(stranger)


def test_duplicate_leaves_are_kept_as_the_library_does() -> None:
    a, b = _leaves(2)
    tree = MerkleTree.build([a, b, a])
    assert len(tree.nodes) == 5
    assert verify_proof(tree.root, a, tree.proof_for(a))


def test_empty_and_malformed_leaves_refused() -> None:
    with pytest.raises(MerkleError, match="at least one leaf"):
        MerkleTree.build([])
    with pytest.raises(MerkleError, match="32 bytes"):
        MerkleTree.build([b"\x00" * 31])


@pytest.mark.parametrize("n", [1, 2, 6, 101])
def test_blob_round_trip(n: int) -> None:
    tree = MerkleTree.build(_leaves(n, seed=n))
    blob = tree.to_bytes()
    assert len(blob) == 32 * (2 * n - 1)
    assert blob[:32] == tree.root
    restored = MerkleTree.from_bytes(blob)
    assert restored == tree
    for leaf in tree.leaves():
        assert restored.proof_for(leaf) == tree.proof_for(leaf)


def test_corrupt_blob_refused() -> None:
    blob = bytearray(MerkleTree.build(_leaves(6)).to_bytes())
    with pytest.raises(MerkleError, match="multiple of 32"):
        MerkleTree.from_bytes(bytes(blob[:-1]))
    with pytest.raises(MerkleError, match="even count"):
        MerkleTree.from_bytes(bytes(blob[:64]))
    with pytest.raises(MerkleError, match="multiple of 32"):
        MerkleTree.from_bytes(b"")
    blob[-1] ^= 1  # a leaf changed: its parent no longer matches
    with pytest.raises(MerkleError, match="corrupt"):
        MerkleTree.from_bytes(bytes(blob))
    assert MerkleTree.from_bytes(bytes(blob), check=False).nodes[-1][-1] == blob[-1]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40))
def test_property_every_proof_verifies(leaves: list[bytes]) -> None:
    tree = MerkleTree.build(leaves)
    for leaf in leaves:
        assert verify_proof(tree.root, leaf, tree.proof_for(leaf))


def test_build_100k_leaves_well_under_a_second() -> None:
    leaves = [os.urandom(32) for _ in range(100_000)]
    start = time.perf_counter()
    tree = MerkleTree.build(leaves)
    elapsed = time.perf_counter() - start
    assert len(tree) == 100_000
    # ~0.3 s on our machines; generous margin for a busy CI box.
    assert elapsed < 1.5, f"building 100k leaves took {elapsed:.2f}s"


def test_repr_is_short() -> None:
    tree = MerkleTree.build(_leaves(1000))
    assert repr(tree) == f"MerkleTree(root=0x{tree.root.hex()}, leaves=1000)"


def test_fast_keccak_is_thread_safe() -> None:
    import threading

    inputs = [os.urandom(n) for n in range(0, 300, 7)]
    expected = [keccak(data) for data in inputs]
    failures: list[int] = []

    def work() -> None:
        for _ in range(200):
            for data, digest in zip(inputs, expected, strict=True):
                if keccak256(data) != digest:
                    failures.append(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


def test_fast_keccak_path_is_active() -> None:
    # The fallback is correct but ~3x slower; notice if a pycryptodome upgrade disables the fast path.
    from devicemint.devices import merkle

    assert merkle._keccak.__name__ == "fast_keccak"
