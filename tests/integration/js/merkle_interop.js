// Cross-check devicemint's Python Merkle tree against @openzeppelin/merkle-tree.
// Usage: node merkle_interop.js INPUT.json
// INPUT: {"values": [[address, bytes32], ...], "root": "0x..", "proofs": [["0x..", ...], ...]}
// (root/proofs are ours; the script reports what the library computes and
// whether StandardMerkleTree.verify accepts each of our proofs.)
"use strict";
const fs = require("fs");
const path = require("path");

const modulesDir = process.env.DEVICEMINT_NODE_MODULES || path.resolve(__dirname, "../../../node_modules");
const { StandardMerkleTree } = require(path.join(modulesDir, "@openzeppelin/merkle-tree"));

const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const types = ["address", "bytes32"];
const tree = StandardMerkleTree.of(input.values, types);
const proofs = input.values.map((_, i) => tree.getProof(i));
const ourProofsAccepted = input.values.map((value, i) =>
  StandardMerkleTree.verify(input.root, types, value, input.proofs[i]),
);
process.stdout.write(
  JSON.stringify({ root: tree.root, proofs, ourProofsAccepted, dump: tree.dump().tree }),
);
