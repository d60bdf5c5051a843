// The measurements: one request against the CLI, several clients at once, and a short clip
// behind a long one.
import { setTimeout as sleep } from "node:timers/promises";
import { performance } from "node:perf_hooks";

import type { Clip } from "./clips.js";
import {
  type ServerRun,
  type TranscriptionRequest,
  type Upload,
  readUpload,
  transcribeOverHttp,
} from "./client.js";
import {
  type DecodingOptions,
  type NativeCli,
  type NativeRun,
  runNativeCli,
} from "./native.js";
import { type ParityResult, compareTranscripts } from "./parity.js";
import { readProcessMemory } from "./server.js";
import type { ServerLog } from "./server-log.js";
import { median, percentile } from "./stats.js";

export interface ServerTarget {
  request: Omit<TranscriptionRequest, "timeoutMs">;
  pid: number;
  log: ServerLog;
}

export interface NativeTarget {
  cli: NativeCli;
  modelPath: string;
  decoding: DecodingOptions;
  scratchDir: string;
}

/**
 * Returns the time limit for one transcription in milliseconds: two minutes plus five times the
 * audio's length. On a busy 2-core machine the CLI took 6x real time on the 60 s clip.
 */
export function requestTimeoutMs(audioSeconds: number): number {
  return 120_000 + audioSeconds * 5000;
}

export interface SingleRequestPair {
  /** CLI wall time minus its model load, in milliseconds. */
  nativeWorkMs: number;
  /** The CLI's total minus load: the library's work without process start and file I/O. */
  nativeTranscribeMs: number;
  nativeLoadMs: number;
  earshotMs: number;
  /** earshot's own time for the transcription, from its log; undefined if it logged none. */
  earshotInferenceMs: number | undefined;
  /** earshotMs / nativeWorkMs. */
  ratio: number;
  parity: ParityResult;
}

export interface SingleRequestResult {
  clip: string;
  audioSeconds: number;
  /** The pairs that completed; fewer than requested when `error` is set. */
  pairs: SingleRequestPair[];
  /** Why the comparison stopped early, such as a time limit; the medians cover `pairs`. */
  error?: string;
  medianNativeWorkMs: number;
  medianNativeTranscribeMs: number;
  medianEarshotMs: number;
  medianEarshotInferenceMs: number | undefined;
  medianRatio: number;
  parityIdentical: boolean;
}

/**
 * Runs the CLI and earshot alternately on one clip, changing which goes first each pair. A
 * failure ends the comparison and is returned with the pairs completed before it.
 */
export async function compareSingleRequest(
  server: ServerTarget,
  native: NativeTarget,
  clip: Clip,
  pairCount: number,
): Promise<SingleRequestResult> {
  const upload = readUpload(clip.path);
  const timeoutMs = requestTimeoutMs(clip.durationSeconds);
  const request = { ...server.request, timeoutMs };
  const runNative = () =>
    runNativeCli(native.cli, native.modelPath, clip.path, native.decoding, {
      scratchDir: native.scratchDir,
      timeoutMs,
    });

  const pairs: SingleRequestPair[] = [];
  try {
    for (let index = 0; index < pairCount; index += 1) {
      const runServer = () => runEarshot(server, request, upload);
      pairs.push(await runPair(index % 2 === 0, runNative, runServer));
    }
  } catch (error) {
    return summarizePairs(clip, pairs, error instanceof Error ? error.message : String(error));
  }
  return summarizePairs(clip, pairs);
}

interface EarshotRun extends ServerRun {
  /** earshot's own time for the transcription, from its log. */
  inferenceMs: number | undefined;
}

async function runEarshot(
  server: ServerTarget,
  request: TranscriptionRequest,
  upload: Upload,
): Promise<EarshotRun> {
  const logged = server.log.withMessage(finishedMessage).length;
  const run = await transcribeOverHttp(request, upload);
  return { ...run, inferenceMs: await waitForInferenceMs(server.log, logged) };
}

