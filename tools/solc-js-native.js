#!/usr/bin/env node
// Makes the npm package `solc` (solc-js) look like a native solc binary to py-solc-x and brownie:
// `--version` prints native solc's banner and `--standard-json` compiles the JSON on stdin.
// The output is written with writeSync because an async write to a pipe is cut at 64 KiB when
// the process exits.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require(path.join(__dirname, "..", "node_modules", "solc"));

const args = process.argv.slice(2);
const version = solc.version().replace("Emscripten.clang", "Linux.g++");

function writeAll(text) {
  const buf = Buffer.from(text, "utf8");
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== "EAGAIN") throw e;
    }
  }
}

if (args.includes("--version")) {
  writeAll(`solc, the solidity compiler commandline interface\nVersion: ${version}\n`);
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write("solc-js-native: only --version and --standard-json are supported\n");
  process.exit(1);
}

// Import paths are resolved against --base-path, the --allow-paths entries and the cwd, like native solc.
const roots = [process.cwd()];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--base-path" && args[i + 1]) roots.unshift(args[i + 1]);
  if (args[i] === "--allow-paths" && args[i + 1]) roots.push(...args[i + 1].split(","));
  if (args[i] === "--include-path" && args[i + 1]) roots.push(args[i + 1]);
}
function findImports(importPath) {
  const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((r) => path.join(r, importPath));
  for (const c of candidates) {
    if (fs.existsSync(c) && fs.statSync(c).isFile()) return { contents: fs.readFileSync(c, "utf8") };
  }
  return { error: `File not found: ${importPath}` };
}

const input = fs.readFileSync(0, "utf8");
writeAll(solc.compile(input, { import: findImports }));
