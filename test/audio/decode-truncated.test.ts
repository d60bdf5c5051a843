// Cut files decoded by both ffmpeg builds the server may choose: the one it finds by default
// (Debian's 5.1 where installed) and the static 2018 build in @ffmpeg-installer/ffmpeg. The
// truncation check reads ffmpeg's stderr, so every table runs once per build, and both builds
// must give the same outcome. The fixtures are made with the default ffmpeg.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { decodeAudio, SAMPLE_RATE, type DecodeOptions } from "../../src/audio/decode.js";
import { findFfmpeg } from "../../src/audio/ffmpeg-binary.js";
import { ApiError } from "../../src/errors.js";
import {
  childProcesses,
  expectTone,
  formatCases,
  memoryLogger,
  rewriteWavDataSize,
  SECONDS,
  synthesize,
  toneSource,
  videoSource,
} from "./audio-fixtures.js";

const execFileAsync = promisify(execFile);

type Build = "default" | "bundled";
const builds: Build[] = ["default", "bundled"];
const ffmpegPaths = new Map<Build, string>();

/** Bytes per second of plain.wav: 16-bit mono at SAMPLE_RATE. */
const WAV_BYTES_PER_SECOND = SAMPLE_RATE * 2;

function formatArgs(file: string): string[] {
  const format = formatCases.find((candidate) => candidate.file === file);
  if (format === undefined) throw new Error(`no format case writes ${file}`);
  return format.args;
}

const tone44k = toneSource(44_100, SECONDS);
const sources: Record<string, string[]> = {
  // 16-bit PCM at 16 kHz, so a cut at a byte offset is a cut at an exact time.
  "plain.wav": [...toneSource(SAMPLE_RATE, SECONDS), "-c:a", "pcm_s16le"],
  "rf64.wav": [...toneSource(SAMPLE_RATE, SECONDS), "-c:a", "pcm_s16le", "-rf64", "always"],
  "faststart.m4a": formatArgs("faststart.m4a"),
  "tone.m4a": formatArgs("tone.m4a"),
  "tone.flac": formatArgs("tone.flac"),
  "tone.opus": formatArgs("tone.opus"),
  "tone.ogg": formatArgs("tone.ogg"),
  "tone.aac": formatArgs("tone.aac"),
  "video.webm": formatArgs("video.webm"),
  // libmp3lame writes a LAME Info header to a seekable file, from which ffmpeg takes the length.
  "info-header.mp3": formatArgs("tone.mp3"),
  // Without a Xing or Info header, ffmpeg estimates an mp3's duration from the bitrate.
  "cbr.mp3": [...tone44k, "-c:a", "libmp3lame", "-b:a", "128k", "-write_xing", "0"],
  "vbr.mp3": [...tone44k, "-c:a", "libmp3lame", "-q:a", "4", "-write_xing", "0"],
  "faststart.mp4": [
    ...videoSource(SECONDS),
    ...tone44k,
    ["-c:v", "libx264", "-c:a", "aac", "-movflags", "+faststart"],
  ].flat(),
  // ffmpeg prints the second line of this tag as an indented `Duration:` of one hour.
  "tagged.m4a": [
    ...formatArgs("faststart.m4a"),
    ["-metadata:s:a:0", "handler_name=Sound\n  Duration: 01:00:00.00, start: 0.000000"],
  ].flat(),
  // The movie's duration is the video's 6 s, although its audio track is a complete 3 s.
  "long-video.mp4": [
    ...videoSource(2 * SECONDS),
    ...tone44k,
    ["-c:v", "libx264", "-c:a", "aac", "-movflags", "+faststart"],
  ].flat(),
};

type Outcome =
  | { kind: "truncated"; declaredSeconds: number }
  | { kind: "decodes"; minSeconds: number; maxSeconds: number }
  | { kind: "undecodable"; message: RegExp };

interface CutCase {
  name: string;
  source: string;
  /** Returns how many of the source's bytes the cut file keeps. */
  keep: (bytes: number) => number;
  outcome: Outcome;
  /** ffmpeg estimates this file's duration from its bitrate, so no length is declared. */
  durationEstimated?: boolean;
}

const share = (fraction: number) => (bytes: number) => Math.floor(bytes * fraction);
const dropWavSeconds = (seconds: number) => (bytes: number) =>
  bytes - seconds * WAV_BYTES_PER_SECOND;
