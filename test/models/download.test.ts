import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import {
  HubUnavailableError,
  InsufficientSpaceError,
  IntegrityError,
  ModelDownloadError,
  ModelNotFoundOnHubError,
} from "../../src/models/download-errors.js";
import {
  downloadModelFile,
  hubFileUrl,
  whisperModelUrl,
  type DownloadOptions,
  type DownloadResult,
} from "../../src/models/download.js";
import { SingleFlight } from "../../src/models/single-flight.js";
import { createProgressLogger, type DownloadProgress } from "../../src/models/progress.js";
import { startStandInHub, type StandInHub } from "../helpers/stand-in-hub.js";

const FILE_NAME = "ggml-tiny.bin";
const MODEL = randomBytes(1024 * 1024);
const MODEL_SHA256 = createHash("sha256").update(MODEL).digest("hex");

let hub: StandInHub;
let folder: string;
let destination: string;
let partialPath: string;

beforeEach(async () => {
  hub = await startStandInHub({ [FILE_NAME]: MODEL });
  folder = await mkdtemp(path.join(os.tmpdir(), "earshot-download-"));
  destination = path.join(folder, "models", FILE_NAME);
  partialPath = `${destination}.part`;
});

afterEach(async () => {
  await hub.close();
  await rm(folder, { recursive: true, force: true });
});

function download(options: Partial<DownloadOptions> = {}): Promise<DownloadResult> {
  return downloadModelFile({
    url: whisperModelUrl(FILE_NAME, hub.url),
    destination,
    resumeDelayMs: 0,
    ...options,
  });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject, but it resolved");
}

function cdnRanges(): (string | undefined)[] {
  return hub.requests.filter((request) => request.kind === "cdn").map((request) => request.range);
}

