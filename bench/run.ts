// Benchmarks earshot against whisper.cpp's own CLI: one request side by side, transcript
// parity, several clients at once, and a short clip behind a long one.
// Usage: npx tsx bench/run.ts [--quick] [--threads N] [--server-ref REF]
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { type Clip, makeSpeechClip } from "./lib/clips.js";
import { transcribeOverHttp, readUpload } from "./lib/client.js";
import { buildNativeCli, readAddonCflags, runNativeCli } from "./lib/native.js";
import { type BenchModel, ensureBenchModel } from "./lib/model.js";
import { type BenchOptions, parseBenchOptions, usage } from "./lib/options.js";
import { type ServerSource, extractServerSource } from "./lib/server-source.js";
import {
  type BenchResults,
  type ConcurrencyRow,
  type ServerProfile,
  describeMachine,
  writeResults,
} from "./lib/report.js";
import { type BehindLongJobResult, measureBehindLongJob } from "./lib/behind-long-job.js";
import { measureConcurrency } from "./lib/concurrency.js";
import { type SingleRequestResult, compareClips } from "./lib/single-request.js";
import type { NativeTarget, ServerTarget } from "./lib/targets.js";
import {
  type RunningServer,
  killRunningServers,
  readProcessMemory,
  startServer,
} from "./lib/server.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const workDir = path.join(repoRoot, "bench", ".work");
const language = "en";
const startedAt = Date.now();
const loadAverageAtStart = loadavg()[0] ?? 0;
/** Folders for the CLI's output files, removed at exit whatever happened. */
const scratchDirs = new Set<string>();

function progress(message: string) {
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(0).padStart(4);
  console.error(`[${seconds} s] ${message}`);
}

/** Settings that make earshot decode as the CLI does with `-bs 1 -nf`. */
const decodingSettings = {
  WHISPER_BEAM_SIZE: "1",
  WHISPER_TEMPERATURE_FALLBACK: "false",
  WHISPER_MAX_SEGMENT_TOKENS: "0",
};

interface Inputs {
  options: BenchOptions;
  server: ServerSource;
  model: BenchModel;
  native: NativeTarget;
  clips: Map<number, Clip>;
}

async function main() {
  const parsed = parseBenchOptions(process.argv.slice(2));
  if (parsed === "help") {
    console.log(usage);
    return;
  }
  mkdirSync(workDir, { recursive: true });
  const scratchDir = mkdtempSync(path.join(workDir, "run-"));
  scratchDirs.add(scratchDir);
  try {
    const inputs = await prepareInputs(parsed, scratchDir);
    const results = await measure(inputs);
    const resultsDir = parsed.plan.mode === "full"
      ? path.join(repoRoot, "bench", "results")
      : path.join(workDir, "results");
    const markdown = writeResults(resultsDir, parsed.plan.mode, results);
    console.log(markdown);
    progress(`results written to ${path.relative(repoRoot, resultsDir)}/${parsed.plan.mode}.md`);
  } finally {
    removeScratchDirs();
  }
}

async function prepareInputs(options: BenchOptions, scratchDir: string): Promise<Inputs> {
  progress("building whisper.cpp's CLI from smart-whisper's sources");
  const cli = await buildNativeCli(workDir, availableParallelism());
  progress("generating the tiny.en-shaped model");
  const model = await ensureBenchModel(repoRoot, path.join(workDir, "models"));
  progress("synthesizing speech clips with espeak-ng");
  const { plan } = options;
  const seconds = new Set([
    ...plan.singleRequest.map((entry) => entry.seconds),
    plan.concurrencyClipSeconds,
    plan.shortClipSeconds,
    plan.longClipSeconds,
  ]);
  const clips = new Map<number, Clip>();
  for (const duration of [...seconds].sort((a, b) => a - b)) {
    clips.set(duration, await makeSpeechClip(path.join(workDir, "clips"), duration));
  }
  const server: ServerSource = options.serverRef === undefined
    ? { root: repoRoot, description: "working tree" }
    : await extractServerSource(repoRoot, workDir, options.serverRef);
  progress(`earshot runs from the ${server.description === "working tree" ? "" : "commit "}` +
    server.description);
  const decoding = { threads: options.threads, language };
  const native = { cli, modelPath: model.path, decoding, scratchDir };
  return { options, server, model, clips, native };
}

function clipOf(inputs: Inputs, seconds: number): Clip {
  const clip = inputs.clips.get(seconds);
  if (!clip) throw new Error(`no ${seconds} s clip was prepared`);
  return clip;
}

