import { describe, expect, it } from "vitest";

import type { ParityResult } from "../lib/parity.js";
import {
  type BenchResults,
  type ConcurrencyRow,
  describeMachine,
  evaluateTargets,
} from "../lib/report.js";
import { renderMarkdown } from "../lib/report-markdown.js";
import type { SingleRequestResult } from "../lib/single-request.js";

const identical: ParityResult = {
  identical: true,
  nativeSegments: 1,
  serverSegments: 1,
  clampedEnds: 0,
  mismatches: [],
};

function single(ratio: number, parity = identical): SingleRequestResult {
  const pair = {
    nativeWorkMs: 1000,
    nativeTranscribeMs: 950,
    nativeLoadMs: 100,
    earshotMs: 1000 * ratio,
    earshotInferenceMs: 900,
    ratio,
    parity,
  };
  return {
    clip: "speech-5s",
    audioSeconds: 5,
    pairs: [pair],
    medianNativeWorkMs: 1000,
    medianNativeTranscribeMs: 950,
    medianEarshotMs: 1000 * ratio,
    medianEarshotInferenceMs: 900,
    medianRatio: ratio,
    parityIdentical: parity.identical,
  };
}

function level(profile: string, clients: number, audioSecondsPerSecond: number): ConcurrencyRow {
  return {
    profile,
    clients,
    requests: 8,
    clip: "speech-10s",
    wallMs: 10_000,
    audioSecondsPerSecond,
    p50Ms: 1000,
    p95Ms: 1500,
    peakRssBytes: 600 * 2 ** 20,
  };
}

function results(overrides: Partial<BenchResults> = {}): BenchResults {
  return {
    mode: "quick",
    serverSource: "working tree",
    machine: describeMachine(2, 0.5, new Date("2026-01-01T00:00:00Z")),
    nativeCflags: "-O3 -march=native",
    addonFlags: "-march=x86-64-v3 -DNDEBUG",
    model: { name: "tiny.en-shape", sizeBytes: 77_700_000 },
    threads: 2,
    decoding: "greedy",
    profiles: [
      { name: "matched", settings: { WHISPER_THREADS: "2" }, modelLoads: 1, peakRssBytes: 1 },
      { name: "default", settings: {}, modelLoads: 1, peakRssBytes: 1 },
    ],
    single: [single(1.05)],
    concurrency: [
      level("matched", 1, 8),
      level("default", 2, 7.8),
      level("default", 4, 7.2),
      level("four-jobs", 4, 7),
    ],
    behindLongJob: {
      shortClip: "speech-5s",
      longClip: "speech-600s",
      aloneMs: [1000],
      behindMs: [2500],
      medianAloneMs: 1000,
      medianBehindMs: 2500,
      slowdown: 2.5,
      longJobCompleted: false,
      longJobMs: 20_000,
    },
    ...overrides,
  };
}

function metByTarget(benchResults: BenchResults): Record<string, boolean> {
  return Object.fromEntries(evaluateTargets(benchResults).map((check) => [check.target,
    check.met]));
}

describe("evaluateTargets", () => {
  it("marks each target met or not from the numbers", () => {
    expect(metByTarget(results())).toEqual({
      "single request at most 1.10x the CLI": true,
      "identical text and segment times (greedy)": true,
      "2 clients at least 0.95x one client on every core": true,
      "4 clients at least 0.95x one client on every core": false,
      "speech-5s behind speech-600s within 3x alone": true,
      "each model loaded once per server": true,
      "peak memory with 4 concurrent jobs reported": true,
    });
  });

  it("fails the single-request target when any clip is over", () => {
    const checks = metByTarget(results({ single: [single(1.05), single(1.2)] }));
    expect(checks["single request at most 1.10x the CLI"]).toBe(false);
  });

  it("fails parity on one differing transcript", () => {
    const differing = { ...identical, identical: false };
    const checks = metByTarget(results({ single: [single(1, identical), single(1, differing)] }));
    expect(checks["identical text and segment times (greedy)"]).toBe(false);
  });

  it("fails the throughput targets without a baseline", () => {
    const checks = evaluateTargets(results({ concurrency: [level("default", 2, 8)] }));
    const twoClients = checks.find((check) => check.target.startsWith("2 clients"));
    expect(twoClients?.met).toBe(false);
    expect(twoClients?.measured).toBe("not measured");
  });

  it("fails both comparison targets when a clip stopped early", () => {
    const stopped = { ...single(1), clip: "speech-60s", error: "timed out after 420000 ms" };
    const checks = evaluateTargets(results({ single: [single(1.05), stopped] }));
    const singleCheck = checks.find((check) => check.target.startsWith("single request"));
    const parityCheck = checks.find((check) => check.target.startsWith("identical"));
    expect(singleCheck?.met).toBe(false);
    expect(singleCheck?.measured).toContain("speech-60s 1.00x (failed)");
    expect(parityCheck?.met).toBe(false);
    expect(parityCheck?.measured).toContain("not compared in full: speech-60s");
  });

  it("fails when a model loaded twice", () => {
    const profiles = [{ name: "default", settings: {}, modelLoads: 2, peakRssBytes: 1 }];
    expect(metByTarget(results({ profiles }))["each model loaded once per server"]).toBe(false);
  });
});

describe("renderMarkdown", () => {
  it("puts the targets table before the details", () => {
    const benchResults = results();
    const markdown = renderMarkdown(benchResults, evaluateTargets(benchResults));
    const targetsAt = markdown.indexOf("| Target | Measured | Met |");
    const detailsAt = markdown.indexOf("## One request");
    expect(targetsAt).toBeGreaterThan(0);
    expect(detailsAt).toBeGreaterThan(targetsAt);
  });

  it("shows why a comparison stopped", () => {
    const stopped = {
      ...single(1),
      pairs: [],
      error: "main timed out after 420000 ms",
      medianRatio: Number.NaN,
    };
    const benchResults = results({ single: [stopped] });
    const markdown = renderMarkdown(benchResults, evaluateTargets(benchResults));
    expect(markdown).toContain("stopped: main timed out after 420000 ms");
    expect(markdown).toContain("| n/a |");
  });

  it("names the machine and the abandoned long job", () => {
    const benchResults = results();
    const markdown = renderMarkdown(benchResults, evaluateTargets(benchResults));
    expect(markdown).toContain("2 cores");
    expect(markdown).toContain("load average 0.5 at the start");
    expect(markdown).toContain("was still running after 20000 ms");
  });
});
