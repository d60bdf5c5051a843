import { createHash, randomBytes } from "node:crypto";
import { existsSync, type StatsFs } from "node:fs";
import { mkdir, mkdtemp, rm, statfs, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { FREE_SPACE_RESERVE_BYTES } from "../../src/models/disk-space.js";
import { InsufficientSpaceError } from "../../src/models/download-errors.js";
import { downloadModelFile, whisperModelUrl } from "../../src/models/download.js";
import { startStandInHub, type StandInHub } from "../helpers/stand-in-hub.js";

// statfs reports the real free space unless a test queues other values, because no test can
// fill the disk it runs on.
vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs/promises")>();
  return { ...actual, statfs: vi.fn(actual.statfs) };
});

const FILE_NAME = "ggml-tiny.bin";
/** Larger than the 4 MiB between two free space checks, so a transfer checks twice. */
const MODEL = randomBytes(6 * 1024 * 1024);
const MODEL_SHA256 = createHash("sha256").update(MODEL).digest("hex");

let hub: StandInHub;
let folder: string;
let destination: string;

beforeEach(async () => {
  hub = await startStandInHub({ [FILE_NAME]: MODEL });
  folder = await mkdtemp(path.join(os.tmpdir(), "earshot-disk-space-"));
  destination = path.join(folder, FILE_NAME);
});

afterEach(async () => {
  vi.mocked(statfs).mockReset();
  await hub.close();
  await rm(folder, { recursive: true, force: true });
});

/** Makes the next statfs calls report these free byte counts, one per call. */
function reportFreeBytes(...counts: number[]): void {
  for (const count of counts) {
    const stats = { bsize: 1, bavail: count, bfree: count } as StatsFs;
    vi.mocked(statfs).mockResolvedValueOnce(stats);
  }
}

function download() {
  const url = whisperModelUrl(FILE_NAME, hub.url);
  return downloadModelFile({ url, destination, resumeDelayMs: 0 });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject, but it resolved");
}

describe("downloadModelFile free space", () => {
  it("accepts a file that fits beside the reserve", async () => {
    // The second check comes after at least 4 MiB, which the file system no longer has free.
    const free = MODEL.length + FREE_SPACE_RESERVE_BYTES;
    reportFreeBytes(free, free - 4 * 1024 * 1024);

    const result = await download();

    expect(result.sha256).toBe(MODEL_SHA256);
  });

  it("rejects a file one byte too large", async () => {
    reportFreeBytes(MODEL.length + FREE_SPACE_RESERVE_BYTES - 1);

    const error = await rejection(download());

    expect(error).toBeInstanceOf(InsufficientSpaceError);
    expect((error as InsufficientSpaceError).details.expectedSize).toBe(MODEL.length);
    expect(existsSync(`${destination}.part`)).toBe(false);
  });

  it("counts the partial file toward the size", async () => {
    await mkdir(folder, { recursive: true });
    await writeFile(`${destination}.part`, MODEL.subarray(0, 1000));
    reportFreeBytes(MODEL.length - 1000 + FREE_SPACE_RESERVE_BYTES);

    const result = await download();

    expect(result.sha256).toBe(MODEL_SHA256);
    expect(hub.requests.at(-1)?.range).toBe("bytes=1000-");
  });

  it("stops when free space runs out mid-transfer", async () => {
    reportFreeBytes(MODEL.length + FREE_SPACE_RESERVE_BYTES, FREE_SPACE_RESERVE_BYTES - 1);

    const error = await rejection(download());

    expect(error).toBeInstanceOf(InsufficientSpaceError);
    expect((error as InsufficientSpaceError).details.bytesWritten).toBeGreaterThan(0);
    expect(existsSync(`${destination}.part`)).toBe(false);
    expect(hub.cdnRequestCount()).toBe(1);
  });

  it("stops an unsized transfer at the reserve", async () => {
    hub.behaviour.omitLinkedHeaders = true;
    hub.behaviour.omitContentLength = true;
    reportFreeBytes(FREE_SPACE_RESERVE_BYTES, FREE_SPACE_RESERVE_BYTES - 1);

    const error = await rejection(download());

    expect(error).toBeInstanceOf(InsufficientSpaceError);
    const details = (error as InsufficientSpaceError).details;
    expect(details.expectedSize).toBeUndefined();
    expect(details.bytesWritten).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    expect(details.bytesWritten).toBeLessThan(MODEL.length);
    expect((error as Error).message).toMatch(/^The download of ggml-tiny\.bin stopped after /);
    expect(existsSync(`${destination}.part`)).toBe(false);
  });
});