/** Returns a port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("whisperModelUrl", () => {
  it("builds the hub's resolve path", () => {
    expect(whisperModelUrl("ggml-base.en.bin", "http://127.0.0.1:9/")).toBe(
      "http://127.0.0.1:9/ggerganov/whisper.cpp/resolve/main/ggml-base.en.bin",
    );
  });

  it("defaults to huggingface.co", () => {
    expect(whisperModelUrl("ggml-base.bin")).toBe(
      "https://huggingface.co/ggerganov/whisper.cpp/resolve/main/ggml-base.bin",
    );
  });
});

describe("hubFileUrl", () => {
  it("builds another repository's resolve path", () => {
    expect(hubFileUrl("owner/repo", "ggml-model q5.bin", "http://127.0.0.1:9")).toBe(
      "http://127.0.0.1:9/owner/repo/resolve/main/ggml-model%20q5.bin",
    );
  });
});

describe("downloadModelFile", () => {
  it("downloads and verifies a file", async () => {
    const result = await download();

    expect(result.path).toBe(destination);
    expect(result.bytes).toBe(MODEL.length);
    expect(result.sha256).toBe(MODEL_SHA256);
    expect(result.sha256Verified).toBe(true);
    expect((await readFile(destination)).equals(MODEL)).toBe(true);
    expect(existsSync(partialPath)).toBe(false);
    expect(hub.requests.map((request) => request.kind)).toEqual(["resolve", "cdn"]);
    expect(cdnRanges()).toEqual([undefined]);
  });

  it("keeps defaults for options passed as undefined", async () => {
    hub.behaviour.chunkDelayMs = 20;

    const result = await download({ connectTimeoutMs: undefined, stallTimeoutMs: undefined });

    expect(result.sha256).toBe(MODEL_SHA256);
  });

  it("replaces an existing file at the destination", async () => {
    await download();
    await writeFile(destination, "old contents");

    await download();

    expect((await readFile(destination)).equals(MODEL)).toBe(true);
  });

  it("follows relative redirects before the CDN", async () => {
    hub.behaviour.relativeRedirects = 2;

    const result = await download();

    expect(result.sha256Verified).toBe(true);
    expect(hub.requests.map((request) => request.kind)).toEqual([
      "resolve",
      "resolve",
      "resolve",
      "cdn",
    ]);
  });

  it("stops after maxRedirects redirects", async () => {
    hub.behaviour.relativeRedirects = 3;

    const error = await rejection(download({ maxRedirects: 2 }));

    expect(error).toBeInstanceOf(ModelDownloadError);
    expect((error as Error).message).toMatch(/redirected more than 2 times/);
    expect(hub.cdnRequestCount()).toBe(0);
  });

  it("rejects a corrupted transfer and installs nothing", async () => {
    hub.behaviour.corruptBody = true;

    const error = await rejection(download());

    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as IntegrityError).check).toBe("sha256");
    expect((error as IntegrityError).expected).toBe(MODEL_SHA256);
    expect((error as Error).message).toContain(FILE_NAME);
    expect(existsSync(destination)).toBe(false);
    expect(existsSync(partialPath)).toBe(false);
  });

  it("rejects a body longer than the hub's size", async () => {
    hub.behaviour.extraBytes = 10;

    const error = await rejection(download());

    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as IntegrityError).check).toBe("size");
    expect((error as IntegrityError).expected).toBe(String(MODEL.length));
    expect((error as IntegrityError).actual).toBe(String(MODEL.length + 10));
    expect(existsSync(destination)).toBe(false);
    expect(existsSync(partialPath)).toBe(false);
  });

  it("checks only Content-Length without X-Linked headers", async () => {
    hub.behaviour.omitLinkedHeaders = true;
    hub.behaviour.corruptBody = true;

    const result = await download();

    expect(result.bytes).toBe(MODEL.length);
    expect(result.sha256Verified).toBe(false);
    expect(result.sha256).not.toBe(MODEL_SHA256);
  });

  it("resumes a dropped transfer with a range request", async () => {
    hub.behaviour.dropConnectionAfterBytes = 300_000;

    const result = await download();

    expect(result.sha256).toBe(MODEL_SHA256);
    expect((await readFile(destination)).equals(MODEL)).toBe(true);
    const ranges = cdnRanges();
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? "")?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(300_000);
  });

  it("keeps the partial file for the next call", async () => {
    hub.behaviour.dropConnectionAfterBytes = 300_000;

    const error = await rejection(download({ resumeAttempts: 0 }));

    expect(error).toBeInstanceOf(HubUnavailableError);
    expect((error as HubUnavailableError).reason).toBe("connection_dropped");
    const partialBytes = (await stat(partialPath)).size;
    expect(partialBytes).toBeGreaterThan(0);
    expect(existsSync(destination)).toBe(false);

    const result = await download({ resumeAttempts: 0 });

    expect(result.sha256).toBe(MODEL_SHA256);
    expect(cdnRanges()).toEqual([undefined, `bytes=${partialBytes}-`]);
  });

  it("resumes a partial file left on disk", async () => {
    await download();
    await rm(destination);
    await writeFile(partialPath, MODEL.subarray(0, 1000));

    const result = await download();

    expect(result.sha256).toBe(MODEL_SHA256);
    expect((await readFile(destination)).equals(MODEL)).toBe(true);
    expect(cdnRanges()).toEqual([undefined, "bytes=1000-"]);
  });

  it("starts over when the server ignores the range", async () => {
    await download();
    await rm(destination);
    await writeFile(partialPath, MODEL.subarray(0, 1000));
    hub.behaviour.ignoreRange = true;

    const result = await download();

    expect(result.sha256).toBe(MODEL_SHA256);
    expect(cdnRanges()).toEqual([undefined, "bytes=1000-"]);
  });

  it("starts over when the partial file exceeds the hub's size", async () => {
    await download();
    await rm(destination);
    await writeFile(partialPath, Buffer.concat([MODEL, Buffer.from("extra")]));

    const result = await download();

    expect(result.sha256).toBe(MODEL_SHA256);
    expect(cdnRanges()).toEqual([undefined, undefined]);
  });

  it("starts over after a 416", async () => {
    hub.behaviour.omitLinkedHeaders = true;
    await download();
    await rm(destination);
    await writeFile(partialPath, Buffer.concat([MODEL, Buffer.from("extra")]));

    const result = await download();

    expect(result.bytes).toBe(MODEL.length);
    expect((await readFile(destination)).equals(MODEL)).toBe(true);
    expect(cdnRanges()).toEqual([undefined, `bytes=${MODEL.length + 5}-`, undefined]);
  });

  it("restarts from zero when a resumed file fails verification", async () => {
    await download();
    await rm(destination);
    await writeFile(partialPath, randomBytes(1000));

    const result = await download();

    expect(result.sha256).toBe(MODEL_SHA256);
    expect(cdnRanges()).toEqual([undefined, "bytes=1000-", undefined]);
  });

  it("fails fast when nothing listens on the port", async () => {
    const url = whisperModelUrl(FILE_NAME, `http://127.0.0.1:${await closedPort()}`);
    const startedMs = performance.now();

    const error = await rejection(downloadModelFile({ url, destination, connectTimeoutMs: 2000 }));

    expect(performance.now() - startedMs).toBeLessThan(2000);
    expect(error).toBeInstanceOf(HubUnavailableError);
    expect((error as HubUnavailableError).reason).toBe("connect_failed");
    expect((error as HubUnavailableError).url).toBe(url);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });

  it("times out when the server never answers", async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as net.AddressInfo;
    const url = whisperModelUrl(FILE_NAME, `http://127.0.0.1:${port}`);
    const startedMs = performance.now();

    try {
      const transfer = downloadModelFile({ url, destination, connectTimeoutMs: 300 });
      const error = await rejection(transfer);

      const elapsedMs = performance.now() - startedMs;
      expect(elapsedMs).toBeGreaterThanOrEqual(290);
      expect(elapsedMs).toBeLessThan(2000);
      expect(error).toBeInstanceOf(HubUnavailableError);
      expect((error as HubUnavailableError).reason).toBe("connect_timeout");
      expect((error as Error).message).toMatch(/did not respond within 300 ms/);
    } finally {
      silent.close();
    }
  });

  it("times out when the body stalls", async () => {
    hub.behaviour.stallAfterBytes = 200_000;
    const startedMs = performance.now();

    const error = await rejection(download({ stallTimeoutMs: 300, resumeAttempts: 0 }));

    expect(performance.now() - startedMs).toBeLessThan(2000);
    expect(error).toBeInstanceOf(HubUnavailableError);
    expect((error as HubUnavailableError).reason).toBe("stalled");
    expect((await stat(partialPath)).size).toBeGreaterThan(0);
  });

  it("keeps a slow but steady body going past the stall timeout", async () => {
    hub.behaviour.chunkDelayMs = 50;

    const result = await download({ stallTimeoutMs: 250, resumeAttempts: 0 });

    expect(result.sha256).toBe(MODEL_SHA256);
    expect(hub.cdnRequestCount()).toBe(1);
  });

  it("resumes after a stall", async () => {
    hub.behaviour.stallAfterBytes = 200_000;
    const transfer = download({ stallTimeoutMs: 300 });
    await vi.waitUntil(() => hub.cdnRequestCount() === 1);
    hub.behaviour.stallAfterBytes = undefined;

    const result = await transfer;

    expect(result.sha256).toBe(MODEL_SHA256);
    expect(cdnRanges()[1]).toMatch(/^bytes=\d+-$/);
  });

  it("rejects a missing file with 404", async () => {
    const url = whisperModelUrl("ggml-missing.bin", hub.url);

    const error = await rejection(downloadModelFile({ url, destination }));

    expect(error).toBeInstanceOf(ModelNotFoundOnHubError);
    expect((error as ModelNotFoundOnHubError).status).toBe(404);
    expect((error as Error).message).toContain("ggml-missing.bin");
    expect((error as Error).message).toContain("EntryNotFound");
    expect(existsSync(partialPath)).toBe(false);
  });

  it("reports progress until the last byte", async () => {
    hub.behaviour.chunkDelayMs = 40;
    const reports: DownloadProgress[] = [];

    await download({ onProgress: (progress) => reports.push(progress) });

    expect(reports.length).toBeGreaterThanOrEqual(4);
    expect(reports[0]?.bytesDone).toBe(0);
    const last = reports[reports.length - 1];
    expect(last?.bytesDone).toBe(MODEL.length);
    expect(last?.bytesTotal).toBe(MODEL.length);
    expect(last?.bytesPerSecond).toBeGreaterThan(0);
    expect(last?.secondsLeft).toBe(0);
    const counts = reports.map((progress) => progress.bytesDone);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    const middle = reports.find((p) => p.bytesDone > 0 && p.bytesDone < MODEL.length);
    expect(middle?.secondsLeft).toBeGreaterThan(0);
  });

  it("stops on abort and keeps the partial file", async () => {
    hub.behaviour.chunkDelayMs = 50;
    const controller = new AbortController();
    const reason = new Error("client went away");
    const onProgress = (progress: DownloadProgress) => {
      if (progress.bytesDone > 0) controller.abort(reason);
    };

    const error = await rejection(download({ signal: controller.signal, onProgress }));

    expect(error).toBe(reason);
    expect(existsSync(destination)).toBe(false);
    expect((await stat(partialPath)).size).toBeGreaterThan(0);
    expect(hub.cdnRequestCount()).toBe(1);
  });
});

describe("downloadModelFile with a wrong declared size", () => {
  const declared = MODEL.length + 1000;

  /** Leaves the first `bytes` bytes of MODEL as a partial file from an earlier run. */
  async function leavePartial(bytes: number): Promise<void> {
    await mkdir(path.dirname(partialPath), { recursive: true });
    await writeFile(partialPath, MODEL.subarray(0, bytes));
  }

  function expectSizeMismatch(error: unknown, actual: number): void {
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as IntegrityError).check).toBe("size");
    expect((error as IntegrityError).expected).toBe(String(declared));
    expect((error as IntegrityError).actual).toBe(String(actual));
    expect(existsSync(partialPath)).toBe(false);
    expect(existsSync(destination)).toBe(false);
  }

  it("fails once when X-Linked-Size exceeds the body", async () => {
    hub.behaviour.linkedSizeBytes = declared;

    const error = await rejection(download());

    expectSizeMismatch(error, MODEL.length);
    expect(cdnRanges()).toEqual([undefined, `bytes=${MODEL.length}-`]);
  });

  it("fails once when Content-Length exceeds the body", async () => {
    hub.behaviour.omitLinkedHeaders = true;
    hub.behaviour.contentLengthBytes = declared;

    const error = await rejection(download());

    expectSizeMismatch(error, MODEL.length);
    // The resume starts where the cut-short body ended: at its end, or a little before it when
    // the client dropped bytes that arrived with the close.
    const ranges = cdnRanges();
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
  });

  it("fails when a resume states a total other than the declared size", async () => {
    hub.behaviour.omitLinkedHeaders = true;
    hub.behaviour.contentLengthBytes = declared;
    // Cut well before the end, so the resume's 206 states the real total in Content-Range.
    hub.behaviour.dropConnectionAfterBytes = MODEL.length / 2;

    const error = await rejection(download());

    expectSizeMismatch(error, MODEL.length);
    expect(cdnRanges().at(-1)).toMatch(/^bytes=\d+-$/);
  });

  it("fails once when a 416 omits the total", async () => {
    hub.behaviour.linkedSizeBytes = declared;
    hub.behaviour.omitUnsatisfiedRangeTotal = true;

    const error = await rejection(download());

    expectSizeMismatch(error, MODEL.length);
    expect(cdnRanges()).toEqual([undefined, `bytes=${MODEL.length}-`]);
  });

  it("restarts a stale partial file once on a 416 without total", async () => {
    await leavePartial(MODEL.length);
    hub.behaviour.linkedSizeBytes = declared;
    hub.behaviour.omitUnsatisfiedRangeTotal = true;

    const error = await rejection(download());

    expectSizeMismatch(error, MODEL.length);
    const resume = `bytes=${MODEL.length}-`;
    expect(cdnRanges()).toEqual([resume, undefined, resume]);
  });

  it("fails when a 416 total matches the partial file", async () => {
    await leavePartial(MODEL.length);
    hub.behaviour.linkedSizeBytes = declared;

    const error = await rejection(download());

    expectSizeMismatch(error, MODEL.length);
    expect(cdnRanges()).toEqual([`bytes=${MODEL.length}-`]);
  });

  it("fails when a 206 total is below X-Linked-Size", async () => {
    await leavePartial(1000);
    hub.behaviour.linkedSizeBytes = declared;

    const error = await rejection(download());

    expectSizeMismatch(error, MODEL.length);
    expect(cdnRanges()).toEqual(["bytes=1000-"]);
  });
});