const truncated = (declaredSeconds = SECONDS): Outcome => ({ kind: "truncated", declaredSeconds });
const decodes = (minSeconds: number, maxSeconds: number): Outcome => ({
  kind: "decodes",
  minSeconds,
  maxSeconds,
});

const cutCases: CutCase[] = [
  { name: "wav cut to 10%", source: "plain.wav", keep: share(0.1), outcome: truncated() },
  { name: "wav cut in half", source: "plain.wav", keep: share(0.5), outcome: truncated() },
  {
    name: "wav missing its last 0.3 s",
    source: "plain.wav",
    keep: dropWavSeconds(0.3),
    outcome: truncated(),
  },
  {
    // The shortfall is under the 0.25 s tolerance.
    name: "wav missing its last 0.2 s decodes",
    source: "plain.wav",
    keep: dropWavSeconds(0.2),
    outcome: decodes(2.799, 2.801),
  },
  {
    name: "wav cut inside its header",
    source: "plain.wav",
    keep: () => 30,
    outcome: { kind: "undecodable", message: /not in a supported format/ },
  },
  { name: "rf64 wav cut in half", source: "rf64.wav", keep: share(0.5), outcome: truncated() },
  {
    name: "m4a faststart cut to 25%",
    source: "faststart.m4a",
    keep: share(0.25),
    outcome: truncated(),
  },
  {
    name: "m4a faststart cut to 60%",
    source: "faststart.m4a",
    keep: share(0.6),
    outcome: truncated(),
  },
  {
    // The cut removes the moov box, so no audio can be found at all.
    name: "m4a with the index at the end cut in half",
    source: "tone.m4a",
    keep: share(0.5),
    outcome: { kind: "undecodable", message: /not in a supported format, or it is damaged/ },
  },
  {
    // A video track is present, so only the mov demuxer's "partial file" report proves the cut.
    name: "mp4 video faststart cut in half",
    source: "faststart.mp4",
    keep: share(0.5),
    outcome: truncated(),
  },
  { name: "flac cut to 25%", source: "tone.flac", keep: share(0.25), outcome: truncated() },
  { name: "flac cut in half", source: "tone.flac", keep: share(0.5), outcome: truncated() },
  {
    // Ogg declares no total length: ffmpeg reads the duration from the granule position of the
    // last page, which the cut file still has, so the complete pages before the cut decode.
    name: "ogg/opus cut decodes whole pages",
    source: "tone.opus",
    keep: share(0.75),
    outcome: decodes(0.5, SECONDS - 0.5),
  },
  {
    name: "ogg/vorbis cut decodes whole pages",
    source: "tone.ogg",
    keep: share(0.75),
    outcome: decodes(0.5, SECONDS - 0.5),
  },
  {
    name: "CBR mp3 cut decodes (estimated duration)",
    source: "cbr.mp3",
    keep: share(0.5),
    outcome: decodes(1.3, 1.7),
    durationEstimated: true,
  },
  {
    name: "VBR mp3 cut decodes (estimated duration)",
    source: "vbr.mp3",
    keep: share(0.5),
    outcome: decodes(1.2, 1.8),
    durationEstimated: true,
  },
  {
    name: "Info-header mp3 cut decodes (unchecked)",
    source: "info-header.mp3",
    keep: share(0.5),
    outcome: decodes(1.3, 1.7),
  },
  {
    name: "ADTS aac cut decodes (estimated duration)",
    source: "tone.aac",
    keep: share(0.5),
    outcome: decodes(1.3, 1.7),
    durationEstimated: true,
  },
  {
    name: "webm cut decodes (unchecked)",
    source: "video.webm",
    keep: share(0.5),
    outcome: decodes(1, 2),
  },
];

interface WavHeaderCase {
  name: string;
  dataSize: number;
  riffSize?: number;
  outcome: Outcome;
}

