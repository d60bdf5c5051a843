import { copyFile, mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { decodeAudio, SAMPLE_RATE, type DecodeOptions } from "../../src/audio/decode.js";
import { findFfmpeg } from "../../src/audio/ffmpeg-binary.js";
import { ApiError } from "../../src/errors.js";
import {
  childProcesses,
  expectTone,
  formatCases,
  frame,
  makeFifo,
  memoryLogger,
  readWavDataSize,
  rewriteWavDataSize,
  rms,
  SECONDS,
  synthesize,
  toneSamples,
  toneSource,
  TONE_RMS,
  videoSource,
  waitForChild,
  writeFloatWav,
} from "./audio-fixtures.js";

let folder: string;
let ffmpegPath: string;

function fixture(name: string): string {
  return path.join(folder, name);
}

function options(extra: Partial<DecodeOptions> = {}): DecodeOptions {
  return { ffmpegPath, maxDurationSeconds: 3600, log: memoryLogger().log, ...extra };
}

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), "earshot-decode-test-"));
  ffmpegPath = (await findFfmpeg()).path;
  await Promise.all(formatCases.map((format) => synthesize(format.args, fixture(format.file))));
  // 16-bit PCM at 16 kHz: ffmpeg passes it through unchanged, so sample counts are exact.
  await synthesize(
    [...toneSource(SAMPLE_RATE, SECONDS), "-c:a", "pcm_s16le"],
    fixture("plain.wav"),
  );
}, 120_000);

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

afterEach(async () => {
  expect(await childProcesses("ffmpeg")).toEqual([]);
});

async function expectInvalidAudio(file: string, message: RegExp): Promise<ApiError> {
  const error = await decodeAudio(file, options()).then(
    () => undefined,
    (rejection: unknown) => rejection,
  );
  expect(error).toBeInstanceOf(ApiError);
  const apiError = error as ApiError;
  expect(apiError.kind).toBe("invalid_audio");
  expect(apiError.status).toBe(400);
  expect(apiError.param).toBe("file");
  expect(apiError.message).toMatch(message);
  expect(apiError.message).not.toContain(folder);
  return apiError;
}

describe("decodeAudio formats", () => {
  it.each(formatCases)("decodes $name", async (format) => {
    const { samples, durationSeconds } = await decodeAudio(fixture(format.file), options());

    expectTone(samples, format);
    expect(durationSeconds).toBe(samples.length / SAMPLE_RATE);
  });
});

describe("decodeAudio WAV headers", () => {
  it.each([
    { name: "data size 0xFFFFFFFF", dataSize: 0xffffffff, riffSize: 0xffffffff },
    { name: "data size 0", dataSize: 0, riffSize: 0 },
  ])("reads to the end with $name", async ({ name, dataSize, riffSize }) => {
    const file = fixture(`${name.replaceAll(" ", "-")}.wav`);
    await rewriteWavDataSize(fixture("plain.wav"), file, dataSize, riffSize);

    const { samples } = await decodeAudio(file, options());

    expect(samples.length).toBe(SECONDS * SAMPLE_RATE);
    expect(rms(samples, 0.5, 2.5)).toBeCloseTo(TONE_RMS, 2);
  });

  it("stops at a data size shorter than the data", async () => {
    const file = fixture("short-header.wav");
    const halfBytes = (await readWavDataSize(fixture("plain.wav"))) / 2;
    await rewriteWavDataSize(fixture("plain.wav"), file, halfBytes);

    const { samples } = await decodeAudio(file, options());

    // ffmpeg trusts a declared size that fits in the file and ignores the bytes after it.
    expect(samples.length).toBe((SECONDS * SAMPLE_RATE) / 2);
  });
});

