// Downloads one whisper.cpp ggml model file from the Hugging Face hub (or a mirror), verifies
// it and moves it into place.
//
// For a Git LFS file the hub responds with a redirect to a CDN, and that redirect carries the
// file's SHA-256 in `X-Linked-Etag` and its size in `X-Linked-Size`. Redirects are therefore
// followed by hand, as huggingface_hub's own download code does, so that those headers are read.

import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rename, rm, stat, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";

import { ProgressTracker, type DownloadProgress } from "./progress.js";

export const DEFAULT_HUB_ENDPOINT = "https://huggingface.co";
const WHISPER_REPOSITORY = "ggerganov/whisper.cpp";

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Minimum time between two `onProgress` calls while bytes arrive, in ms. */
const PROGRESS_INTERVAL_MS = 100;

/** Returns the hub URL of a file in whisper.cpp's model repository, such as `ggml-base.bin`. */
export function whisperModelUrl(fileName: string, endpoint = DEFAULT_HUB_ENDPOINT): string {
  const base = endpoint.replace(/\/+$/, "");
  return `${base}/${WHISPER_REPOSITORY}/resolve/main/${encodeURIComponent(fileName)}`;
}

export interface DownloadOptions {
  /** The file's URL on the hub, as built by `whisperModelUrl`. */
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
  logger?: Logger;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
  /** Whether the SHA-256 matched the hub's `X-Linked-Etag`, which only LFS files carry. */
  sha256Verified: boolean;
}

/** A failed download. `url` is the hub URL that was requested, never a signed CDN URL. */
export class ModelDownloadError extends Error {
  override name = "ModelDownloadError";
  /** HTTP status of the response that failed, when the failure is a response. */
  readonly status: number | undefined;

  constructor(
    message: string,
    readonly url: string,
    options: { cause?: unknown; status?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.status = options.status;
  }
}

/**
 * Why the hub could not deliver: `connect_failed` (refused, reset, DNS), `connect_timeout`
 * (no response headers in time), `stalled` (no body bytes in time), `connection_dropped` (the
 * body ended early) or `server_error` (HTTP 429 or 5xx).
 */
export type HubUnavailableReason =
  | "connect_failed"
  | "connect_timeout"
  | "stalled"
  | "connection_dropped"
  | "server_error";

/** The hub or its CDN could not be reached or stopped sending; a later try may succeed. */
export class HubUnavailableError extends ModelDownloadError {
  override name = "HubUnavailableError";

  constructor(
    readonly reason: HubUnavailableReason,
    message: string,
    url: string,
    options: { cause?: unknown; status?: number } = {},
  ) {
    super(message, url, options);
  }
}

/** The hub has no file at the URL (HTTP 404). */
export class ModelNotFoundOnHubError extends ModelDownloadError {
  override name = "ModelNotFoundOnHubError";
}

/** The received file's size or SHA-256 differs from the hub's; the partial file is deleted. */
export class IntegrityError extends ModelDownloadError {
  override name = "IntegrityError";