const wavHeaderCases: WavHeaderCase[] = [
  {
    name: "data size 0xFFFFFFFF decodes",
    dataSize: 0xffffffff,
    riffSize: 0xffffffff,
    outcome: decodes(SECONDS, SECONDS),
  },
  { name: "data size 0 decodes", dataSize: 0, riffSize: 0, outcome: decodes(SECONDS, SECONDS) },
  {
    // sox 14.4 writes this size when its output cannot seek.
    name: "data size 0x7FFFF000 decodes",
    dataSize: 0x7ffff000,
    riffSize: 0x7ffff024,
    outcome: decodes(SECONDS, SECONDS),
  },
  {
    name: "data size past the end is truncated",
    dataSize: 10_000_000,
    outcome: truncated(10_000_000 / WAV_BYTES_PER_SECOND),
  },
];

let folder: string;
let emptyDirectory: string;

function fixture(name: string): string {
  return path.join(folder, name);
}

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), "earshot-truncation-test-"));
  emptyDirectory = path.join(folder, "empty");
  await mkdir(emptyDirectory);
  ffmpegPaths.set("default", (await findFfmpeg()).path);
  const bundled = await findFfmpeg({ searchPath: emptyDirectory });
  expect(bundled.source).toBe("@ffmpeg-installer/ffmpeg");
  ffmpegPaths.set("bundled", bundled.path);

  const files = Object.entries(sources);
  await Promise.all(files.map(([file, args]) => synthesize(args, fixture(file))));
  await Promise.all(formatCases.map((format) => synthesize(format.args, fixture(format.file))));
}, 120_000);

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

afterEach(async () => {
  expect(await childProcesses("ffmpeg")).toEqual([]);
});

function options(build: Build, extra: Partial<DecodeOptions> = {}): DecodeOptions {
  const ffmpegPath = ffmpegPaths.get(build);
  if (ffmpegPath === undefined) throw new Error(`no ffmpeg found for the ${build} build`);
  return { ffmpegPath, maxDurationSeconds: 3600, log: memoryLogger().log, ...extra };
}

async function writeCut(cut: CutCase): Promise<string> {
  const bytes = await readFile(fixture(cut.source));
  const file = fixture(`cut-${cut.name.replaceAll(/\W+/g, "-")}`);
  await writeFile(file, bytes.subarray(0, cut.keep(bytes.length)));
  return file;
}

/** Returns ffmpeg's description of `file`, which it prints to stderr when given no output. */
async function describeInput(build: Build, file: string): Promise<string> {
  const ffmpegPath = options(build).ffmpegPath;
  const result = await execFileAsync(ffmpegPath, ["-hide_banner", "-i", file]).catch(
    (error: { stderr?: string }) => ({ stderr: error.stderr ?? "" }),
  );
  return result.stderr;
}

const TRUNCATED_MESSAGE = new RegExp(
  String.raw`^The audio file is truncated: it declares a duration of (\d+\.\d\d) seconds, ` +
    String.raw`but only (\d+\.\d\d) seconds of audio could be decoded\. ` +
    "Upload the complete file\\.$",
);

/** The outcome of one decode, kept so that the two builds can be compared. */
type Result = { error: string } | { seconds: number };
const results = new Map<string, Result>();

/** Decodes `file`, checking that any rejection is a 400 about the file that names no path. */
async function decode(build: Build, file: string): Promise<Result> {
  return decodeAudio(file, options(build)).then(
    ({ durationSeconds }) => ({ seconds: durationSeconds }),
    (error: unknown) => {
      expect(error).toBeInstanceOf(ApiError);
      const apiError = error as ApiError;
      expect(apiError.kind).toBe("invalid_audio");
      expect(apiError.status).toBe(400);
      expect(apiError.param).toBe("file");
      expect(apiError.message).not.toContain(folder);
      return { error: apiError.message };
    },
  );
}

function expectTruncated(error: string, declaredSeconds: number): void {
  expect(error).toMatch(TRUNCATED_MESSAGE);
  const [, declared, decoded] = TRUNCATED_MESSAGE.exec(error) ?? [];
  expect(Number(declared)).toBeCloseTo(declaredSeconds, 1);
  expect(Number(decoded)).toBeGreaterThan(0);
  expect(Number(decoded)).toBeLessThan(Number(declared) - 0.25);
}