async function runPair(
  nativeFirst: boolean,
  runNative: () => Promise<NativeRun>,
  runServer: () => Promise<EarshotRun>,
): Promise<SingleRequestPair> {
  let nativeRun: NativeRun;
  let serverRun: EarshotRun;
  if (nativeFirst) {
    nativeRun = await runNative();
    serverRun = await runServer();
  } else {
    serverRun = await runServer();
    nativeRun = await runNative();
  }
  return {
    nativeWorkMs: nativeRun.workMs,
    nativeTranscribeMs: nativeRun.transcribeMs,
    nativeLoadMs: nativeRun.timings.loadMs,
    earshotMs: serverRun.latencyMs,
    earshotInferenceMs: serverRun.inferenceMs,
    ratio: serverRun.latencyMs / nativeRun.workMs,
    parity: compareTranscripts(nativeRun.segments, serverRun.transcript),
  };
}

const finishedMessage = "transcription finished";
const logWaitMs = 1000;

/**
 * Returns the `inferenceSeconds` of the log entry that follows the first `logged` ones, in
 * milliseconds. The entry is written before the response, but reaches this process through a
 * pipe, so it may arrive a little after the response does.
 */
async function waitForInferenceMs(log: ServerLog, logged: number): Promise<number | undefined> {
  const deadline = performance.now() + logWaitMs;
  while (performance.now() < deadline) {
    const entry = log.withMessage(finishedMessage)[logged];
    if (entry) {
      return typeof entry.inferenceSeconds === "number" ? entry.inferenceSeconds * 1000 : undefined;
    }
    await sleep(20);
  }
  return undefined;
}

/** Summarizes the pairs; medians are NaN when none completed. */
function summarizePairs(
  clip: Clip,
  pairs: SingleRequestPair[],
  error?: string,
): SingleRequestResult {
  const medianOf = (values: number[]) => (values.length > 0 ? median(values) : Number.NaN);
  const inference = pairs.flatMap((pair) =>
    pair.earshotInferenceMs === undefined ? [] : [pair.earshotInferenceMs]);
  return {
    clip: clip.name,
    audioSeconds: clip.durationSeconds,
    pairs,
    ...(error === undefined ? {} : { error }),
    medianNativeWorkMs: medianOf(pairs.map((pair) => pair.nativeWorkMs)),
    medianNativeTranscribeMs: medianOf(pairs.map((pair) => pair.nativeTranscribeMs)),
    medianEarshotMs: medianOf(pairs.map((pair) => pair.earshotMs)),
    medianEarshotInferenceMs: inference.length > 0 ? median(inference) : undefined,
    medianRatio: medianOf(pairs.map((pair) => pair.ratio)),
    parityIdentical: pairs.every((pair) => pair.parity.identical),
  };
}

export interface ConcurrencyResult {
  clients: number;
  requests: number;
  clip: string;
  wallMs: number;
  /** Seconds of audio transcribed per second of wall time, over all clients. */
  audioSecondsPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  /** Highest resident set size sampled while the clients ran, in bytes. */
  peakRssBytes: number;
}

const memorySampleIntervalMs = 100;

/** Splits `requests` among `clients` that each send theirs one after another. */
export async function measureConcurrency(
  server: ServerTarget,
  clip: Clip,
  clients: number,
  requests: number,
): Promise<ConcurrencyResult> {
  const upload = readUpload(clip.path);
  const request = { ...server.request, timeoutMs: requestTimeoutMs(clip.durationSeconds * requests) };
  const latencies: number[] = [];
  const sampler = startMemorySampler(server.pid);
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: clients }, async (_, client) => {
        for (let index = client; index < requests; index += clients) {
          latencies.push((await transcribeOverHttp(request, upload)).latencyMs);
        }
      }),
    );
  } finally {
    sampler.stop();
  }
  const wallMs = performance.now() - started;
  return {
    clients,
    requests,
    clip: clip.name,
    wallMs,
    audioSecondsPerSecond: (requests * clip.durationSeconds) / (wallMs / 1000),
    p50Ms: percentile(latencies, 0.5),
    p95Ms: percentile(latencies, 0.95),
    peakRssBytes: sampler.peakBytes(),
  };
}

