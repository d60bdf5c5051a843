// Downloads one whisper.cpp ggml model file from the Hugging Face hub (or a mirror), verifies
// it and moves it into place.

import { mkdir } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { BaseLogger } from "pino";

import { HubUnavailableError, IntegrityError } from "./download-errors.js";
import type { DownloadProgress } from "./progress.js";
import { transferOnce, type TransferHistory } from "./transfer.js";

export const DEFAULT_HUB_ENDPOINT = "https://huggingface.co";
export const WHISPER_REPOSITORY = "ggerganov/whisper.cpp";

/** Returns the hub URL of a file in whisper.cpp's model repository, such as `ggml-base.bin`. */
export function whisperModelUrl(fileName: string, endpoint = DEFAULT_HUB_ENDPOINT): string {
  return hubFileUrl(WHISPER_REPOSITORY, fileName, endpoint);
}

/** Returns the hub URL of a file on the `main` branch of a repository such as `owner/name`. */
export function hubFileUrl(
  repository: string,
  fileName: string,
  endpoint = DEFAULT_HUB_ENDPOINT,
): string {
  const base = endpoint.replace(/\/+$/, "");
  return `${base}/${repository}/resolve/main/${encodeURIComponent(fileName)}`;
}

export interface DownloadOptions {
  /** The file's URL on the hub, as built by `hubFileUrl` or `whisperModelUrl`. */
  url: string;
  /** Final path of the file, replaced if it exists. Bytes go to `<destination>.part` first. */
  destination: string;
  /** Maximum time in ms to connect and receive the response headers, per request. */
  connectTimeoutMs?: number;
  /** Maximum time in ms between two chunks of the body before the transfer is abandoned. */
  stallTimeoutMs?: number;
  /** Maximum number of redirects followed per request chain. */
  maxRedirects?: number;
  /** How many times a transfer that stalls or drops mid-body is resumed within this call. */
  resumeAttempts?: number;
  /** Wait before each resume, in ms. */
  resumeDelayMs?: number;
  /** Cancels the download and rejects with the signal's reason; the partial file is kept. */
  signal?: AbortSignal;
  /** Called at the start, at most every 100 ms while bytes arrive, and at the end. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Receives a warning for each resume and each restart from zero. */
  logger?: Pick<BaseLogger, "warn">;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
  /** Whether the SHA-256 matched the hub's `X-Linked-Etag`, which only LFS files carry. */
  sha256Verified: boolean;
}

export interface DownloadSettings extends DownloadOptions {
  connectTimeoutMs: number;
  stallTimeoutMs: number;
  maxRedirects: number;
  resumeAttempts: number;
  resumeDelayMs: number;
}

/**
 * Downloads the file at `options.url` to `options.destination`: streams it to a `.part` file,
 * resumes that file with a range request when one exists, checks size and SHA-256 against the
 * hub's headers, then renames it into place.
 *
 * Throws HubUnavailableError, ModelNotFoundOnHubError, IntegrityError, InsufficientSpaceError,
 * ModelDownloadError for other HTTP failures, the signal's reason when aborted, and file system
 * errors as they are. HubUnavailableError is the only one that a retry is expected to fix.
 *
 * NOTE: two processes downloading to the same destination at once corrupt each other's partial
 * file. Within one process, share the download through SingleFlight.
 */
export async function downloadModelFile(options: DownloadOptions): Promise<DownloadResult> {
  // `??` rather than a spread, so that an option passed as undefined keeps its default.
  const settings: DownloadSettings = {
    ...options,
    connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
    stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
    maxRedirects: options.maxRedirects ?? 5,
    resumeAttempts: options.resumeAttempts ?? 3,
    resumeDelayMs: options.resumeDelayMs ?? 1_000,
  };
  await mkdir(path.dirname(settings.destination), { recursive: true });

  let resumes = 0;
  let restartedAfterMismatch = false;
  const history: TransferHistory = {};
  for (;;) {
    try {
      return await transferOnce(settings, history);
    } catch (error) {
      if (isResumable(error) && resumes < settings.resumeAttempts) {
        resumes += 1;
        const context = { err: error, url: settings.url, resumes };
        settings.logger?.warn(context, "download interrupted, resuming");
        await pause(settings.resumeDelayMs, settings.signal);
      } else if (isStalePartial(error) && !restartedAfterMismatch) {
        // The kept bytes may belong to an older revision of the file, so try once from zero.
        restartedAfterMismatch = true;
        settings.logger?.warn({ err: error, url: settings.url }, "restarting download from zero");
      } else {
        throw error;
      }
    }
  }
}

function isResumable(error: unknown): boolean {
  return (
    error instanceof HubUnavailableError &&
    (error.reason === "stalled" || error.reason === "connection_dropped")
  );
}

function isStalePartial(error: unknown): boolean {
  return error instanceof IntegrityError && error.resumedFromBytes > 0;
}

async function pause(delayMs: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(delayMs, undefined, { signal });
  } catch (error) {
    throw signal?.aborted ? signal.reason : error;
  }
}
