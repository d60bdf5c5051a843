// A stand-in for the Hugging Face hub and its CDN, served on 127.0.0.1 for download tests.
//
// `GET /ggerganov/whisper.cpp/resolve/main/NAME` responds as the hub does for a Git LFS file:
// a 302 to a CDN URL with `X-Linked-Etag: "<sha256>"` and `X-Linked-Size: <bytes>`, or a 404
// with `X-Error-Code: EntryNotFound`. The CDN path `/cdn/<sha256>` sends the bytes and honours
// `Range: bytes=N-` with a 206. Switches in `behaviour` produce the failures tests need.

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

const RESOLVE_PREFIX = "/ggerganov/whisper.cpp/resolve/main/";
const CDN_PREFIX = "/cdn/";

export interface StandInHubBehaviour {
  /** Flips one byte in the middle of every body the CDN sends. */
  corruptBody?: boolean;
  /** Appends this many bytes to every body the CDN sends, beyond the size the hub reports. */
  extraBytes?: number;
  /** Closes the socket after this many body bytes, on the next CDN transfer only. */
  dropConnectionAfterBytes?: number;
  /** Sends this many body bytes, then nothing more until the client gives up. */
  stallAfterBytes?: number;
  /** Delay between two body chunks, in ms, to make a transfer slow. */
  chunkDelayMs?: number;
  /** Size of each body chunk in bytes (default 64 KiB). */
  chunkBytes?: number;
  /** Responds to range requests with the whole file and a 200, like a server without ranges. */
  ignoreRange?: boolean;
  /** Leaves `X-Linked-Etag` and `X-Linked-Size` off the redirect. */
  omitLinkedHeaders?: boolean;
  /** Relative redirects the hub sends before the CDN redirect, as for a renamed repository. */
  relativeRedirects?: number;
  /** Sends this size in `X-Linked-Size` in place of the file's real size. */
  linkedSizeBytes?: number;
  /**
   * Sends this Content-Length on full (200) CDN responses in place of the body's length, then
   * closes the connection after the real body. 206 and 416 responses keep the real length.
   */
  contentLengthBytes?: number;
  /** Sends full (200) CDN bodies chunked, without Content-Length. */
  omitContentLength?: boolean;
  /** Sends 416 responses without the Content-Range header that states the file's size. */
  omitUnsatisfiedRangeTotal?: boolean;
  /** Sends this Location on the hub's redirect in place of the CDN URL; null leaves it off. */
  redirectLocation?: string | null;
}

export interface RecordedRequest {
  /** `resolve` for the hub path, `cdn` for the CDN path, `other` for anything else. */
  kind: "resolve" | "cdn" | "other";
  method: string;
  path: string;
  /** The request's Range header, if any. */
  range: string | undefined;
}

export interface StandInHub {
  /** Base URL such as `http://127.0.0.1:40123`, for use as HF_ENDPOINT. */
  url: string;
  /** Switches read on every request, so a test may change them between downloads. */
  behaviour: StandInHubBehaviour;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** Returns the number of CDN requests, which is the number of transfers started. */
  cdnRequestCount(): number;
  close(): Promise<void>;
}

interface HostedFile {
  body: Buffer;
  sha256: string;
}

/**
 * Starts the stand-in hub on 127.0.0.1 with an ephemeral port. `files` maps file names such as
 * `ggml-tiny.bin` to their bytes or to the path of a file to serve.
 */
