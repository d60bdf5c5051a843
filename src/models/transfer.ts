// One attempt at transferring a model file: the request chain, the body, the checks against
// the hub's size and SHA-256, and the rename into place.
//
// For a Git LFS file the hub responds with a redirect to a CDN, and that redirect carries the
// file's SHA-256 in `X-Linked-Etag` and its size in `X-Linked-Size`. Redirects are therefore
// followed by hand, as huggingface_hub's own download code does, so that those headers are read.

import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, rm, stat, type FileHandle } from "node:fs/promises";

import { AttemptConnection } from "./attempt-connection.js";
import {
  fileNameOf,
  HubUnavailableError,
  IntegrityError,
  ModelDownloadError,
  ModelNotFoundOnHubError,
} from "./download-errors.js";
import type { DownloadResult, DownloadSettings } from "./download.js";
import { ProgressTracker } from "./progress.js";

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Minimum time between two `onProgress` calls while bytes arrive, in ms. */
const PROGRESS_INTERVAL_MS = 100;

/** Makes one transfer attempt, resuming the partial file if one exists, and installs the file. */
export async function transferOnce(settings: DownloadSettings): Promise<DownloadResult> {
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