describe("decodeAudio sample values", () => {
  it.each([SAMPLE_RATE, 44_100])("repairs NaN and Infinity at %i Hz", async (sampleRate) => {
    const source = toneSamples(sampleRate, SECONDS);
    const broken = [0.6, 1.2, 1.8].map((seconds) => Math.round(seconds * sampleRate));
    const [nanAt, infinityAt, minusInfinityAt] = broken as [number, number, number];
    source[nanAt] = Number.NaN;
    source[infinityAt] = Number.POSITIVE_INFINITY;
    source[minusInfinityAt] = Number.NEGATIVE_INFINITY;
    const file = fixture(`non-finite-${sampleRate}.wav`);
    await writeFloatWav(file, sampleRate, source);
    const { log, lines } = memoryLogger();

    const { samples } = await decodeAudio(file, options({ log }));

    expect(samples.length).toBe(SECONDS * SAMPLE_RATE);
    expect(samples.every((sample) => Number.isFinite(sample))).toBe(true);
    expect(samples.every((sample) => sample >= -1 && sample <= 1)).toBe(true);
    expect(rms(samples, 2, 2.9)).toBeCloseTo(TONE_RMS, 2);
    const repair = lines.find((line) => typeof line.nonFiniteSamples === "number");
    expect(repair?.nonFiniteSamples).toBeGreaterThanOrEqual(3);
  });

  it("maps NaN to 0 and Infinity to 1 at 16 kHz", async () => {
    const source = new Float32Array([0.25, Number.NaN, Number.POSITIVE_INFINITY, -2, -0.25]);
    const file = fixture("five-samples.wav");
    await writeFloatWav(file, SAMPLE_RATE, source);

    const { samples } = await decodeAudio(file, options());

    expect(Array.from(samples)).toEqual([0.25, 0, 1, -1, -0.25]);
  });
});

describe("decodeAudio rejects", () => {
  it("an empty file", async () => {
    const file = fixture("empty.wav");
    await writeFile(file, "");
    await expectInvalidAudio(file, /empty/);
  });

  it("random bytes", async () => {
    const file = fixture("random.bin");
    const bytes = Buffer.alloc(20_000);
    for (let index = 0; index < bytes.length; index++) bytes[index] = (index * 7919) % 251;
    await writeFile(file, bytes);
    await expectInvalidAudio(file, /not in a supported format/);
  });

  it("a text file", async () => {
    const file = fixture("notes.wav");
    await writeFile(file, "These are meeting notes, not a recording.\n".repeat(50));
    await expectInvalidAudio(file, /not in a supported format/);
  });

  it("a video without an audio track", async () => {
    const file = await synthesize(
      [...videoSource(SECONDS), "-c:v", "libx264"],
      fixture("silent-film.mp4"),
    );
    await expectInvalidAudio(file, /no audio track/);
  });

  it("a wav whose data size runs past the end", async () => {
    const file = fixture("long-header.wav");
    await rewriteWavDataSize(fixture("plain.wav"), file, 10_000_000);
    await expectInvalidAudio(file, /truncated: it declares a duration of 312\.50 seconds/);
  });

  it("a truncated m4a with the index at the end", async () => {
    const file = fixture("truncated.m4a");
    await copyFile(fixture("tone.m4a"), file);
    await truncate(file, (await readFile(file)).length / 2);
    await expectInvalidAudio(file, /not in a supported format, or it is damaged/);
  });

  it("an mp3 cut inside its first frame", async () => {
    const file = fixture("stub.mp3");
    await writeFile(file, (await readFile(fixture("tone.mp3"))).subarray(0, 300));
    await expectInvalidAudio(file, /no audio that could be decoded/);
  });

  it("a concat script that names another file", async () => {
    const file = fixture("script.wav");
    await writeFile(file, "ffconcat version 1.0\nfile plain.wav\n");
    await expectInvalidAudio(file, /not in a supported format/);
  });

  it("logs ffmpeg's stderr for operators", async () => {
    const file = fixture("logged.m4a");
    await writeFile(file, "plain text\n".repeat(100));
    const { log, lines } = memoryLogger();

    await expect(decodeAudio(file, options({ log }))).rejects.toBeInstanceOf(ApiError);

    const entry = lines.find((line) => typeof line.ffmpegStderr === "string");
    expect(entry?.ffmpegStderr).toMatch(/Invalid data found|not on whitelist/);
  });

  it("a missing ffmpeg as a server error", async () => {
    const error = await decodeAudio(fixture("plain.wav"), {
      ...options(),
      ffmpegPath: fixture("no-such-ffmpeg"),
    }).catch((rejection: unknown) => rejection);

    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ApiError);
    expect((error as Error).message).toMatch(/cannot be run/);
  });
});

