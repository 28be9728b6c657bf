"""Batch commitments in the OpenZeppelin ``StandardMerkleTree`` format.

A factory batch commits to its certificate documents with one Merkle root on
chain. We use exactly the tree that ``@openzeppelin/merkle-tree``'s
``StandardMerkleTree.of(values, ["address", "bytes32"])`` builds (default
options, ``sortLeaves: true``), so that any OpenZeppelin-compatible verifier
(``MerkleProof.verify`` in Solidity, ``StandardMerkleTree.verify`` in JS) can
check a proof we hand out:

* leaf  = keccak256(keccak256(abi.encode(address, bytes32)))  (double hash,
  so a leaf can never be confused with an internal node);
* node  = keccak256(sorted(a, b))  (sorted pair, so proofs carry no left/right
  flags);
* the tree is a flat array, a complete binary tree whose node ``i`` has
  children ``2i+1`` and ``2i+2``; the leaves, sorted ascending, occupy the end
  of the array in reverse order (leaf ``k`` of the sorted list sits at index
  ``len(tree) - 1 - k``).

This module also carries :func:`keccak256`, the fast Keccak-256 the devices
package uses in its hot paths (see its docstring).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from eth_hash.auto import keccak as _eth_hash_keccak

from devicemint.errors import DevicemintError

__all__ = [
    "MerkleError",
    "MerkleTree",
    "keccak256",
    "leaf_hash",
    "node_hash",
    "process_proof",
    "verify_proof",
]

NODE_SIZE = 32


class MerkleError(DevicemintError, ValueError):
    """A tree blob, leaf or proof is malformed, or a leaf is not in the tree."""


# --------------------------------------------------------------------------- #
# Keccak-256
# --------------------------------------------------------------------------- #
#
# ``eth_hash.auto.keccak`` (pycryptodome backend) costs ~6.5 us per call on our
# machines, almost all of it in allocating a fresh hash object through cffi.
# Minting a 10,000-device batch hashes ~15 times per device, so that overhead
# alone would be a third of the per-device budget. We therefore drive
# pycryptodome's raw Keccak library directly with one reusable state per
# thread (absorb, digest, reset: ~2 us). The fast path is self-tested against
# eth_hash at import and we fall back to eth_hash if anything about
# pycryptodome's internals changes.


def _make_fast_keccak():  # pragma: no cover - exercised implicitly
    from Crypto.Hash.keccak import _raw_keccak_lib as lib
    from Crypto.Util._raw_api import SmartPointer, VoidPointer, c_size_t, c_ubyte, ffi

    absorb = lib.keccak_absorb
    digest = lib.keccak_digest
    reset = lib.keccak_reset
    local = threading.local()

    def _state():
        state = VoidPointer()
        rc = lib.keccak_init(state.address_of(), c_size_t(64), c_ubyte(24))
        if rc:
            raise RuntimeError(f"keccak_init failed ({rc})")
        out = ffi.new("uint8_t[32]")
        # The state lives as long as its thread; the SmartPointer frees it when the thread's
        # locals are collected.
        owner = SmartPointer(state.get(), lib.keccak_destroy)
        local.state = (owner.get(), out, ffi.buffer(out), owner)
        return local.state

    def fast_keccak(data: bytes) -> bytes:
        try:
            ptr, out, view, _ = local.state
        except AttributeError:
            ptr, out, view, _ = _state()
        absorb(ptr, data, len(data))
        digest(ptr, out, 32, 1)
        reset(ptr)
        return view[:]

    # Self-test: empty input, one block, several blocks.
    for probe in (b"", b"abc", bytes(range(256)) * 3):
        if fast_keccak(probe) != _eth_hash_keccak(probe):
            raise RuntimeError("fast keccak self-test failed")
    return fast_keccak


try:
    _keccak = _make_fast_keccak()
except (ImportError, AttributeError, TypeError, OSError, RuntimeError):
    # pycryptodome's internals changed: use the public (slower) API.
    _keccak = _eth_hash_keccak


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's hash, not NIST SHA3-256) of ``data``."""
    return _keccak(data)


# --------------------------------------------------------------------------- #
# Hashes
# --------------------------------------------------------------------------- #

_ZERO12 = bytes(12)


def _address_bytes(address: str | bytes) -> bytes:
    if isinstance(address, bytes | bytearray):
        raw = bytes(address)
    else:
        text = address[2:] if address[:2] in ("0x", "0X") else address
        if len(text) != 40:
            raise MerkleError(f"address must be 20 bytes (40 hex digits), got {len(text)} digits")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise MerkleError("address is not hexadecimal") from None
    if len(raw) != 20:
        raise MerkleError(f"address must be 20 bytes, got {len(raw)}")
    return raw


def leaf_hash(address: str | bytes, document_hash: bytes) -> bytes:
    """The leaf of one device: ``keccak256(keccak256(abi.encode(address, bytes32)))``.

    Identical to ``StandardMerkleTree``'s ``standardLeafHash(["address", "bytes32"], [address, hash])``
    and to the Solidity ``keccak256(bytes.concat(keccak256(abi.encode(device, documentHash))))``.
    """
    if len(document_hash) != 32:
        raise MerkleError(f"document hash must be 32 bytes, got {len(document_hash)}")
    return _keccak(_keccak(_ZERO12 + _address_bytes(address) + bytes(document_hash)))


def node_hash(a: bytes, b: bytes) -> bytes:
    """Internal node: keccak256 of the two children in ascending byte order."""
    return _keccak(a + b if a <= b else b + a)


