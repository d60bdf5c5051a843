// Downloads of missing models into MODEL_DIR: one transfer per file however many requests wait
// for it, progress in the log, a check that the file is a whisper.cpp model, and failures turned
// into API errors that tell the client what to do next.
import { rm } from "node:fs/promises";
import type { BaseLogger } from "pino";

import { ApiError } from "../errors.js";
import {
  HubUnavailableError,
  InsufficientSpaceError,
  IntegrityError,
  ModelDownloadError,
  ModelNotFoundOnHubError,
} from "./download-errors.js";
import { downloadModelFile, hubFileUrl, type DownloadResult } from "./download.js";
import { InvalidModelFileError, inspectModelFile } from "./ggml-file.js";
import type { HubFile, ModelRef } from "./model-ids.js";
import { createProgressLogger, type DownloadProgress } from "./progress.js";
import { SingleFlight } from "./single-flight.js";

export type ModelLog = Pick<BaseLogger, "info" | "warn" | "error">;

export interface HubSettings {
  /** Base URL of the Hugging Face hub or a mirror, such as `https://huggingface.co`. */
  endpoint: string;
  connectTimeoutMs: number;
  stallTimeoutMs: number;
  /** Wait before resuming an interrupted transfer, in ms. */
  resumeDelayMs?: number;
  log: ModelLog;
}

/** Seconds a client is asked to wait after the hub could not be reached. */
const HUB_RETRY_AFTER_SECONDS = 10;

export interface FetchOptions {
  /** Rejects this caller's wait when aborted; the download itself goes on. */
  signal?: AbortSignal;
  /** Receives progress only when this call starts the download. */
  onProgress?: (progress: DownloadProgress) => void;
}

export class ModelDownloads {
  private readonly flights = new SingleFlight<void>();
  private readonly shutdown = new AbortController();

  constructor(private readonly hub: HubSettings) {}

  /**
   * Downloads the model's hub file to `destination`, or joins the download already running.
   *
   * A client that goes away stops waiting, but the download goes on: other requests may be
   * waiting for the same file, and the next request for the model finds it installed. Only
   * `close()` stops downloads, and the partial file they leave is resumed by the next try.
   */
  fetch(model: ModelRef & { hubFile: HubFile }, destination: string, options: FetchOptions = {}) {
    const task = () => this.download(model, destination, options.onProgress);
    return this.flights.run(destination, task, options.signal);
  }

  isRunning(destination: string): boolean {
    return this.flights.isRunning(destination);
  }

  /** Stops every running download; their callers get a 503 `shutting_down`. */
  close(): void {
    this.shutdown.abort(
      new ApiError("shutting_down", "The server is shutting down. Retry the request later."),
    );
  }

  private async download(
    model: ModelRef & { hubFile: HubFile },
    destination: string,
    onProgress: FetchOptions["onProgress"],
  ): Promise<void> {
    const { log } = this.hub;
    const url = hubFileUrl(model.hubFile.repository, model.hubFile.fileName, this.hub.endpoint);
    const logProgress = createProgressLogger(log, { fileName: model.hubFile.fileName });
    const startedAt = performance.now();
    log.info({ model: model.id, url }, "downloading model");

    try {
      const result = await downloadModelFile({
        url,
        destination,
        connectTimeoutMs: this.hub.connectTimeoutMs,
        stallTimeoutMs: this.hub.stallTimeoutMs,
        resumeDelayMs: this.hub.resumeDelayMs,
        signal: this.shutdown.signal,
        logger: log,
        onProgress: (progress) => {
          logProgress(progress);
          onProgress?.(progress);
        },
      });
      await rejectUnlessWhisperModel(model, result.path, url);
      logDownloaded(log, model, result, startedAt);
    } catch (error) {
      log.error({ err: error, model: model.id, url }, "model download failed");
      throw toApiError(error, model, url);
    }
  }
}

function logDownloaded(
  log: ModelLog,
  model: ModelRef,
  result: DownloadResult,
  startedAt: number,
): void {
  const seconds = Number(((performance.now() - startedAt) / 1000).toFixed(1));
  const fields = { model: model.id, bytes: result.bytes, sha256: result.sha256, seconds };
  log.info({ ...fields, sha256Verified: result.sha256Verified }, "model downloaded");
  if (!result.sha256Verified) {
    log.warn(fields, "the hub sent no SHA-256 for the model file, so only its size was checked");
  }
}

