// Helpers for the decoder tests: audio files synthesized with ffmpeg into a temporary folder,
// WAV files written byte by byte, signal measurements, and a look at this process's children.
import { execFile } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { pino } from "pino";
import { expect } from "vitest";

import { SAMPLE_RATE } from "../../src/audio/decode.js";
import { findFfmpeg } from "../../src/audio/ffmpeg-binary.js";

const execFileAsync = promisify(execFile);

/** Length of every synthesized test tone, in seconds. */
export const SECONDS = 3;
export const TONE_HZ = 440;
export const TONE_AMPLITUDE = 0.5;
/** The RMS of a sine wave is its amplitude over the square root of 2. */
export const TONE_RMS = TONE_AMPLITUDE / Math.SQRT2;

/** Returns ffmpeg input arguments for the test tone in `channels` identical channels. */
export function toneSource(sampleRate: number, seconds: number, channels = 1): string[] {
  const channel = `${TONE_AMPLITUDE}*sin(2*PI*${TONE_HZ}*t)`;
  const expression = Array.from({ length: channels }, () => channel).join("|");
  return ["-f", "lavfi", "-i", `aevalsrc=${expression}:s=${sampleRate}:d=${seconds}`];
}

/** Returns ffmpeg input arguments for a small moving test picture. */
export function videoSource(seconds: number): string[] {
  return ["-f", "lavfi", "-i", `testsrc=size=64x64:rate=10:duration=${seconds}`];
}

/**
 * Runs ffmpeg to write `outputPath`: the executable the server would choose, so the tests also
 * run on a machine whose only ffmpeg is the npm package's.
 */
export async function synthesize(args: string[], outputPath: string): Promise<string> {
  const { path: ffmpegPath } = await findFfmpeg();
  await execFileAsync(ffmpegPath, ["-hide_banner", "-loglevel", "error", "-y", ...args, outputPath]);
  return outputPath;
}

/** Writes a 32-bit IEEE float WAV (format tag 3) with the given interleaved samples. */
export async function writeFloatWav(
  filePath: string,
  sampleRate: number,
  samples: Float32Array,
): Promise<void> {
  const dataBytes = samples.length * 4;
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "ascii");
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write("WAVEfmt ", 8, "ascii");
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(3, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 4, 28);
  header.writeUInt16LE(4, 32);
  header.writeUInt16LE(32, 34);
  header.write("data", 36, "ascii");
  header.writeUInt32LE(dataBytes, 40);
  const data = Buffer.alloc(dataBytes);
  samples.forEach((sample, index) => data.writeFloatLE(sample, index * 4));
  await writeFile(filePath, Buffer.concat([header, data]));
}

/** Computes one channel of the test tone. */
export function toneSamples(sampleRate: number, seconds: number): Float32Array {
  const samples = new Float32Array(Math.round(sampleRate * seconds));
  for (let index = 0; index < samples.length; index++) {
    samples[index] = TONE_AMPLITUDE * Math.sin((2 * Math.PI * TONE_HZ * index) / sampleRate);
  }
  return samples;
}

/**
 * Copies a WAV file with the size field of its `data` chunk replaced. With `riffSize` the RIFF
 * size is replaced too, because a writer that cannot seek back leaves both unfinished.
 */
export async function rewriteWavDataSize(
  sourcePath: string,
  targetPath: string,
  dataSize: number,
  riffSize?: number,
): Promise<void> {
  const bytes = await readFile(sourcePath);
  const dataOffset = bytes.indexOf("data", 12, "ascii");
  if (dataOffset < 0) throw new Error(`${sourcePath} has no data chunk`);
  bytes.writeUInt32LE(dataSize, dataOffset + 4);
  if (riffSize !== undefined) bytes.writeUInt32LE(riffSize, 4);
  await writeFile(targetPath, bytes);
}