def process_proof(leaf: bytes, proof: Iterable[bytes]) -> bytes:
    """Fold a proof onto a leaf; the result equals the root iff the proof is valid."""
    computed = leaf
    for sibling in proof:
        computed = _keccak(computed + sibling if computed <= sibling else sibling + computed)
    return computed


def verify_proof(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    """True iff ``proof`` proves that ``leaf`` is in the tree of ``root``.

    Malformed input (wrong lengths) is simply not a valid proof: returns False.
    """
    if len(root) != NODE_SIZE or len(leaf) != NODE_SIZE:
        return False
    if any(len(p) != NODE_SIZE for p in proof):
        return False
    return process_proof(bytes(leaf), (bytes(p) for p in proof)) == bytes(root)


# --------------------------------------------------------------------------- #
# The tree
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class MerkleTree:
    """A built tree: the flat node array in OpenZeppelin's layout.

    Build it with :meth:`build` from leaf hashes (see :func:`leaf_hash`), store
    it with :meth:`to_bytes` (one column per batch), restore it with
    :meth:`from_bytes`.
    """

    nodes: tuple[bytes, ...]
    _positions: dict[bytes, int] = field(default_factory=dict, repr=False, compare=False)

    # -- construction ------------------------------------------------------

    @classmethod
    def build(cls, leaves: Iterable[bytes]) -> MerkleTree:
        """Build the tree of these leaf hashes (any order; they are sorted, as the library does).

        Duplicate leaves are allowed (the library allows them); each gets its
        own position and :meth:`proof_for` proves one of them.
        """
        sorted_leaves = sorted(bytes(leaf) for leaf in leaves)
        n = len(sorted_leaves)
        if n == 0:
            raise MerkleError("a Merkle tree needs at least one leaf")
        for leaf in sorted_leaves:
            if len(leaf) != NODE_SIZE:
                raise MerkleError(f"every leaf must be 32 bytes, got one of {len(leaf)}")
        size = 2 * n - 1
        tree: list[bytes] = [b""] * (size - n)
        # Leaves at the end, in reverse sorted order.
        tree.extend(reversed(sorted_leaves))
        keccak = _keccak
        for i in range(size - n - 1, -1, -1):
            a = tree[2 * i + 1]
            b = tree[2 * i + 2]
            tree[i] = keccak(a + b if a <= b else b + a)
        return cls(nodes=tuple(tree))

    @classmethod
    def from_bytes(cls, blob: bytes, *, check: bool = True) -> MerkleTree:
        """Restore a tree from :meth:`to_bytes`.

        With ``check`` (the default) every internal node is recomputed, so a
        corrupted blob is refused rather than producing wrong proofs.
        """
        blob = bytes(blob)
        if not blob or len(blob) % NODE_SIZE:
            raise MerkleError(f"a tree blob is a non-empty multiple of 32 bytes, got {len(blob)} bytes")
        count = len(blob) // NODE_SIZE
        if count % 2 == 0:
            raise MerkleError(f"a tree of n leaves has 2n-1 nodes, got an even count ({count})")
        nodes = tuple(blob[i : i + NODE_SIZE] for i in range(0, len(blob), NODE_SIZE))
        if check:
            first_leaf = (count - 1) // 2
            for i in range(first_leaf - 1, -1, -1):
                if node_hash(nodes[2 * i + 1], nodes[2 * i + 2]) != nodes[i]:
                    raise MerkleError(f"tree blob is corrupt: node {i} does not match its children")
        return cls(nodes=nodes)

    def to_bytes(self) -> bytes:
        """The flat node array, 32 bytes per node, root first."""
        return b"".join(self.nodes)

    # -- queries -----------------------------------------------------------

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    @property
    def leaf_count(self) -> int:
        return (len(self.nodes) + 1) // 2

    def leaves(self) -> list[bytes]:
        """The leaf hashes in sorted (ascending) order."""
        n = self.leaf_count
        return list(reversed(self.nodes[len(self.nodes) - n :]))

    def leaf_index(self, leaf: bytes) -> int:
        """Position of ``leaf`` in the flat node array (the library's ``treeIndex``)."""
        positions = self._positions
        if not positions:
            n = self.leaf_count
            size = len(self.nodes)
            built: dict[bytes, int] = {}
            # setdefault keeps the first position of a duplicate leaf.
            for i in range(size - 1, size - 1 - n, -1):
                built.setdefault(self.nodes[i], i)
            # One C-level update: another thread never sees a half-built index.
            positions.update(built)
        try:
            return positions[bytes(leaf)]
        except KeyError:
            raise MerkleError(f"leaf 0x{bytes(leaf).hex()} is not in this tree") from None

    def __contains__(self, leaf: object) -> bool:
        if not isinstance(leaf, bytes | bytearray):
            return False
        try:
            self.leaf_index(bytes(leaf))
        except MerkleError:
            return False
        return True

    def proof_for(self, leaf: bytes) -> list[bytes]:
        """Sibling hashes from the leaf up to (not including) the root."""
        index = self.leaf_index(leaf)
        nodes = self.nodes
        proof: list[bytes] = []
        while index > 0:
            sibling = index - 1 if index % 2 == 0 else index + 1
            proof.append(nodes[sibling])
            index = (index - 1) // 2
        return proof

    def __len__(self) -> int:
        return self.leaf_count

    def __repr__(self) -> str:
        return f"MerkleTree(root=0x{self.root.hex()}, leaves={self.leaf_count})"