describe("downloadModelFile free space", () => {
  it("rejects a declared size beyond the free space", async () => {
    // 10^15 bytes (1 PB) exceeds the free space of any disk these tests run on.
    hub.behaviour.linkedSizeBytes = 1e15;

    const error = await rejection(download());

    expect(error).toBeInstanceOf(InsufficientSpaceError);
    expect((error as Error).message).toContain("ggml-tiny.bin is 1000000000000000 bytes");
    expect((error as Error).message).toMatch(/has \d+ bytes \([\d.]+ MB\) free/);
    expect((error as Error).message).not.toContain(folder);
    expect((error as InsufficientSpaceError).details.bytesWritten).toBe(0);
    expect(hub.cdnRequestCount()).toBe(1);
    expect(existsSync(partialPath)).toBe(false);
  });

  it.runIf(existsSync("/dev/full"))("deletes the partial file on ENOSPC", async () => {
    // Writes to /dev/full fail with ENOSPC, as on a full disk.
    await mkdir(path.dirname(partialPath), { recursive: true });
    await symlink("/dev/full", partialPath);

    const error = await rejection(download());

    expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
    await expect(lstat(partialPath)).rejects.toThrow(/ENOENT/);
    expect(existsSync(destination)).toBe(false);
    expect(hub.cdnRequestCount()).toBe(1);
  });
});