/** Deletes a downloaded file that whisper.cpp could not load, which would crash the addon. */
async function rejectUnlessWhisperModel(model: ModelRef, filePath: string, url: string) {
  try {
    await inspectModelFile(filePath);
  } catch (error) {
    if (!(error instanceof InvalidModelFileError)) throw error;
    await rm(filePath, { force: true });
    throw new ApiError(
      "model_unavailable",
      `The file downloaded for model '${model.id}' from ${url} is not a whisper.cpp ggml ` +
        `model (${error.reason}), so it was deleted.`,
      { retryable: false, cause: error },
    );
  }
}

/**
 * Maps a download failure to the error the API returns. Only an unreachable or failing hub
 * gets Retry-After; the other failures recur on retry and are marked not retryable. Messages
 * name the model and the hub URL but no local path, because they reach clients.
 */
function toApiError(error: unknown, model: ModelRef, url: string): unknown {
  if (error instanceof ApiError) return error;

  const byHand =
    `download the file yourself and place it in the model folder (MODEL_DIR) as ` +
    `${model.fileName}.`;
  if (error instanceof HubUnavailableError) {
    return new ApiError(
      "model_unavailable",
      `Model '${model.id}' could not be downloaded from ${url}: ${error.message}. ` +
        `Try again later, or ${byHand}`,
      { retryAfterSeconds: HUB_RETRY_AFTER_SECONDS, cause: error },
    );
  }
  if (isMissingOnHub(error)) {
    return new ApiError("model_not_found", notFoundMessage(model, url, error.status), {
      param: "model",
      cause: error,
    });
  }
  if (error instanceof IntegrityError) {
    return new ApiError(
      "model_unavailable",
      `The download of model '${model.id}' from ${url} was rejected: ${error.message} ` +
        `The hub serves this file with the wrong size or SHA-256, so ${byHand}`,
      { retryable: false, cause: error },
    );
  }
  if (error instanceof InsufficientSpaceError) {
    return new ApiError(
      "model_unavailable",
      `Model '${model.id}' could not be downloaded: ${error.message}`,
      { retryable: false, cause: error },
    );
  }
  if (error instanceof ModelDownloadError) {
    return new ApiError(
      "model_unavailable",
      `Model '${model.id}' could not be downloaded from ${url}: ${error.message}. ` +
        `Check HF_ENDPOINT, or ${byHand}`,
      { retryable: false, cause: error },
    );
  }
  return fileSystemError(error, model) ?? error;
}

/**
 * The hub returns 404 for a missing file, 401 for a repository that is missing or private, and
 * 403 for a gated one.
 */
function isMissingOnHub(error: unknown): error is ModelDownloadError {
  return (
    error instanceof ModelNotFoundOnHubError ||
    (error instanceof ModelDownloadError && (error.status === 401 || error.status === 403))
  );
}

function notFoundMessage(model: ModelRef, url: string, status: number | undefined): string {
  const access =
    status === 401 || status === 403
      ? ` The hub returned HTTP ${status}: the repository does not exist, or it is private ` +
        "or gated, which needs a token that earshot does not send."
      : "";
  return `The model '${model.id}' does not exist: ${url} was not found.${access}`;
}

/** Errors of the model folder itself, worded without its path. */
function fileSystemError(error: unknown, model: ModelRef): ApiError | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new ApiError(
      "model_unavailable",
      `Model '${model.id}' could not be downloaded: the model folder (MODEL_DIR) is out of ` +
        "disk space.",
      { retryable: false, cause: error },
    );
  }
  if (code === "ENOTDIR" || code === "EEXIST") {
    return new ApiError(
      "model_unavailable",
      `Model '${model.id}' could not be downloaded: the model folder (MODEL_DIR) is not a ` +
        `folder (${code}).`,
      { retryable: false, cause: error },
    );
  }
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new ApiError(
      "model_unavailable",
      `Model '${model.id}' could not be downloaded: the model folder (MODEL_DIR) is not ` +
        `writable (${code}).`,
      { retryable: false, cause: error },
    );
  }
  return undefined;
}
