// Check an exported bundle's proof.json with OpenZeppelin's own verifier.
// Usage: node verify_bundle_proof.js PROOF.json  ->  {"verified": true|false}
"use strict";
const fs = require("fs");
const path = require("path");

const modulesDir = process.env.DEVICEMINT_NODE_MODULES || path.resolve(__dirname, "../../../node_modules");
const { StandardMerkleTree } = require(path.join(modulesDir, "@openzeppelin/merkle-tree"));

const bundle = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const verified = StandardMerkleTree.verify(bundle.root, bundle.leaf_encoding, bundle.value, bundle.proof);
process.stdout.write(JSON.stringify({ verified }));