describe("downloadModelFile redirects", () => {
  it("rejects a redirect without Location", async () => {
    hub.behaviour.redirectLocation = null;

    const error = await rejection(download());

    expect(error).toBeInstanceOf(ModelDownloadError);
    expect(error).not.toBeInstanceOf(HubUnavailableError);
    expect((error as Error).message).toMatch(/HTTP 302 redirect from .* has no Location/);
    expect(hub.cdnRequestCount()).toBe(0);
  });

  it("rejects a redirect to a file: URL", async () => {
    hub.behaviour.redirectLocation = "file:///etc/passwd";

    const error = await rejection(download());

    expect(error).toBeInstanceOf(ModelDownloadError);
    expect(error).not.toBeInstanceOf(HubUnavailableError);
    expect((error as Error).message).toBe("Redirect to unsupported URL scheme file:");
    expect(existsSync(partialPath)).toBe(false);
  });
});

describe("SingleFlight", () => {
  it("shares one download among concurrent callers", async () => {
    hub.behaviour.chunkDelayMs = 20;
    const flight = new SingleFlight<DownloadResult>();

    const results = await Promise.all(
      Array.from({ length: 5 }, () => flight.run(destination, () => download())),
    );

    expect(hub.cdnRequestCount()).toBe(1);
    for (const result of results) expect(result).toBe(results[0]);
    expect((await readFile(destination)).equals(MODEL)).toBe(true);
  });

  it("gives every caller the failure, then tries again", async () => {
    hub.behaviour.corruptBody = true;
    const flight = new SingleFlight<DownloadResult>();

    const errors = await Promise.all(
      Array.from({ length: 3 }, () => rejection(flight.run(destination, () => download()))),
    );

    expect(errors[0]).toBeInstanceOf(IntegrityError);
    for (const error of errors) expect(error).toBe(errors[0]);
    expect(hub.cdnRequestCount()).toBe(1);

    hub.behaviour.corruptBody = false;
    const result = await flight.run(destination, () => download());

    expect(result.sha256).toBe(MODEL_SHA256);
    expect(hub.cdnRequestCount()).toBe(2);
  });

  it("rejects only the caller whose signal aborts", async () => {
    hub.behaviour.chunkDelayMs = 20;
    const flight = new SingleFlight<DownloadResult>();
    const controller = new AbortController();

    const patient = flight.run(destination, () => download());
    const impatient = flight.run(destination, () => download(), controller.signal);
    controller.abort(new Error("client went away"));

    await expect(impatient).rejects.toThrow("client went away");
    expect((await patient).sha256).toBe(MODEL_SHA256);
    expect(hub.cdnRequestCount()).toBe(1);
  });

  it("keys runs by destination", async () => {
    const flight = new SingleFlight<DownloadResult>();
    const other = path.join(folder, "other", FILE_NAME);

    await Promise.all([
      flight.run(destination, () => download()),
      flight.run(other, () => download({ destination: other })),
    ]);

    expect(hub.cdnRequestCount()).toBe(2);
  });
});

