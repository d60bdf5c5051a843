#!/usr/bin/env node
// Fails unless the README's commands for the CPU image are exactly the ones that
// start-container.sh runs, so the tested `docker run` line is the documented one.
//
// Usage: node scripts/image/check-readme.mjs [MARKDOWN...]
//   default: README.md
// The README names the published image and ggml-base.bin where the script has variables;
// SUBSTITUTIONS maps one to the other. Every `docker` command of the script must be in the
// README, and every README command that runs the :latest-cpu image must be in the script.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("start-container.sh", import.meta.url));
const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SUBSTITUTIONS = [
  ["ghcr.io/OWNER/earshot:latest-cpu", '"$IMAGE"'],
  ["/import/ggml-base.bin", '"${model_files[@]/#//import/}"'],
];

/** Joins backslash-continued lines and collapses runs of spaces. */
function commandsOf(text) {
  return text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim().replace(/\s+/g, " "))
    .filter((line) => line.startsWith("docker "));
}

function shellBlocks(markdown) {
  return [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]);
}

function toScriptForm(command) {
  let text = command;
  for (const [readme, script] of SUBSTITUTIONS) text = text.split(readme).join(script);
  return text;
}

function defaultDocuments() {
  return [`${REPO_ROOT}README.md`];
}

/** Returns the differences between DOCUMENT's CPU-image commands and the script's. */
function compare(document, scriptCommands) {
  const documented = shellBlocks(readFileSync(document, "utf8"))
    .flatMap(commandsOf)
    .filter((command) => command.includes(SUBSTITUTIONS[0][0]))
    .map(toScriptForm);
  const problems = [];
  for (const command of scriptCommands.filter((c) => !documented.includes(c))) {
    problems.push(`${document}: start-container.sh runs a command missing here:\n  ${command}`);
  }
  for (const command of documented.filter((c) => !scriptCommands.includes(c))) {
    problems.push(`${document}: a command here is missing from start-container.sh:\n  ${command}`);
  }
  return problems;
}

const scriptCommands = commandsOf(readFileSync(SCRIPT, "utf8"));
const documents = process.argv.length > 2 ? process.argv.slice(2) : defaultDocuments();
const problems = documents.flatMap((document) => compare(document, scriptCommands));
for (const problem of problems) console.error(problem);
if (problems.length === 0) {
  console.log(`README commands match start-container.sh in ${documents.length} file(s)`);
}
process.exitCode = problems.length === 0 ? 0 : 1;