export async function startStandInHub(
  files: Record<string, Buffer | string>,
  behaviour: StandInHubBehaviour = {},
): Promise<StandInHub> {
  const byName = await loadFiles(files);
  const requests: RecordedRequest[] = [];
  const server = http.createServer();
  const hub: StandInHub = {
    url: "",
    behaviour,
    requests,
    cdnRequestCount: () => requests.filter((request) => request.kind === "cdn").length,
    close: () => closeServer(server),
  };

  server.on("request", (request, response) => {
    route(hub, byName, request, response).catch((error: unknown) => {
      response.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return hub;
}

async function loadFiles(
  files: Record<string, Buffer | string>,
): Promise<Map<string, HostedFile>> {
  const byName = new Map<string, HostedFile>();
  for (const [name, source] of Object.entries(files)) {
    const body = typeof source === "string" ? await readFile(source) : source;
    byName.set(name, { body, sha256: createHash("sha256").update(body).digest("hex") });
  }
  return byName;
}

async function route(
  hub: StandInHub,
  byName: Map<string, HostedFile>,
  request: http.IncomingMessage,
  response: http.ServerResponse,
): Promise<void> {
  const url = new URL(request.url ?? "/", hub.url);
  const kind = url.pathname.startsWith(RESOLVE_PREFIX)
    ? "resolve"
    : url.pathname.startsWith(CDN_PREFIX)
      ? "cdn"
      : "other";
  hub.requests.push({
    kind,
    method: request.method ?? "GET",
    path: url.pathname + url.search,
    range: request.headers.range,
  });

  if (kind === "resolve") return resolveFile(hub, byName, url, response);
  if (kind === "cdn") return sendFromCdn(hub, byName, request, url, response);
  sendNotFound(response);
}

function resolveFile(
  hub: StandInHub,
  byName: Map<string, HostedFile>,
  url: URL,
  response: http.ServerResponse,
): void {
  const name = decodeURIComponent(url.pathname.slice(RESOLVE_PREFIX.length));
  const file = byName.get(name);
  if (!file) return sendNotFound(response);

  const hop = Number(url.searchParams.get("hop") ?? "0");
  if (hop < (hub.behaviour.relativeRedirects ?? 0)) {
    response.writeHead(307, { location: `${url.pathname}?hop=${hop + 1}` }).end();
    return;
  }

  const { linkedSizeBytes, redirectLocation } = hub.behaviour;
  const headers: http.OutgoingHttpHeaders = { "x-repo-commit": "0".repeat(40) };
  if (redirectLocation !== null) {
    headers.location = redirectLocation ?? `${hub.url}${CDN_PREFIX}${file.sha256}`;
  }
  if (!hub.behaviour.omitLinkedHeaders) {
    headers["x-linked-etag"] = `"${file.sha256}"`;
    headers["x-linked-size"] = String(linkedSizeBytes ?? file.body.length);
  }
  response.writeHead(302, headers).end();
}

function sendNotFound(response: http.ServerResponse): void {
  response
    .writeHead(404, { "content-type": "application/json", "x-error-code": "EntryNotFound" })
    .end(JSON.stringify({ error: "Entry not found" }));
}

async function sendFromCdn(
  hub: StandInHub,
  byName: Map<string, HostedFile>,
  request: http.IncomingMessage,
  url: URL,
  response: http.ServerResponse,
): Promise<void> {
  const sha256 = url.pathname.slice(CDN_PREFIX.length);
  const file = [...byName.values()].find((hosted) => hosted.sha256 === sha256);
  if (!file) return sendNotFound(response);

  const body = servedBody(hub.behaviour, file.body);
  const start = hub.behaviour.ignoreRange ? 0 : rangeStart(request.headers.range);
  if (start >= body.length && start > 0) {
    const headers: http.OutgoingHttpHeaders = {};
    if (!hub.behaviour.omitUnsatisfiedRangeTotal) {
      headers["content-range"] = `bytes */${body.length}`;
    }
    response.writeHead(416, headers).end();
    return;
  }

  const headers: http.OutgoingHttpHeaders = {
    "accept-ranges": "bytes",
    "content-type": "application/octet-stream",
    "content-length": String(body.length - start),
  };
  if (start > 0) headers["content-range"] = `bytes ${start}-${body.length - 1}/${body.length}`;
  const overstated = start === 0 ? hub.behaviour.contentLengthBytes : undefined;
  if (overstated !== undefined) headers["content-length"] = String(overstated);
  if (start === 0 && hub.behaviour.omitContentLength) delete headers["content-length"];
  response.writeHead(start > 0 ? 206 : 200, headers);
  if (request.method === "HEAD") return void response.end();

  await streamBody(hub.behaviour, body.subarray(start), response);
  if (overstated !== undefined) await closeConnection(response);
}

/** Parses `bytes=N-`, the only form the downloader sends. Any other Range header is ignored. */
function rangeStart(header: string | undefined): number {
  const match = /^bytes=(\d+)-$/.exec(header ?? "");
  return match ? Number(match[1]) : 0;
}

function servedBody(behaviour: StandInHubBehaviour, original: Buffer): Buffer {
  const body = Buffer.concat([original, Buffer.alloc(behaviour.extraBytes ?? 0, 0x2a)]);
  if (behaviour.corruptBody) {
    const middle = Math.floor(original.length / 2);
    body[middle] = (body[middle] ?? 0) ^ 0xff;
  }
  return body;
}

async function streamBody(
  behaviour: StandInHubBehaviour,
  body: Buffer,
  response: http.ServerResponse,
): Promise<void> {
  const dropAfter = behaviour.dropConnectionAfterBytes;
  behaviour.dropConnectionAfterBytes = undefined;
  const stallAfter = behaviour.stallAfterBytes ?? Infinity;
  const limit = Math.min(body.length, dropAfter ?? Infinity, stallAfter);
  const chunkBytes = behaviour.chunkBytes ?? 64 * 1024;

  for (let sent = 0; sent < limit && !response.destroyed; sent += chunkBytes) {
    if (sent > 0 && behaviour.chunkDelayMs) await sleep(behaviour.chunkDelayMs);
    const chunk = body.subarray(sent, Math.min(sent + chunkBytes, limit));
    if (!response.write(chunk)) await waitForDrain(response);
  }

  if (dropAfter !== undefined && dropAfter < body.length) {
    await closeConnection(response);
  } else if (limit === body.length) {
    response.end();
  }
  // Otherwise the transfer stalls: the response stays open until the client or close() ends it.
}

/** Cuts the connection after the bytes written so far have left. */
async function closeConnection(response: http.ServerResponse): Promise<void> {
  const socket = response.socket;
  if (socket) await new Promise<void>((resolve) => socket.end(resolve));
  response.destroy();
}

function waitForDrain(response: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.on("drain", done);
    response.on("close", done);
  });
}

async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve, reject) =>
    server.close((error) => (error ? reject(error) : resolve())),
  );
}