function startMemorySampler(pid: number) {
  let peak = readProcessMemory(pid).rssBytes;
  const timer = setInterval(() => {
    peak = Math.max(peak, readProcessMemory(pid).rssBytes);
  }, memorySampleIntervalMs);
  return {
    stop: () => clearInterval(timer),
    peakBytes: () => Math.max(peak, readProcessMemory(pid).rssBytes),
  };
}

export interface BehindLongJobResult {
  shortClip: string;
  longClip: string;
  aloneMs: number[];
  behindMs: number[];
  medianAloneMs: number;
  medianBehindMs: number;
  /** medianBehindMs / medianAloneMs. */
  slowdown: number;
  /** Whether the long request ended before the short ones were done. */
  longJobCompleted: boolean;
  /** From sending the long request to its response, or to abandoning it, in milliseconds. */
  longJobMs: number;
}

// Long enough for the long upload to arrive and be decoded, so the short requests meet a
// running transcription rather than a queued one.
const longJobHeadStartMs = 3000;

/**
 * Measures a short clip alone, then again while a long transcription runs. Once the short
 * samples are in, the long request is abandoned and the caller stops the server, which ends
 * the job. That spares minutes of transcription that no measurement needs.
 */
export async function measureBehindLongJob(
  server: ServerTarget,
  shortClip: Clip,
  longClip: Clip,
  samples: number,
): Promise<BehindLongJobResult> {
  const shortUpload = readUpload(shortClip.path);
  const timeoutMs = requestTimeoutMs(longClip.durationSeconds);
  const shortRequest = { ...server.request, timeoutMs };
  const aloneMs: number[] = [];
  for (let index = 0; index < samples; index += 1) {
    aloneMs.push((await transcribeOverHttp(shortRequest, shortUpload)).latencyMs);
  }

  const longJob = startLongJob({ ...server.request, timeoutMs }, readUpload(longClip.path));
  const behindMs: number[] = [];
  try {
    await sleep(longJobHeadStartMs);
    while (behindMs.length < samples && longJob.running()) {
      const { latencyMs } = await transcribeOverHttp(shortRequest, shortUpload);
      // A request that finished after the long job did not run entirely behind it.
      if (longJob.running()) behindMs.push(latencyMs);
    }
  } finally {
    await longJob.abandon();
  }
  if (behindMs.length === 0) {
    throw new Error(`${longClip.name} finished before a short request completed behind it`);
  }

  const medianAloneMs = median(aloneMs);
  const medianBehindMs = median(behindMs);
  return {
    shortClip: shortClip.name,
    longClip: longClip.name,
    aloneMs,
    behindMs,
    medianAloneMs,
    medianBehindMs,
    slowdown: medianBehindMs / medianAloneMs,
    longJobCompleted: longJob.completed(),
    longJobMs: longJob.elapsedMs(),
  };
}

/**
 * Starts a request in the background. `abandon()` aborts it if it is still running, and
 * rethrows the error if it failed before that.
 */
function startLongJob(request: TranscriptionRequest, upload: Upload) {
  const controller = new AbortController();
  const started = performance.now();
  let endedMs: number | undefined;
  let failure: unknown;
  const settled = transcribeOverHttp({ ...request, signal: controller.signal }, upload).then(
    () => {
      endedMs = performance.now() - started;
    },
    (error: unknown) => {
      failure = error;
    },
  );
  const running = () => endedMs === undefined && failure === undefined;
  return {
    running,
    completed: () => endedMs !== undefined,
    elapsedMs: () => endedMs ?? performance.now() - started,
    async abandon() {
      const failedOnItsOwn = failure !== undefined;
      if (running()) controller.abort();
      await settled;
      if (failedOnItsOwn) throw failure;
    },
  };
}
