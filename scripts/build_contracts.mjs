#!/usr/bin/env node
// Compiles contracts/**/*.sol with the pinned npm `solc` and writes one artifact per deployable
// contract to src/devicemint/chain/artifacts/<ContractName>.json.
//
//   node scripts/build_contracts.mjs           build and write artifacts
//   node scripts/build_contracts.mjs --check   rebuild in memory; exit 1 naming every artifact
//                                              that differs from (or is missing in) the tree
//
// Artifacts are byte-for-byte reproducible: sorted keys, two-space indent, trailing newline, and
// no timestamps or absolute paths. `sourceHash` is the SHA-256 over every source file the
// contract was compiled from (its own and every imported library file, as listed in the
// compiler metadata), taken in sorted order of source unit name as
// `name NUL content NUL` for each file, so it changes when any input byte changes.
// Any compiler error or warning fails the build: warnings are treated as errors.

import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CONTRACTS_DIR = path.join(ROOT, "contracts");
const NODE_MODULES = path.join(ROOT, "node_modules");
const OUT_DIR = path.join(ROOT, "src", "devicemint", "chain", "artifacts");

const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 10000 },
  remappings: ["solady/tokens/=solady/src/tokens/", "solady/utils/=solady/src/utils/"],
  metadata: { bytecodeHash: "ipfs" },
};

function listSources(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listSources(full));
    else if (entry.name.endsWith(".sol")) out.push(full);
  }
  return out;
}

function unitName(file) {
  return path.relative(ROOT, file).split(path.sep).join("/");
}

// Library imports (@openzeppelin/..., solady/... after remapping) resolve inside node_modules only.
const loaded = new Map();
function findImports(importPath) {
  const full = path.resolve(NODE_MODULES, importPath);
  if (!full.startsWith(NODE_MODULES + path.sep) || !fs.existsSync(full)) {
    return { error: `import not found in node_modules: ${importPath}` };
  }
  const contents = fs.readFileSync(full, "utf8");
  loaded.set(importPath, contents);
  return { contents };
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys(value[k])]),
    );
  }
  return value;
}

function sourceHash(unitNames, contentOf) {
  const h = createHash("sha256");
  for (const name of [...unitNames].sort()) {
    h.update(name, "utf8");
    h.update("\0");
    h.update(contentOf(name), "utf8");
    h.update("\0");
  }
  return h.digest("hex");
}

function build() {
  const sources = {};
  for (const file of listSources(CONTRACTS_DIR).sort()) {
    sources[unitName(file)] = { content: fs.readFileSync(file, "utf8") };
  }
  const input = {
    language: "Solidity",
    sources,
    settings: {
      ...SETTINGS,
      outputSelection: {
        "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

  const problems = (output.errors || []).filter((e) => e.severity !== "info");
  if (problems.length) {
    for (const e of problems) console.error(e.formattedMessage || e.message);
    const errors = problems.filter((e) => e.severity === "error").length;
    throw new Error(
      `compilation failed: ${errors} error(s), ${problems.length - errors} warning(s) (warnings are errors here)`,
    );
  }

  const contentOf = (name) => (sources[name] ? sources[name].content : loaded.get(name));
  const artifacts = new Map();
  for (const unit of Object.keys(output.contracts).sort()) {
    if (!sources[unit]) continue; // library files: no artifacts of their own
    for (const [contractName, c] of Object.entries(output.contracts[unit])) {
      if (!c.evm.bytecode.object) continue; // interfaces and abstract contracts
      if (artifacts.has(contractName)) throw new Error(`duplicate contract name ${contractName}`);
      const metadata = JSON.parse(c.metadata);
      const used = Object.keys(metadata.sources);
      for (const name of used) {
        if (contentOf(name) === undefined) throw new Error(`source ${name} of ${contractName} not loaded`);
      }
      const artifact = sortKeys({
        contractName,
        sourceName: unit,
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
        compiler: { version: solc.version(), settings: SETTINGS },
        sourceHash: sourceHash(used, contentOf),
      });
      artifacts.set(`${contractName}.json`, JSON.stringify(artifact, null, 2) + "\n");
    }
  }
  return artifacts;
}

function main() {
  const check = process.argv.includes("--check");
  let artifacts;
  try {
    artifacts = build();
  } catch (err) {
    console.error(`build_contracts: ${err.message}`);
    process.exit(2);
  }
  const existing = fs.existsSync(OUT_DIR)
    ? fs.readdirSync(OUT_DIR).filter((f) => f.endsWith(".json"))
    : [];

  if (check) {
    const differ = [];
    for (const [file, text] of artifacts) {
      const onDisk = path.join(OUT_DIR, file);
      if (!fs.existsSync(onDisk)) differ.push(`${file} (missing)`);
      else if (fs.readFileSync(onDisk, "utf8") !== text) differ.push(`${file} (differs from sources)`);
    }
    for (const file of existing) {
      if (!artifacts.has(file)) differ.push(`${file} (no longer produced by any source)`);
    }
    if (differ.length) {
      console.error("build_contracts --check: artifacts disagree with contracts/:");
      for (const d of differ) console.error(`  src/devicemint/chain/artifacts/${d}`);
      console.error("run `node scripts/build_contracts.mjs` and commit the result");
      process.exit(1);
    }
    console.log(`build_contracts --check: ${artifacts.size} artifacts match their sources`);
    return;
  }

  fs.mkdirSync(OUT_DIR, { recursive: true });
  for (const file of existing) {
    if (!artifacts.has(file)) fs.unlinkSync(path.join(OUT_DIR, file));
  }
  for (const [file, text] of artifacts) fs.writeFileSync(path.join(OUT_DIR, file), text);
  console.log(`build_contracts: wrote ${artifacts.size} artifacts to ${path.relative(ROOT, OUT_DIR)}`);
}

main();
