// Runs the decoder with the static ffmpeg build from @ffmpeg-installer/ffmpeg, the fallback on a
// machine without ffmpeg. The fixtures are still made with the system ffmpeg.
import { mkdtemp, readlink, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { decodeAudio, type DecodeOptions } from "../../src/audio/decode.js";
import { findFfmpeg } from "../../src/audio/ffmpeg-binary.js";
import { ApiError } from "../../src/errors.js";
import {
  childProcesses,
  expectTone,
  formatCases,
  makeFifo,
  memoryLogger,
  synthesize,
  waitForChild,
} from "./audio-fixtures.js";

const commonFiles = [
  "stereo.wav",
  "tone.mp3",
  "tone.m4a",
  "faststart.m4a",
  "tone.opus",
  "tone.ogg",
  "tone.flac",
  "video.webm",
  "video.mp4",
];
const commonFormats = formatCases.filter((format) => commonFiles.includes(format.file));

let folder: string;
let bundledFfmpeg: string;

function options(extra: Partial<DecodeOptions> = {}): DecodeOptions {
  return {
    ffmpegPath: bundledFfmpeg,
    maxDurationSeconds: 3600,
    log: memoryLogger().log,
    ...extra,
  };
}

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), "earshot-bundled-ffmpeg-test-"));
  const binary = await findFfmpeg({ searchPath: folder });
  expect(binary.source).toBe("@ffmpeg-installer/ffmpeg");
  bundledFfmpeg = binary.path;
  await Promise.all(
    commonFormats.map((format) => synthesize(format.args, path.join(folder, format.file))),
  );
}, 120_000);

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

afterEach(async () => {
  expect(await childProcesses("ffmpeg")).toEqual([]);
});

describe("decodeAudio with the bundled ffmpeg", () => {
  it("covers every common format", () => {
    expect(commonFormats.map((format) => format.file).sort()).toEqual([...commonFiles].sort());
  });

  it.each(commonFormats)("decodes $name", async (format) => {
    const { samples } = await decodeAudio(path.join(folder, format.file), options());

    expectTone(samples, format);
  });

  it("runs the bundled executable", async () => {
    const fifo = await makeFifo(path.join(folder, "pending.fifo"));
    const controller = new AbortController();
    const decoding = decodeAudio(fifo, options({ signal: controller.signal }));
    const settled = decoding.catch((rejection: unknown) => rejection);

    const pid = await waitForChild("ffmpeg");
    const executable = await readlink(`/proc/${pid}/exe`);
    controller.abort();

    expect(executable).toBe(await realpath(bundledFfmpeg));
    expect(((await settled) as Error).name).toBe("AbortError");
  });

  it("rejects a text file", async () => {
    const file = path.join(folder, "upload");
    await writeFile(file, "Not a recording, only text.\n".repeat(40));

    const error = await decodeAudio(file, options()).catch((rejection: unknown) => rejection);

    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).kind).toBe("invalid_audio");
    expect((error as ApiError).message).toMatch(/not in a supported format/);
  });
});