async function measure(inputs: Inputs): Promise<BenchResults> {
  const { plan, threads } = inputs.options;
  const concurrencyClip = clipOf(inputs, plan.concurrencyClipSeconds);
  const concurrency: ConcurrencyRow[] = [];
  const single: SingleRequestResult[] = [];

  const matchedSettings = {
    ...decodingSettings,
    WHISPER_THREADS: String(threads),
    MAX_CONCURRENT_JOBS: "1",
  };
  const matched = await withServer(inputs, "matched", matchedSettings, async (server) => {
    concurrency.push(...(await measureLevels(server, "matched", plan.matchedLevels,
      concurrencyClip, plan.requestsPerLevel)));
    // Last in this profile, longest clip last: a request that timed out may leave its job
    // running in the server, which would slow everything measured after it.
    const comparisons = plan.singleRequest.map(({ seconds, pairs }) => ({
      clip: clipOf(inputs, seconds),
      pairs,
    }));
    single.push(...(await compareClips(server, inputs.native, comparisons, progress)));
  });

  let behindLongJob: BehindLongJobResult | undefined;
  const defaults = await withServer(inputs, "default", decodingSettings, async (server) => {
    concurrency.push(...(await measureLevels(server, "default", plan.defaultLevels,
      concurrencyClip, plan.requestsPerLevel)));
    const shortClip = clipOf(inputs, plan.shortClipSeconds);
    const longClip = clipOf(inputs, plan.longClipSeconds);
    progress(`measuring the ${shortClip.name} clip behind ${longClip.name}`);
    // Last in this profile: it leaves the long job running until the server stops.
    behindLongJob = await measureBehindLongJob(server, shortClip, longClip, plan.behindSamples);
  });

  const fourJobSettings = { ...decodingSettings, MAX_CONCURRENT_JOBS: "4" };
  const fourJobs = await withServer(inputs, "four-jobs", fourJobSettings, async (server) => {
    concurrency.push(...(await measureLevels(server, "four-jobs", plan.fourJobLevels,
      concurrencyClip, plan.requestsPerLevel)));
  });

  return {
    mode: plan.mode,
    serverSource: inputs.server.description,
    machine: describeMachine(availableParallelism(), loadAverageAtStart),
    nativeCflags: inputs.native.cli.cflags,
    addonFlags: readAddonCflags(),
    model: { name: inputs.model.name, sizeBytes: statSync(inputs.model.path).size },
    threads,
    decoding: `greedy (beam 1), temperature 0 without fallback, language ${language}, ` +
      "no token cap beyond whisper.cpp's own 220 tokens per 30 s window",
    profiles: [matched, defaults, fourJobs],
    single,
    concurrency,
    behindLongJob: behindLongJob as BehindLongJobResult,
  };
}

async function measureLevels(
  server: ServerTarget,
  profile: string,
  levels: number[],
  clip: Clip,
  requests: number,
): Promise<ConcurrencyRow[]> {
  const rows: ConcurrencyRow[] = [];
  for (const clients of levels) {
    progress(`${profile}: ${clients} clients, ${requests} requests of ${clip.name}`);
    rows.push({ profile, ...(await measureConcurrency(server, clip, clients, requests)) });
  }
  return rows;
}

/**
 * Starts earshot with `settings` and warms up both sides: one request loads the model and one
 * CLI run puts the files in the page cache. Then runs `work`, and stops the server even when
 * `work` throws.
 */
async function withServer(
  inputs: Inputs,
  name: string,
  settings: Record<string, string>,
  work: (server: ServerTarget) => Promise<void>,
): Promise<ServerProfile> {
  progress(`starting earshot (${name} profile)`);
  const running: RunningServer = await startServer({
    serverRoot: inputs.server.root,
    modelDir: inputs.model.directory,
    defaultModel: inputs.model.name,
    settings,
    logPath: path.join(workDir, `server-${name}.log`),
  });
  try {
    const server: ServerTarget = {
      request: { baseUrl: running.baseUrl, model: inputs.model.name, language },
      pid: running.pid,
      log: running.log,
    };
    await warmUp(inputs, server);
    await work(server);
    return {
      name,
      settings,
      modelLoads: running.log.withMessage("model loaded").length,
      peakRssBytes: readProcessMemory(running.pid).peakRssBytes,
    };
  } finally {
    await running.stop();
  }
}

async function warmUp(inputs: Inputs, server: ServerTarget) {
  const clip = clipOf(inputs, inputs.options.plan.shortClipSeconds);
  const timeoutMs = 120_000;
  progress("warming up: first request loads the model");
  await transcribeOverHttp({ ...server.request, timeoutMs }, readUpload(clip.path));
  await runNativeCli(inputs.native.cli, inputs.native.modelPath, clip.path, inputs.native.decoding,
    { scratchDir: inputs.native.scratchDir, timeoutMs });
}

function removeScratchDirs() {
  for (const directory of scratchDirs) rmSync(directory, { recursive: true, force: true });
  scratchDirs.clear();
}

function stopOnSignal(signal: NodeJS.Signals) {
  process.once(signal, () => {
    progress(`${signal} received, stopping the server`);
    process.exit(1);
  });
}

stopOnSignal("SIGINT");
stopOnSignal("SIGTERM");
// Runs on every exit, a signal's included, and must stay synchronous.
process.on("exit", () => {
  killRunningServers();
  removeScratchDirs();
});

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