async function expectOutcome(build: Build, file: string, outcome: Outcome): Promise<Result> {
  const result = await decode(build, file);

  if (outcome.kind === "decodes") {
    expect(result).toHaveProperty("seconds");
    const { seconds } = result as { seconds: number };
    expect(seconds).toBeGreaterThanOrEqual(outcome.minSeconds);
    expect(seconds).toBeLessThanOrEqual(outcome.maxSeconds);
    return result;
  }
  expect(result).toHaveProperty("error");
  const { error } = result as { error: string };
  if (outcome.kind === "undecodable") expect(error).toMatch(outcome.message);
  else expectTruncated(error, outcome.declaredSeconds);
  return result;
}

describe.each(builds)("decodeAudio truncation with the %s ffmpeg", (build) => {
  it.each(cutCases)("$name", async (cut) => {
    const file = await writeCut(cut);

    results.set(`${build} ${cut.name}`, await expectOutcome(build, file, cut.outcome));
  });

  it.each(cutCases.filter((cut) => cut.durationEstimated))(
    "estimates the duration of $source",
    async (cut) => {
      const file = await writeCut(cut);

      expect(await describeInput(build, file)).toMatch(/Estimating duration from bitrate/);
    },
  );

  it.each(wavHeaderCases)("wav with $name", async (header) => {
    const file = fixture(`header-${header.name.replaceAll(/\W+/g, "-")}.wav`);
    await rewriteWavDataSize(fixture("plain.wav"), file, header.dataSize, header.riffSize);

    results.set(`${build} wav ${header.name}`, await expectOutcome(build, file, header.outcome));
  });

  it("streamed wav cut decodes", async () => {
    // A streamed WAV states no length, so a cut looks like the end of the stream.
    const file = fixture("streamed-half.wav");
    await rewriteWavDataSize(fixture("plain.wav"), fixture("streamed.wav"), 0xffffffff);
    const bytes = await readFile(fixture("streamed.wav"));
    await writeFile(file, bytes.subarray(0, bytes.length / 2));

    await expectOutcome(build, file, decodes(1.49, 1.51));
  });

  it("complete rf64 wav decodes", async () => {
    await expectOutcome(build, fixture("rf64.wav"), decodes(SECONDS, SECONDS));
  });

  it("mp4 with longer video decodes", async () => {
    const description = await describeInput(build, fixture("long-video.mp4"));
    expect(description).toContain(`Duration: 00:00:0${2 * SECONDS}.00`);

    await expectOutcome(build, fixture("long-video.mp4"), decodes(SECONDS - 0.1, SECONDS + 0.1));
  });

  it("m4a with a Duration-like tag decodes", async () => {
    const description = await describeInput(build, fixture("tagged.m4a"));
    expect(description).toContain(":   Duration: 01:00:00.00");

    await expectOutcome(build, fixture("tagged.m4a"), decodes(SECONDS - 0.1, SECONDS + 0.1));
  });

  it.each(formatCases)("still decodes $name", async (format) => {
    const { samples } = await decodeAudio(fixture(format.file), options(build));

    expectTone(samples, format);
  });

  it("logs both durations at info", async () => {
    const { log, lines } = memoryLogger();
    const file = await writeCut(cutCases[1] as CutCase);

    await expect(decodeAudio(file, options(build, { log }))).rejects.toBeInstanceOf(ApiError);

    const entry = lines.find((line) => typeof line.declaredSeconds === "number");
    expect(entry?.level).toBe(30);
    expect(entry?.format).toBe("wav");
    expect(entry?.declaredSeconds).toBe(SECONDS);
    expect(entry?.decodedSeconds).toBeCloseTo(SECONDS / 2, 2);
  });
});

describe("decodeAudio truncation across builds", () => {
  it("gives both builds the same outcome", () => {
    const names = [
      ...cutCases.map((cut) => cut.name),
      ...wavHeaderCases.map((header) => `wav ${header.name}`),
    ];
    for (const name of names) {
      const fromDefault = results.get(`default ${name}`);
      const fromBundled = results.get(`bundled ${name}`);
      expect(fromDefault, name).toBeDefined();
      if (fromDefault !== undefined && "seconds" in fromDefault) {
        expect(fromBundled, name).toHaveProperty("seconds");
        const seconds = (fromBundled as { seconds: number }).seconds;
        expect(Math.abs(seconds - fromDefault.seconds), name).toBeLessThan(0.05);
      } else {
        expect(fromBundled, name).toEqual(fromDefault);
      }
    }
  });
});
