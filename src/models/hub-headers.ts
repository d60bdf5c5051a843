// Parsing of the response headers that state a model file's size and SHA-256: the hub's
// `X-Linked-*` headers on its redirect, Content-Length and Content-Range.

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The size and SHA-256 the hub reports; either may be missing. */
export interface ExpectedFile {
  size?: number;
  sha256?: string;
}

/**
 * Fills `expected` from the first redirect that carries `X-Linked-Etag` or `X-Linked-Size`.
 * Only a 64-digit hex etag is a SHA-256. Files kept in Git rather than LFS have a Git SHA-1
 * etag instead, which is not checked.
 */
export function readLinkedHeaders(headers: Headers, expected: ExpectedFile): void {
  const etag = headers.get("x-linked-etag")?.replace(/^W\//, "").replaceAll('"', "").toLowerCase();
  if (expected.sha256 === undefined && etag !== undefined && SHA256_HEX.test(etag)) {
    expected.sha256 = etag;
  }
  const size = parseByteCount(headers.get("x-linked-size"));
  if (expected.size === undefined && size !== undefined) expected.size = size;
}

/** Returns the file size that a 200's Content-Length or a 206's Content-Range states. */
export function sizeFromResponse(response: Response): number | undefined {
  if (response.status === 206) {
    return parseContentRange(response.headers.get("content-range"))?.total;
  }
  return parseByteCount(response.headers.get("content-length"));
}

// Parses the Content-Range of a 416 response, `bytes */TOTAL`.
export function parseUnsatisfiedRange(value: string | null): number | undefined {
  const match = /^bytes \*\/(\d+)$/.exec(value?.trim() ?? "");
  return match ? Number(match[1]) : undefined;
}

interface ContentRange {
  start: number;
  /** The whole file's size, undefined when the server sends `*`. */
  total?: number;
}

/** Parses `bytes START-END/TOTAL`; TOTAL may be `*`, meaning unknown. */
export function parseContentRange(value: string | null): ContentRange | undefined {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(value?.trim() ?? "");
  if (!match) return undefined;
  const total = match[2] === "*" ? undefined : Number(match[2]);
  return { start: Number(match[1]), total };
}

function parseByteCount(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}
