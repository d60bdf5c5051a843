// Helpers for the model store tests: a temporary model folder, captured logs, a port nothing
// listens on, and a front that serves other hub repositories from the stand-in hub.
import { mkdtemp } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";

import { TEST_MODEL_DIR } from "../setup/test-models.js";

/** The generated micro models that the stand-in hub serves under published names. */
export const MICRO_MODEL = path.join(TEST_MODEL_DIR, "ggml-micro.bin");
export const MICRO_EN_MODEL = path.join(TEST_MODEL_DIR, "ggml-micro.en.bin");

export function temporaryModelDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), "earshot-models-"));
}

/** Creates a pino logger that keeps its JSON lines, parsed, in `lines`. */
export function capturedLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { log: pino({ level: "info" }, stream), lines };
}

/** Returns a port on 127.0.0.1 that nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface RepositoryFront {
  url: string;
  /** Paths requested, in order. */
  paths: string[];
  close(): Promise<void>;
}

/**
 * Starts a server on 127.0.0.1 in place of the hub's other repositories. It redirects
 * `/OWNER/REPO/resolve/main/FILE` to the stand-in hub's whisper.cpp path for FILE. For the owner
 * `private` it returns 401 with `X-Error-Code: RepoNotFound`, as the hub does for a repository
 * that is missing or private.
 */
export async function startRepositoryFront(hubUrl: string): Promise<RepositoryFront> {
  const paths: string[] = [];
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    paths.push(url.pathname);
    const match = /^\/([^/]+)\/([^/]+)\/resolve\/main\/([^/]+)$/.exec(url.pathname);
    if (!match) return void response.writeHead(404).end();
    if (match[1] === "private") {
      return void response.writeHead(401, { "x-error-code": "RepoNotFound" }).end();
    }
    const location = `${hubUrl}/ggerganov/whisper.cpp/resolve/main/${match[3]}`;
    response.writeHead(307, { location }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    paths,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
