// One request at a time: earshot against the CLI on the same clip, with transcript parity.
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
import { type NativeRun, runNativeCli } from "./native.js";
import { type ParityResult, compareTranscripts } from "./parity.js";
import type { ServerLog } from "./server-log.js";
import { median } from "./stats.js";
import { type NativeTarget, type ServerTarget, requestTimeoutMs } from "./targets.js";

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
  /** The reason the comparison stopped early, such as a time limit. Medians cover `pairs`. */
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

/**
 * Compares each clip in turn. After a failure the remaining clips are skipped, because a
 * request that timed out may leave its job running in the server and slow later runs.
 */
export async function compareClips(
  server: ServerTarget,
  native: NativeTarget,
  comparisons: { clip: Clip; pairs: number }[],
  progress: (message: string) => void,
): Promise<SingleRequestResult[]> {
  const results: SingleRequestResult[] = [];
  for (const { clip, pairs } of comparisons) {
    if (results.some((result) => result.error !== undefined)) {
      results.push(summarizePairs(clip, [], "skipped after an earlier comparison failed"));
      continue;
    }
    progress(`comparing one request on the ${clip.name} clip, ${pairs} pairs`);
    const result = await compareSingleRequest(server, native, clip, pairs);
    if (result.error !== undefined) progress(`comparison stopped: ${result.error}`);
    results.push(result);
  }
  return results;
}