/** Returns the size of the `data` chunk that a WAV header declares. */
export async function readWavDataSize(filePath: string): Promise<number> {
  const bytes = await readFile(filePath);
  return bytes.readUInt32LE(bytes.indexOf("data", 12, "ascii") + 4);
}

/** Computes the root mean square of the samples from `fromSeconds` to `toSeconds`. */
export function rms(samples: Float32Array, fromSeconds: number, toSeconds: number): number {
  const window = samples.subarray(fromSeconds * SAMPLE_RATE, toSeconds * SAMPLE_RATE);
  let sum = 0;
  for (const sample of window) sum += sample * sample;
  return Math.sqrt(sum / window.length);
}

/** Estimates the frequency of a pure tone from its zero crossings, at SAMPLE_RATE. */
export function toneFrequency(samples: Float32Array, fromSeconds: number, toSeconds: number) {
  const window = samples.subarray(fromSeconds * SAMPLE_RATE, toSeconds * SAMPLE_RATE);
  let crossings = 0;
  for (let index = 1; index < window.length; index++) {
    if ((window[index - 1] ?? 0) < 0 !== (window[index] ?? 0) < 0) crossings++;
  }
  return crossings / 2 / (toSeconds - fromSeconds);
}

/**
 * Lists the ids of this process's children whose command name is `name`, read from /proc.
 * Vitest's default pool runs each test file in its own process, so files do not see each other.
 */
export async function childProcesses(name: string): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(path.join("/proc", entry, "stat"), "utf8").catch(() => "");
    // The format is `pid (comm) state ppid ...`, and comm may contain spaces and parentheses.
    const match = /^\d+ \((.*)\) \S+ (\d+) /.exec(stat);
    if (match?.[1] === name && Number(match[2]) === process.pid) children.push(Number(entry));
  }
  return children;
}