describe("decodeAudio partial files", () => {
  it("decodes the first half of a truncated mp3", async () => {
    const file = fixture("half.mp3");
    const bytes = await readFile(fixture("tone.mp3"));
    await writeFile(file, bytes.subarray(0, bytes.length / 2));

    const { durationSeconds, samples } = await decodeAudio(file, options());

    expect(durationSeconds).toBeGreaterThan(SECONDS / 2 - 0.1);
    expect(durationSeconds).toBeLessThan(SECONDS / 2 + 0.1);
    expect(rms(samples, 0.2, 1.2)).toBeCloseTo(TONE_RMS, 1);
  });

  it("decodes an mp3 named .wav", async () => {
    const file = fixture("really-mp3.wav");
    await copyFile(fixture("tone.mp3"), file);

    const { samples } = await decodeAudio(file, options());

    expect(Math.abs(samples.length - SECONDS * SAMPLE_RATE)).toBeLessThanOrEqual(frame.mp3);
    expect(rms(samples, 0.5, 2.5)).toBeCloseTo(TONE_RMS, 1);
  });
});

describe("decodeAudio limits", () => {
  it("accepts audio exactly at maxDurationSeconds", async () => {
    const { samples } = await decodeAudio(
      fixture("plain.wav"),
      options({ maxDurationSeconds: SECONDS }),
    );
    expect(samples.length).toBe(SECONDS * SAMPLE_RATE);
  });

  it("rejects audio just over maxDurationSeconds", async () => {
    const error = await decodeAudio(
      fixture("plain.wav"),
      options({ maxDurationSeconds: SECONDS - 0.1 }),
    ).catch((rejection: unknown) => rejection);

    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).kind).toBe("invalid_request");
    expect((error as ApiError).param).toBe("file");
    expect((error as ApiError).message).toMatch(/longer than the maximum of 2.9 seconds/);
  });

  it("stops a small file that expands to an hour", async () => {
    const file = await synthesize(
      ["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "3600", "-c:a", "flac"],
      fixture("hour-of-silence.flac"),
    );
    expect((await readFile(file)).length).toBeLessThan(1_000_000);

    const error = await decodeAudio(file, options({ maxDurationSeconds: 60 })).catch(
      (rejection: unknown) => rejection,
    );

    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).message).toMatch(/longer than the maximum of 60 seconds/);
  }, 20_000);

  it("kills ffmpeg at the time limit", async () => {
    const fifo = await makeFifo(fixture("never-written.fifo"));
    const startedAt = performance.now();

    const error = await decodeAudio(fifo, options({ timeoutSeconds: 0.5 })).catch(
      (rejection: unknown) => rejection,
    );

    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).kind).toBe("invalid_audio");
    expect((error as ApiError).message).toMatch(/did not finish within 0.5 seconds/);
    expect(performance.now() - startedAt).toBeLessThan(3_000);
  });
});

describe("decodeAudio abort", () => {
  it("kills a running ffmpeg promptly", async () => {
    const fifo = await makeFifo(fixture("abort.fifo"));
    const controller = new AbortController();
    const decoding = decodeAudio(fifo, options({ signal: controller.signal }));
    const settled = decoding.catch((rejection: unknown) => rejection);
    await waitForChild("ffmpeg");

    const abortedAt = performance.now();
    controller.abort();
    const error = await settled;

    expect((error as Error).name).toBe("AbortError");
    expect(performance.now() - abortedAt).toBeLessThan(1_000);
    expect(await childProcesses("ffmpeg")).toEqual([]);
  });

  it("rejects at once when already aborted", async () => {
    const controller = new AbortController();
    controller.abort(new Error("client went away"));

    await expect(
      decodeAudio(fixture("plain.wav"), options({ signal: controller.signal })),
    ).rejects.toThrow("client went away");
  });

  it("kills ffmpeg when aborted before it starts", async () => {
    const fifo = await makeFifo(fixture("early-abort.fifo"));
    const controller = new AbortController();
    const decoding = decodeAudio(fifo, options({ signal: controller.signal }));
    controller.abort();

    await expect(decoding).rejects.toMatchObject({ name: "AbortError" });
    expect(await childProcesses("ffmpeg")).toEqual([]);
  });
});
