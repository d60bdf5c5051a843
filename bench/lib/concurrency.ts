// Several clients at once: throughput, latency and the server's memory.
import { performance } from "node:perf_hooks";

import type { Clip } from "./clips.js";
import { readUpload, transcribeOverHttp } from "./client.js";
import { readProcessMemory } from "./server.js";
import { percentile } from "./stats.js";
import { type ServerTarget, requestTimeoutMs } from "./targets.js";

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