  constructor(
    readonly check: "size" | "sha256",
    readonly expected: string,
    readonly actual: string,
    /** Bytes kept from an earlier attempt, which may come from an older revision of the file. */
    readonly resumedFromBytes: number,
    url: string,
  ) {
    super(
      `${fileNameOf(url)} failed verification: its ${check === "size" ? "size" : "SHA-256"} ` +
        `is ${actual} but the hub reports ${expected}. The partial download was deleted, ` +
        "so the next try starts from zero.",
      url,
    );
  }
}

interface DownloadSettings extends DownloadOptions {
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
 * Throws HubUnavailableError, ModelNotFoundOnHubError, IntegrityError, ModelDownloadError for
 * other HTTP failures, the signal's reason when aborted, and file system errors as they are.
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
  for (;;) {
    try {
      return await transferOnce(settings);
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

async function transferOnce(settings: DownloadSettings): Promise<DownloadResult> {
  const partial = await PartialFile.open(`${settings.destination}.part`);
  const connection = new AttemptConnection(settings);
  try {
    const opened = await openBody(connection, settings, partial);
    const resumedFromBytes = partial.bytes;
    const received = await receiveBody(connection, opened, partial, settings);
    return await installVerified(received, opened.expected, partial, resumedFromBytes, settings);
  } finally {
    connection.close();
  }
}

/** The size and SHA-256 the hub reports; either may be missing. */
interface ExpectedFile {
  size?: number;
  sha256?: string;
}

interface OpenedBody {
  response: Response;
  expected: ExpectedFile;
}

/**
 * Opens a response whose body continues the partial file. Discards the partial file when the
 * server cannot continue it: a 416, or a 200 that ignored the range.
 */
async function openBody(
  connection: AttemptConnection,
  settings: DownloadSettings,
  partial: PartialFile,
): Promise<OpenedBody> {
  let opened = await followRedirects(connection, settings, partial);
  if (opened.response.status === 416 && partial.bytes > 0) {
    settings.logger?.warn(
      { url: settings.url, partialBytes: partial.bytes },
      "the server rejected the range of the partial download; starting from zero",
    );
    await partial.discard();
    opened = await followRedirects(connection, settings, partial);
  }

  const { response, expected } = opened;
  if (response.status !== 200 && response.status !== 206) {
    await cancelBody(response);
    throw errorForStatus(response, settings.url);
  }
  if (response.status === 200 && partial.bytes > 0) await partial.discard();
  if (response.status === 206) checkRangeStart(response, partial.bytes, settings.url);
  expected.size ??= sizeFromResponse(response);
  return opened;
}

/** Sends the request chain for the file, reading the hub's `X-Linked-*` headers on the way. */
async function followRedirects(
  connection: AttemptConnection,
  settings: DownloadSettings,
  partial: PartialFile,
): Promise<OpenedBody> {
  const expected: ExpectedFile = {};
  let url = settings.url;
  for (let hop = 0; hop <= settings.maxRedirects; hop++) {
    const response = await connection.get(url, partial.bytes);
    if (!REDIRECT_STATUSES.has(response.status)) return { response, expected };

    await cancelBody(response);
    readLinkedHeaders(response.headers, expected);
    url = redirectTarget(response, url, settings.url);
    // A range that starts at or past the end would get 416, so skip that round trip.
    if (expected.size !== undefined && partial.bytes >= expected.size) await partial.discard();
  }
  throw new ModelDownloadError(
    `${settings.url} redirected more than ${settings.maxRedirects} times`,
    settings.url,
  );
}

/**
 * Fills `expected` from the first redirect that carries `X-Linked-Etag` or `X-Linked-Size`.
 * Only a 64-digit hex etag is a SHA-256. Files kept in Git rather than LFS have a Git SHA-1
 * etag instead, which is not checked.
 */
function readLinkedHeaders(headers: Headers, expected: ExpectedFile): void {
  const etag = headers.get("x-linked-etag")?.replace(/^W\//, "").replaceAll('"', "").toLowerCase();
  if (expected.sha256 === undefined && etag !== undefined && SHA256_HEX.test(etag)) {
    expected.sha256 = etag;
  }
  const size = parseByteCount(headers.get("x-linked-size"));
  if (expected.size === undefined && size !== undefined) expected.size = size;
}

function redirectTarget(response: Response, currentUrl: string, hubUrl: string): string {
  const location = response.headers.get("location");
  if (!location) {
    throw new ModelDownloadError(
      `HTTP ${response.status} redirect from ${new URL(currentUrl).origin} has no Location`,
      hubUrl,
      { status: response.status },
    );
  }

  const target = new URL(location, currentUrl);
  if (target.protocol !== "http:" && target.protocol !== "https:") {
    throw new ModelDownloadError(`Redirect to unsupported URL scheme ${target.protocol}`, hubUrl);
  }
  return target.href;
}

function errorForStatus(response: Response, hubUrl: string): ModelDownloadError {
  const { status } = response;
  const origin = new URL(response.url || hubUrl).origin;
  if (status === 404) {
    const code = response.headers.get("x-error-code");
    const detail = code ? ` (${code})` : "";
    const message = `${fileNameOf(hubUrl)} was not found: ${origin} returned HTTP 404${detail}`;
    return new ModelNotFoundOnHubError(message, hubUrl, { status });
  }
  if (status === 429 || status >= 500) {
    return new HubUnavailableError("server_error", `${origin} returned HTTP ${status}`, hubUrl, {
      status,
    });
  }
  const message = `${origin} returned HTTP ${status} for ${fileNameOf(hubUrl)}`;
  return new ModelDownloadError(message, hubUrl, { status });
}

function checkRangeStart(response: Response, partialBytes: number, hubUrl: string): void {
  const range = parseContentRange(response.headers.get("content-range"));
  if (range?.start === partialBytes) return;

  throw new ModelDownloadError(
    `Expected a range starting at byte ${partialBytes}, but the server sent ` +
      `Content-Range: ${response.headers.get("content-range") ?? "(missing)"}`,
    hubUrl,
    { status: response.status },
  );
}

function sizeFromResponse(response: Response): number | undefined {
  if (response.status === 206) {
    return parseContentRange(response.headers.get("content-range"))?.total;
  }
  return parseByteCount(response.headers.get("content-length"));
}

/** Parses `bytes START-END/TOTAL`; TOTAL may be `*`, meaning unknown. */
function parseContentRange(value: string | null): { start: number; total?: number } | undefined {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(value?.trim() ?? "");
  if (!match) return undefined;
  const total = match[2] === "*" ? undefined : Number(match[2]);
  return { start: Number(match[1]), total };
}

function parseByteCount(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

async function cancelBody(response: Response): Promise<void> {
  // A body that fails while being discarded changes nothing about the outcome.
  await response.body?.cancel().catch(() => undefined);
}

interface ReceivedFile {
  bytes: number;
  sha256: string;
}

/** Appends the body to the partial file, hashing what was already there first. */
async function receiveBody(
  connection: AttemptConnection,
  opened: OpenedBody,
  partial: PartialFile,
  settings: DownloadSettings,
): Promise<ReceivedFile> {
  const hash = await partial.hashContents();
  const tracker = new ProgressTracker(opened.expected.size, partial.bytes);
  const file = await open(partial.path, partial.bytes > 0 ? "a" : "w");
  let lastReportMs = performance.now();
  settings.onProgress?.(tracker.update(partial.bytes));

  try {
    for await (const chunk of connection.body(opened.response)) {
      hash.update(chunk);
      await writeAll(file, chunk);
      partial.bytes += chunk.byteLength;
      if (performance.now() - lastReportMs >= PROGRESS_INTERVAL_MS) {
        lastReportMs = performance.now();
        settings.onProgress?.(tracker.update(partial.bytes));
      }
    }
    await file.sync();
  } finally {
    await file.close();
  }

  settings.onProgress?.(tracker.update(partial.bytes));
  return { bytes: partial.bytes, sha256: hash.digest("hex") };
}

async function writeAll(file: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await file.write(chunk, offset);
    offset += bytesWritten;
  }
}

/**
 * Checks the received file against the expected size and SHA-256 and renames it into place.
 * A body shorter than the expected size counts as a dropped connection, so the partial file
 * stays for a resume.
 */
async function installVerified(
  received: ReceivedFile,
  expected: ExpectedFile,
  partial: PartialFile,
  resumedFromBytes: number,
  settings: DownloadSettings,
): Promise<DownloadResult> {
  const { url } = settings;
  if (expected.size !== undefined && received.bytes < expected.size) {
    const message = `The download ended after ${received.bytes} of ${expected.size} bytes`;
    throw new HubUnavailableError("connection_dropped", message, url);
  }
  if (expected.size !== undefined && received.bytes !== expected.size) {
    await partial.discard();
    const [want, got] = [String(expected.size), String(received.bytes)];
    throw new IntegrityError("size", want, got, resumedFromBytes, url);
  }
  if (expected.sha256 !== undefined && received.sha256 !== expected.sha256) {
    await partial.discard();
    throw new IntegrityError("sha256", expected.sha256, received.sha256, resumedFromBytes, url);
  }

  // The partial file sits beside the destination, so the rename stays on one file system
  // and readers see either the old file or the complete new one.
  await rename(partial.path, settings.destination);
  return {
    path: settings.destination,
    bytes: received.bytes,
    sha256: received.sha256,
    sha256Verified: expected.sha256 !== undefined,
  };
}

/** The `.part` file beside the destination and the number of bytes it contains. */
class PartialFile {
  private constructor(
    readonly path: string,
    public bytes: number,
  ) {}

  static async open(filePath: string): Promise<PartialFile> {
    try {
      return new PartialFile(filePath, (await stat(filePath)).size);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return new PartialFile(filePath, 0);
      throw error;
    }
  }

  async discard(): Promise<void> {
    await rm(this.path, { force: true });
    this.bytes = 0;
  }

  /** Returns a SHA-256 hash fed with the bytes already in the file, ready for more. */
  async hashContents(): Promise<Hash> {
    const hash = createHash("sha256");
    if (this.bytes === 0) return hash;
    for await (const chunk of createReadStream(this.path, { end: this.bytes - 1 })) {
      hash.update(chunk as Buffer);
    }
    return hash;
  }
}

/**
 * The requests of one attempt. They share one AbortController, which the caller's signal, the
 * connect timeout and the stall timeout all abort.
 */
class AttemptConnection {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private expiredTimeout: "connect_timeout" | "stalled" | undefined;
  private readonly forwardAbort = () => this.controller.abort(this.settings.signal?.reason);

  constructor(private readonly settings: DownloadSettings) {
    settings.signal?.addEventListener("abort", this.forwardAbort);
    if (settings.signal?.aborted) this.forwardAbort();
  }

  /** Sends a GET for the bytes from `rangeStart` on, without following redirects. */
  async get(url: string, rangeStart: number): Promise<Response> {
    // identity: a compressed body would break the byte counts that ranges and sizes rely on.
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (rangeStart > 0) headers.range = `bytes=${rangeStart}-`;

    this.arm("connect_timeout", this.settings.connectTimeoutMs);
    try {
      return await fetch(url, { headers, redirect: "manual", signal: this.controller.signal });
    } catch (error) {
      throw this.translate(error, "connect_failed", url);
    } finally {
      this.disarm();
    }
  }

  /** Yields the body's chunks; fails with HubUnavailableError if it stalls or is cut off. */
  async *body(response: Response): AsyncGenerator<Uint8Array> {
    if (!response.body) return;

    this.arm("stalled", this.settings.stallTimeoutMs);
    try {
      for await (const chunk of response.body) {
        this.timer?.refresh();
        yield chunk;
      }
    } catch (error) {
      throw this.translate(error, "connection_dropped", response.url);
    } finally {
      this.disarm();
    }
  }

  /** Stops the timers and aborts whatever is still open, such as an unread body. */
  close(): void {
    this.disarm();
    this.settings.signal?.removeEventListener("abort", this.forwardAbort);
    this.controller.abort();
  }

  private arm(timeout: "connect_timeout" | "stalled", delayMs: number): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.expiredTimeout = timeout;
      this.controller.abort();
    }, delayMs);
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Maps a fetch failure to the caller's abort reason or a HubUnavailableError. */
  private translate(error: unknown, reason: HubUnavailableReason, requestUrl: string): unknown {
    const { signal, url } = this.settings;
    if (signal?.aborted) return signal.reason;

    const origin = new URL(requestUrl).origin;
    if (this.expiredTimeout === "connect_timeout") {
      const message = `${origin} did not respond within ${this.settings.connectTimeoutMs} ms`;
      return new HubUnavailableError("connect_timeout", message, url, { cause: error });
    }
    if (this.expiredTimeout === "stalled") {
      const message = `${origin} sent no data for ${this.settings.stallTimeoutMs} ms`;
      return new HubUnavailableError("stalled", message, url, { cause: error });
    }
    // fetch reports every network failure as a TypeError with the socket error as its cause.
    if (!(error instanceof TypeError)) return error;

    const detail = error.cause instanceof Error ? error.cause.message : error.message;
    const message =
      reason === "connect_failed"
        ? `Could not connect to ${origin}: ${detail}`
        : `The connection to ${origin} closed during the download: ${detail}`;
    return new HubUnavailableError(reason, message, url, { cause: error });
  }
}

function fileNameOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.split("/").pop() ?? url);
}

/**
 * Shares one run of an async task among concurrent callers with the same key, such as a
 * download's destination path. The key is free again once the run settles, so after a failure
 * the next caller starts a new run.
 */
export class SingleFlight<T> {
  private readonly running = new Map<string, Promise<T>>();

  /**
   * Starts `task` unless a run for `key` is in flight, and returns that run's result.
   * An abort of `signal` rejects only this caller's promise, and the run goes on for the
   * others. To stop the run itself, abort the signal that `task` uses.
   */
  run(key: string, task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);

    let shared = this.running.get(key);
    if (!shared) {
      const started = Promise.resolve().then(task);
      shared = started.finally(() => {
        if (this.running.get(key) === shared) this.running.delete(key);
      });
      this.running.set(key, shared);
    }
    return signal ? rejectOnAbort(shared, signal) : shared;
  }
}

function rejectOnAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
