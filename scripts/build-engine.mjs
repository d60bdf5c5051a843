#!/usr/bin/env node
// Compiles smart-whisper's bundled whisper.cpp with release flags.
//
// The package's own install script builds with `-O3` only: no SIMD beyond SSE2 and no NDEBUG,
// which runs 6-7x slower than whisper.cpp's CLI on the same model (measured on a 2-core x86_64
// machine with a tiny.en-shaped model). npm is told not to run that script (`allowScripts` in
// package.json) and this one runs from `postinstall` instead.
//
// Environment:
//   WHISPER_CFLAGS  compiler flags to use instead of the portable defaults below
//   BYOL            link flags for a prebuilt whisper library (the CUDA image uses this)
//   JOBS            parallel compile jobs for node-gyp (default: every core)
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { arch } from "node:os";
import path from "node:path";
import { patchSegmentSnapshots } from "./engine/segment-snapshots.mjs";

const require = createRequire(import.meta.url);
const packageDir = path.dirname(require.resolve("smart-whisper/package.json"));
const addonPath = path.join(packageDir, "build/Release/smart-whisper.node");
const stampPath = path.join(packageDir, "build/earshot-flags.json");

// x86-64-v3 (AVX2, FMA, F16C) runs on Intel Haswell, AMD Excavator and later CPUs and, unlike
// -march=native, produces a binary that can be copied to another machine.
const portableFlags = { x64: "-march=x86-64-v3", arm64: "" }[arch()] ?? "";
const cflags = (process.env.WHISPER_CFLAGS ?? `${portableFlags} -DNDEBUG`).trim();
const byol = process.env.BYOL ?? "";
// Bumped whenever the edits to the binding's sources change, so installs rebuild.
const BINDING_EDITS_VERSION = 1;
const stamp = JSON.stringify({
  cflags,
  byol,
  node: process.versions.modules,
  edits: BINDING_EDITS_VERSION,
});
// Freshly edited sources always need a build, whatever the stamp records.
const sourcesEdited = patchSegmentSnapshots(packageDir);
if (sourcesEdited) console.log("Edited smart-whisper to copy segments on the worker thread");

const upToDate = existsSync(addonPath) && existsSync(stampPath) &&
  readFileSync(stampPath, "utf8") === stamp;
if (!sourcesEdited && upToDate) {
  console.log(`smart-whisper is already built with "${cflags}"`);
  process.exit(0);
}

const nodeGyp = process.env.npm_config_node_gyp ?? findNpmNodeGyp();
console.log(`Building smart-whisper with "${cflags}"${byol ? ` and BYOL="${byol}"` : ""}`);
const result = spawnSync(process.execPath, [nodeGyp, "rebuild"], {
  cwd: packageDir,
  stdio: "inherit",
  env: {
    ...process.env,
    CFLAGS: `${process.env.CFLAGS ?? ""} ${cflags}`.trim(),
    CXXFLAGS: `${process.env.CXXFLAGS ?? ""} ${cflags}`.trim(),
    JOBS: process.env.JOBS ?? "max",
  },
});
if (result.status !== 0) {
  console.error("smart-whisper failed to build: node-gyp needs python3, make and a C++ compiler.");
  process.exit(result.status ?? 1);
}
writeFileSync(stampPath, stamp);

function findNpmNodeGyp() {
  const candidates = [
    path.join(path.dirname(process.execPath), "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"),
    path.join(path.dirname(process.execPath), "node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"),
  ];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) {
    console.error("node-gyp was not found: run this script through `npm install` or `npm run postinstall`.");
    process.exit(1);
  }
  return found;
}
