// Errors of a model download. Each carries the hub URL that was requested, never a signed CDN
// URL, so that messages can name it.

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
        `is ${actual} but the hub reports ${expected}. The partial download was deleted.`,
      url,
    );
  }
}

export interface InsufficientSpaceDetails {
  /** The file's size as the hub reports it, if it does. */
  expectedSize: number | undefined;
  /** Bytes of the file already in the partial file. */
  bytesWritten: number;
  freeBytes: number;
  /** Bytes that downloads leave free on the file system. */
  reserveBytes: number;
  url: string;
}

/**
 * MODEL_DIR's file system has too little free space for the file; the partial file is deleted.
 * The message names the sizes but not the folder, because it reaches API clients.
 */
export class InsufficientSpaceError extends ModelDownloadError {
  override name = "InsufficientSpaceError";
  readonly details: Omit<InsufficientSpaceDetails, "url">;

  constructor({ url, ...details }: InsufficientSpaceDetails) {
    super(describeShortage(fileNameOf(url), details), url);
    this.details = details;
  }
}

function describeShortage(
  fileName: string,
  details: Omit<InsufficientSpaceDetails, "url">,
): string {
  const free =
    `the model folder's file system has ${formatBytes(details.freeBytes)} free, and ` +
    `downloads leave ${formatBytes(details.reserveBytes)} of it unused`;
  if (details.expectedSize === undefined) {
    return (
      `The download of ${fileName} stopped after ${formatBytes(details.bytesWritten)} ` +
      `because ${free}. Free some space or set MODEL_DIR to a larger volume.`
    );
  }
  return (
    `${fileName} is ${formatBytes(details.expectedSize)}, with ` +
    `${formatBytes(details.expectedSize - details.bytesWritten)} still to download, but ` +
    `${free}. Free some space or set MODEL_DIR to a larger volume.`
  );
}

/** Formats a byte count exactly, with decimal megabytes (10^6 bytes) for reading. */
function formatBytes(bytes: number): string {
  return `${bytes} bytes (${(bytes / 1_000_000).toFixed(1)} MB)`;
}

export function fileNameOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.split("/").pop() ?? url);
}
