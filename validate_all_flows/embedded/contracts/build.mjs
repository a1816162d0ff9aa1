#!/usr/bin/env node
// Compiles the Blocktrust contracts with the pinned solc-js and writes artifacts/<Name>.json
// (abi, bytecode, deployedBytecode, compiler version and settings).
//
// Usage (from anywhere; run `npm ci` in this directory first):
//   node build.mjs              write artifacts/
//   node build.mjs --out DIR    write into DIR instead
//   node build.mjs --check      compile in memory; exit 1 if artifacts/ differ from a fresh compile
// Any compiler warning or error fails the build (exit 1).
import { readFileSync, writeFileSync, mkdirSync, readdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = dirname(fileURLToPath(import.meta.url));
// The contracts that get an artifact; other .sol files here (Roles.sol) are only imported.
const DEPLOYABLE = ["IdentityNFT", "ProofRegistry", "FailSafe"];
// paris: no PUSH0, so the bytecode runs on every EVM chain we target (anvil, Polygon Amoy/PoS).
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "paris",
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function parseArgs(argv) {
  const args = { out: join(here, "artifacts"), check: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--check") args.check = true;
    else if (argv[i] === "--out" && i + 1 < argv.length) args.out = argv[++i];
    else {
      console.error(`build.mjs: unknown argument ${argv[i]}`);
      process.exit(2);
    }
  }
  return args;
}

function compile() {
  const sources = {};
  for (const f of readdirSync(here).filter((n) => n.endsWith(".sol")).sort()) {
    // Source names are bare file names so the output (and the metadata hash) does not depend on
    // where the checkout lives.
    sources[f] = { content: readFileSync(join(here, f), "utf8") };
  }
  const output = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings: SETTINGS })));
  const problems = (output.errors || []).filter((e) => e.severity !== "info");
  if (problems.length) {
    for (const e of problems) console.error(e.formattedMessage || e.message);
    console.error(`build.mjs: ${problems.length} compiler error(s)/warning(s); fix them`);
    process.exit(1);
  }
  const artifacts = {};
  for (const name of DEPLOYABLE) {
    const c = output.contracts[`${name}.sol`]?.[name];
    if (!c) {
      console.error(`build.mjs: ${name}.sol did not produce contract ${name}`);
      process.exit(1);
    }
    const { optimizer, evmVersion } = SETTINGS;
    const artifact = {
      contractName: name,
      sourceName: `${name}.sol`,
      compiler: { name: "solc-js", version: solc.version(), settings: { optimizer, evmVersion } },
      abi: c.abi,
      bytecode: `0x${c.evm.bytecode.object}`,
      deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
    };
    artifacts[name] = `${JSON.stringify(artifact, null, 2)}\n`;
  }
  return artifacts;
}

const args = parseArgs(process.argv.slice(2));
const artifacts = compile();
if (args.check) {
  const stale = DEPLOYABLE.filter((name) => {
    const path = join(here, "artifacts", `${name}.json`);
    return !existsSync(path) || readFileSync(path, "utf8") !== artifacts[name];
  });
  if (stale.length) {
    console.error(`build.mjs: artifacts out of date: ${stale.join(", ")}; run node build.mjs`);
    process.exit(1);
  }
  console.log(`build.mjs: artifacts match solc ${solc.version()}`);
} else {
  mkdirSync(args.out, { recursive: true });
  for (const name of DEPLOYABLE) writeFileSync(join(args.out, `${name}.json`), artifacts[name]);
  console.log(`build.mjs: wrote ${DEPLOYABLE.length} artifacts to ${args.out} (solc ${solc.version()})`);
}
