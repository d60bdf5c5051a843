// The benchmark's results: the machine they were measured on, the targets, and the tables
// written as Markdown and JSON.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import path from "node:path";

import type { BehindLongJobResult } from "./behind-long-job.js";
import type { ConcurrencyResult } from "./concurrency.js";
import type { SingleRequestResult } from "./single-request.js";
import { formatBytes, formatMs, formatRatio, renderMarkdown } from "./report-markdown.js";
import { round } from "./stats.js";

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  node: string;
  kernel: string;
  /** 1-minute load average when the run started and when it ended: other work on the machine. */
  loadAverageAtStart: number;
  loadAverageAtEnd: number;
  date: string;
}

export function describeMachine(
  cores: number,
  loadAverageAtStart: number,
  date = new Date(),
): MachineInfo {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    cores,
    memoryBytes: totalmem(),
    node: process.version,
    kernel: release(),
    loadAverageAtStart,
    loadAverageAtEnd: loadavg()[0] ?? 0,
    date: date.toISOString(),
  };
}

export interface ServerProfile {
  /**
   * Profile name. `matched` runs one job at a time with the CLI's thread count. `default`
   * leaves jobs and threads to earshot. `four-jobs` runs four jobs at once.
   */
  name: string;
  settings: Record<string, string>;
  /** "model loaded" log lines over the server's whole life. */
  modelLoads: number;
  peakRssBytes: number;
}

export interface ConcurrencyRow extends ConcurrencyResult {
  profile: string;
}

export interface BenchResults {
  mode: "full" | "quick";
  /** "working tree", or the commit the server ran from. */
  serverSource: string;
  machine: MachineInfo;
  nativeCflags: string;
  addonFlags: string;
  model: { name: string; sizeBytes: number };
  threads: number;
  decoding: string;
  profiles: ServerProfile[];
  single: SingleRequestResult[];
  concurrency: ConcurrencyRow[];
  behindLongJob: BehindLongJobResult;
}

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
}

const maxSingleRatio = 1.1;
const minThroughputShare = 0.95;
const maxBehindSlowdown = 3;

/** Checks each target the benchmark exists to watch. */
export function evaluateTargets(results: BenchResults): TargetCheck[] {
  return [
    checkSingleRequest(results.single),
    checkParity(results.single),
    ...checkThroughput(results.concurrency),
    checkBehindLongJob(results.behindLongJob),
    checkModelLoads(results.profiles),
    checkPeakMemory(results.concurrency),
  ];
}

function checkSingleRequest(single: SingleRequestResult[]): TargetCheck {
  const ratios = single.map((row) => {
    const ratio = row.pairs.length > 0 ? formatRatio(row.medianRatio) : "no pairs";
    return row.error === undefined ? `${row.clip} ${ratio}` : `${row.clip} ${ratio} (failed)`;
  });
  return {
    target: `single request at most ${maxSingleRatio.toFixed(2)}x the CLI`,
    measured: ratios.join(", "),
    met: single.length > 0 &&
      single.every((row) => row.error === undefined && row.medianRatio <= maxSingleRatio),
  };
}

function checkParity(single: SingleRequestResult[]): TargetCheck {
  const pairs = single.flatMap((row) => row.pairs);
  const identical = pairs.filter((pair) => pair.parity.identical).length;
  const failed = single.filter((row) => row.error !== undefined).map((row) => row.clip);
  const missing = failed.length > 0 ? `; not compared in full: ${failed.join(", ")}` : "";
  return {
    target: "identical text and segment times (greedy)",
    measured: `${identical} of ${pairs.length} transcripts identical${missing}`,
    met: pairs.length > 0 && identical === pairs.length && failed.length === 0,
  };
}

/**
 * Compares the default profile's 2 and 4 clients with one client of the matched profile, which
 * runs one job on every core.
 */
function checkThroughput(rows: ConcurrencyRow[]): TargetCheck[] {
  const baseline = rows.find((row) => row.profile === "matched" && row.clients === 1);
  return [2, 4].map((clients) => {
    const row = rows.find((candidate) => candidate.profile === "default" &&
      candidate.clients === clients);
    const share = baseline && row ? row.audioSecondsPerSecond / baseline.audioSecondsPerSecond
      : Number.NaN;
    return {
      target: `${clients} clients at least ${minThroughputShare}x one client on every core`,
      measured: Number.isNaN(share) ? "not measured" : `${formatRatio(share)} ` +
        `(${round(row!.audioSecondsPerSecond, 2)} vs ${round(baseline!.audioSecondsPerSecond, 2)}` +
        " audio s/s)",
      met: share >= minThroughputShare,
    };
  });
}

function checkBehindLongJob(result: BehindLongJobResult): TargetCheck {
  return {
    target: `${result.shortClip} behind ${result.longClip} within ${maxBehindSlowdown}x alone`,
    measured: `${formatRatio(result.slowdown)} (${formatMs(result.medianBehindMs)} vs ` +
      `${formatMs(result.medianAloneMs)})`,
    met: result.slowdown <= maxBehindSlowdown,
  };
}

function checkModelLoads(profiles: ServerProfile[]): TargetCheck {
  return {
    target: "each model loaded once per server",
    measured: profiles.map((profile) => `${profile.name}: ${profile.modelLoads}`).join(", "),
    met: profiles.every((profile) => profile.modelLoads === 1),
  };
}

function checkPeakMemory(rows: ConcurrencyRow[]): TargetCheck {
  const row = rows.find((candidate) => candidate.profile === "four-jobs" &&
    candidate.clients === 4);
  return {
    target: "peak memory with 4 concurrent jobs reported",
    measured: row ? formatBytes(row.peakRssBytes) : "not measured",
    met: row !== undefined,
  };
}

/** Writes `<name>.md` and `<name>.json` into `directory` and returns the Markdown. */
export function writeResults(directory: string, name: string, results: BenchResults): string {
  const targets = evaluateTargets(results);
  const markdown = renderMarkdown(results, targets);
  mkdirSync(directory, { recursive: true });
  writeFileSync(path.join(directory, `${name}.md`), markdown);
  const json = { ...results, targets };
  writeFileSync(path.join(directory, `${name}.json`), `${JSON.stringify(json, null, 2)}\n`);
  return markdown;
}