describe("createProgressLogger", () => {
  function captureLogger(): { lines: Record<string, unknown>[]; logger: pino.Logger } {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    return { lines, logger: pino(stream) };
  }

  const total = 100_000_000;
  const at = (bytesDone: number): DownloadProgress => ({
    bytesDone,
    bytesTotal: total,
    bytesPerSecond: 10_000_000,
    secondsLeft: (total - bytesDone) / 10_000_000,
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it("logs at most once per interval and the last byte", () => {
    vi.useFakeTimers();
    const { lines, logger } = captureLogger();
    const log = createProgressLogger(logger, { fileName: FILE_NAME, intervalSeconds: 5 });

    log(at(0));
    vi.advanceTimersByTime(1000);
    log(at(10_000_000));
    vi.advanceTimersByTime(4000);
    log(at(50_000_000));
    vi.advanceTimersByTime(100);
    log(at(total));

    expect(lines.map((line) => line.bytesDone)).toEqual([0, 50_000_000, total]);
  });

  it("logs percent, speed and time left", () => {
    const { lines, logger } = captureLogger();
    const log = createProgressLogger(logger, { fileName: FILE_NAME });

    log(at(42_000_000));

    expect(lines[0]?.msg).toBe(
      `downloading ${FILE_NAME}: 42.0% of 100.0 MB at 10.0 MB/s, 6 s left`,
    );
    expect(lines[0]?.percent).toBe(42);
    expect(lines[0]?.bytesPerSecond).toBe(10_000_000);
    expect(lines[0]?.secondsLeft).toBe(6);
    expect(lines[0]?.file).toBe(FILE_NAME);
  });

  it("logs bytes alone when the size is unknown", () => {
    const { lines, logger } = captureLogger();
    const log = createProgressLogger(logger, { fileName: FILE_NAME });

    const unknownSize = { bytesTotal: undefined, bytesPerSecond: 0, secondsLeft: undefined };
    log({ bytesDone: 2_500_000, ...unknownSize });

    expect(lines[0]?.msg).toBe(`downloading ${FILE_NAME}: 2.5 MB at 0.0 MB/s`);
    expect(lines[0]?.percent).toBeUndefined();
  });
});
