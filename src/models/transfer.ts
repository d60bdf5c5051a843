// One attempt at transferring a model file: the request chain, the body, the checks against
// the hub's size and SHA-256, and the rename into place.
//
// For a Git LFS file the hub responds with a redirect to a CDN, and that redirect carries the
// file's SHA-256 in `X-Linked-Etag` and its size in `X-Linked-Size`. Redirects are therefore
// followed by hand, as huggingface_hub's own download code does, so that those headers are read.

import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, rm, stat, type FileHandle } from "node:fs/promises";
import path from "node:path";

import { AttemptConnection } from "./attempt-connection.js";
import { FreeSpaceGuard } from "./disk-space.js";
import {
  fileNameOf,
  HubUnavailableError,
  InsufficientSpaceError,
  IntegrityError,
  ModelDownloadError,
  ModelNotFoundOnHubError,
} from "./download-errors.js";
import type { DownloadResult, DownloadSettings } from "./download.js";
import {
  parseContentRange,
  parseUnsatisfiedRange,
  readLinkedHeaders,
  sizeFromResponse,
  type ExpectedFile,
} from "./hub-headers.js";
import { ProgressTracker } from "./progress.js";

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Minimum time between two `onProgress` calls while bytes arrive, in ms. */
const PROGRESS_INTERVAL_MS = 100;

/** Facts that the attempts of one download pass on to the attempts after them. */
export interface TransferHistory {
  /** The file size that an earlier response declared, from its headers. */
  declaredSize?: number;
  /** Length of the partial file right after this download last appended to it. */
  writtenBytes?: number;
}

/**
 * Makes one transfer attempt, resuming the partial file if one exists, and installs the file.
 * Deletes the partial file when the file system is out of space, because no resume can succeed.
 */
export async function transferOnce(
  settings: DownloadSettings,
  history: TransferHistory,
): Promise<DownloadResult> {
  const partial = await PartialFile.open(`${settings.destination}.part`);
  const connection = new AttemptConnection(settings);
  try {
    const opened = await openBody(connection, settings, partial, history);
    const resumedFromBytes = partial.bytes;
    const received = await receiveBody(connection, opened, partial, settings, history);
    return await installVerified(received, opened.expected, partial, resumedFromBytes, settings);
  } catch (error) {
    if (isOutOfSpace(error)) await partial.discard();
    throw error;
  } finally {
    connection.close();
  }
}

function isOutOfSpace(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return error instanceof InsufficientSpaceError || code === "ENOSPC" || code === "EDQUOT";
}

interface OpenedBody {
  response: Response;
  expected: ExpectedFile;
}

/**
 * Opens a response whose body continues the partial file. Discards the partial file when the
 * server cannot continue it: a 416, or a 200 that ignored the range. Throws IntegrityError
 * when the server's file is shorter or longer than the hub reports.
 */
async function openBody(
  connection: AttemptConnection,
  settings: DownloadSettings,
  partial: PartialFile,
  history: TransferHistory,
): Promise<OpenedBody> {
  let opened = await followRedirects(connection, settings, partial);
  if (opened.response.status === 416 && partial.bytes > 0) {
    const declaredSize = opened.expected.size ?? history.declaredSize;
    const mismatch = sizeMismatchOf416(opened.response, partial, declaredSize, history, settings);
    if (mismatch) {
      await partial.discard();
      throw mismatch;
    }
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
  if (response.status === 206) {
    checkRangeStart(response, partial.bytes, settings.url);
    // Without X-Linked-Size, the size an earlier response of this download declared counts.
    const declaredSize = expected.size ?? history.declaredSize;
    await checkRangeTotal(response, declaredSize, partial, settings.url);
  }
  expected.size ??= sizeFromResponse(response);
  history.declaredSize = expected.size ?? history.declaredSize;
  return opened;
}

/**
 * Returns an IntegrityError when a 416 shows that the server's file is shorter than declared.
 * A 416 for `bytes=N-` means the file has at most N bytes. It has exactly N bytes when the
 * Content-Range total states it, or when this download itself received the byte before N. Then
 * resuming or restarting would fetch the same short file. Returns undefined when the partial
 * file may be stale, so that the caller starts from zero.
 */
function sizeMismatchOf416(
  response: Response,
  partial: PartialFile,
  declaredSize: number | undefined,
  history: TransferHistory,
  settings: DownloadSettings,
): IntegrityError | undefined {
  const total = parseUnsatisfiedRange(response.headers.get("content-range"));
  const receivedLastByte = history.writtenBytes === partial.bytes;
  const fileSize = total ?? (receivedLastByte ? partial.bytes : undefined);
  if (fileSize !== partial.bytes || declaredSize === undefined || declaredSize === fileSize) {
    return undefined;
  }
  return new IntegrityError("size", String(declaredSize), String(fileSize), 0, settings.url);
}

/** Throws IntegrityError when a 206's Content-Range total differs from the hub's size. */
async function checkRangeTotal(
  response: Response,
  expectedSize: number | undefined,
  partial: PartialFile,
  hubUrl: string,
): Promise<void> {
  const total = parseContentRange(response.headers.get("content-range"))?.total;
  if (expectedSize === undefined || total === undefined || total === expectedSize) return;

  await cancelBody(response);
  await partial.discard();
  throw new IntegrityError("size", String(expectedSize), String(total), 0, hubUrl);
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

async function cancelBody(response: Response): Promise<void> {
  // A body that fails while being discarded changes nothing about the outcome.
  await response.body?.cancel().catch(() => undefined);
}

interface ReceivedFile {
  bytes: number;
  sha256: string;
}

/**
 * Appends the body to the partial file, hashing what was already there first. Stops with
 * InsufficientSpaceError before the file system's free space runs out.
 */
async function receiveBody(
  connection: AttemptConnection,
  opened: OpenedBody,
  partial: PartialFile,
  settings: DownloadSettings,
  history: TransferHistory,
): Promise<ReceivedFile> {
  const hash = await partial.hashContents();
  const tracker = new ProgressTracker(opened.expected.size, partial.bytes);
  const folder = path.dirname(partial.path);
  const freeSpace = new FreeSpaceGuard(folder, opened.expected.size, settings.url);
  await freeSpace.check(partial.bytes);
  const file = await open(partial.path, partial.bytes > 0 ? "a" : "w");
  let lastReportMs = performance.now();
  settings.onProgress?.(tracker.update(partial.bytes));

  try {
    for await (const chunk of connection.body(opened.response)) {
      hash.update(chunk);
      await writeAll(file, chunk);
      partial.bytes += chunk.byteLength;
      history.writtenBytes = partial.bytes;
      await freeSpace.check(partial.bytes);
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
 * stays for a resume. If the body was whole, that resume gets a 416, which `openBody` reports
 * as a size mismatch.
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