/** Polls until a child named `name` exists and returns its id. Throws after `timeoutMs`. */
export async function waitForChild(name: string, timeoutMs = 5_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [pid] = await childProcesses(name);
    if (pid !== undefined) return pid;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no child process named ${name} appeared within ${timeoutMs} ms`);
}

/** Creates a named pipe: ffmpeg blocks opening it until a writer appears, which none does. */
export async function makeFifo(filePath: string): Promise<string> {
  await execFileAsync("mkfifo", [filePath]);
  return filePath;
}

/** Creates a pino logger that stores its JSON lines in `lines`. */
export function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      callback();
    },
  });
  return { log: pino({ level: "debug" }, destination), lines };
}

/** The length of one codec frame at the fixture's source rate, counted in 16 kHz samples. */
export const frame = {
  pcm: 1,
  mp3: (1152 * SAMPLE_RATE) / 44_100,
  aac: (1024 * SAMPLE_RATE) / 44_100,
  vorbis: (2048 * SAMPLE_RATE) / 44_100,
  opus: (960 * SAMPLE_RATE) / 48_000,
};

export interface FormatCase {
  name: string;
  file: string;
  args: string[];
  /** Largest accepted difference from SECONDS * SAMPLE_RATE, in samples. */
  toleranceSamples: number;
  /** Largest accepted relative error of the tone's RMS level. */
  levelTolerance: number;
}

const tone44k = toneSource(44_100, SECONDS);
export const formatCases: FormatCase[] = [
  {
    name: "wav 8 kHz 16-bit",
    file: "8k.wav",
    args: [...toneSource(8_000, SECONDS), "-c:a", "pcm_s16le"],
    toleranceSamples: frame.pcm,
    levelTolerance: 0.01,
  },
  {
    name: "wav 44.1 kHz stereo",
    file: "stereo.wav",
    args: [...toneSource(44_100, SECONDS, 2), "-c:a", "pcm_s16le"],
    toleranceSamples: frame.pcm,
    levelTolerance: 0.01,
  },
  {
    name: "wav 48 kHz 24-bit",
    file: "24bit.wav",
    args: [...toneSource(48_000, SECONDS), "-c:a", "pcm_s24le"],
    toleranceSamples: frame.pcm,
    levelTolerance: 0.01,
  },
  {
    name: "wav 32-bit float",
    file: "float.wav",
    args: [...tone44k, "-c:a", "pcm_f32le"],
    toleranceSamples: frame.pcm,
    levelTolerance: 0.01,
  },
  {
    name: "wav 48 kHz 5.1 float",
    file: "surround.wav",
    args: [...toneSource(48_000, SECONDS, 6), "-channel_layout", "5.1", "-c:a", "pcm_f32le"],
    toleranceSamples: frame.pcm,
    levelTolerance: 0.01,
  },
  {
    name: "mp3",
    file: "tone.mp3",
    args: [...tone44k, "-c:a", "libmp3lame", "-b:a", "128k"],
    toleranceSamples: frame.mp3,
    levelTolerance: 0.05,
  },
  {
    name: "m4a with the index at the end",
    file: "tone.m4a",
    args: [...tone44k, "-c:a", "aac", "-movflags", "-faststart"],
    toleranceSamples: frame.aac,
    levelTolerance: 0.05,
  },
  {
    name: "m4a faststart",
    file: "faststart.m4a",
    args: [...tone44k, "-c:a", "aac", "-movflags", "+faststart"],
    toleranceSamples: frame.aac,
    levelTolerance: 0.05,
  },
  {
    name: "ogg/opus",
    file: "tone.opus",
    args: [...toneSource(48_000, SECONDS), "-c:a", "libopus", "-b:a", "64k"],
    toleranceSamples: frame.opus,
    levelTolerance: 0.05,
  },
  {
    name: "ogg/vorbis",
    file: "tone.ogg",
    args: [...tone44k, "-c:a", "libvorbis"],
    toleranceSamples: frame.vorbis,
    levelTolerance: 0.05,
  },
  {
    name: "flac",
    file: "tone.flac",
    args: [...tone44k, "-c:a", "flac"],
    toleranceSamples: frame.pcm,
    levelTolerance: 0.01,
  },
  {
    // ADTS has no edit list, so the encoder's priming frame stays in the decoded audio.
    name: "aac (ADTS)",
    file: "tone.aac",
    args: [...tone44k, "-c:a", "aac", "-f", "adts"],
    toleranceSamples: 2 * frame.aac,
    levelTolerance: 0.05,
  },
  {
    name: "mp4 video with aac",
    file: "video.mp4",
    args: [...videoSource(SECONDS), ...tone44k, "-c:v", "libx264", "-c:a", "aac", "-shortest"],
    toleranceSamples: frame.aac,
    levelTolerance: 0.05,
  },
  {
    name: "webm video with opus",
    file: "video.webm",
    args: [
      ...videoSource(SECONDS),
      ...toneSource(48_000, SECONDS),
      ["-c:v", "libvpx", "-c:a", "libopus", "-shortest"],
    ].flat(),
    toleranceSamples: frame.opus,
    levelTolerance: 0.05,
  },
  {
    name: "mkv video with mp3",
    file: "video.mkv",
    args: [...videoSource(SECONDS), ...tone44k, "-c:v", "mpeg4", "-c:a", "libmp3lame"],
    toleranceSamples: frame.mp3,
    levelTolerance: 0.05,
  },
];

/** Checks the length, level and pitch of a decoded test tone against its format's tolerances. */
export function expectTone(samples: Float32Array, format: FormatCase): void {
  const expectedLength = SECONDS * SAMPLE_RATE;
  expect(Math.abs(samples.length - expectedLength)).toBeLessThanOrEqual(format.toleranceSamples);
  const level = rms(samples, 0.5, 2.5);
  expect(Math.abs(level - TONE_RMS) / TONE_RMS).toBeLessThanOrEqual(format.levelTolerance);
  // A wrong output sample rate would shift the pitch that the zero crossings measure.
  expect(Math.abs(toneFrequency(samples, 0.5, 2.5) - TONE_HZ)).toBeLessThan(5);
}
