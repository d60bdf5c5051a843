// A short clip's latency while a long transcription runs, against the same clip alone.
import { setTimeout as sleep } from "node:timers/promises";
import { performance } from "node:perf_hooks";

import type { Clip } from "./clips.js";
import {
  type TranscriptionRequest,
  type Upload,
  readUpload,
  transcribeOverHttp,
} from "./client.js";
import { median } from "./stats.js";
import { type ServerTarget, requestTimeoutMs } from "./targets.js";

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
