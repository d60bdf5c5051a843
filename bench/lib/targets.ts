// The two sides a measurement runs against, the earshot server and the CLI, and the time
// limit for one transcription.
import type { TranscriptionRequest } from "./client.js";
import type { DecodingOptions, NativeCli } from "./native.js";
import type { ServerLog } from "./server-log.js";

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
