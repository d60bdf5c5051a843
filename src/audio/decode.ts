// Decodes an uploaded file to the input whisper.cpp takes: 16 kHz mono 32-bit float samples.
// ffmpeg reads the file from disk, because an mp4/m4a with its index at the end cannot be
// decoded through a pipe, and writes raw samples to stdout.
import { constants } from "node:fs";
import { access, open, stat, type FileHandle } from "node:fs/promises";
import { endianness } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import ffmpeg, { type FfmpegCommand } from "fluent-ffmpeg";
import type { BaseLogger } from "pino";
import { ApiError } from "../errors.js";

/** whisper.cpp accepts only 16 kHz input. */
export const SAMPLE_RATE = 16_000;
const BYTES_PER_SAMPLE = 4;

/**
 * A backstop against an ffmpeg that hangs, not a performance budget: decoding is hundreds of
 * times faster than real time, so any limit in minutes leaves room for hours of audio.
 */
const DEFAULT_TIMEOUT_SECONDS = 300;
const STDERR_TAIL_LINES = 20;

// Float32Array reads samples in the platform's byte order, so ffmpeg writes that order.
const PCM_FORMAT = endianness() === "LE" ? "f32le" : "f32be";
const PCM_CODEC = `pcm_${PCM_FORMAT}`;

// Demuxers ffmpeg may choose when it probes an upload. Playlists and scripts (hls, concat, image
// sequences) are left out because they open further files, so an upload could read files on the
// server. An entry matches a demuxer by any of its names, so `mov` also covers mp4 and m4a.
const ALLOWED_DEMUXERS = [
  "aac", "ac3", "aiff", "amr", "ape", "asf", "au", "avi", "caf", "eac3", "flac", "flv",
  "matroska", "mov", "mp3", "mpeg", "mpegts", "ogg", "tta", "w64", "wav", "wv",
].join(",");

const SUPPORTED_FORMATS_HINT = "Upload audio or video such as mp3, m4a, wav, ogg, flac or webm.";

/**
 * A decode that falls short of the declared duration by less than this is complete: encoder
 * delay, padding and the precision of ffmpeg's `Duration:` line (10 ms) account for it.
 */
const TRUNCATION_MIN_SHORTFALL_SECONDS = 0.25;
const TRUNCATION_MIN_SHORTFALL_FRACTION = 0.01;

export type DecodeLogger = Pick<BaseLogger, "debug" | "info" | "warn">;

export interface DecodeOptions {
  /** The ffmpeg executable, as chosen by `findFfmpeg`. */
  ffmpegPath: string;
  /** Maximum audio duration accepted, in seconds. Decoding stops and rejects beyond it. */
  maxDurationSeconds: number;
  /** Wall-clock limit for the whole decode, in seconds. */
  timeoutSeconds?: number;
  /** Kills ffmpeg when aborted, for example when the client goes away. */
  signal?: AbortSignal;
  /** Receives ffmpeg's stderr tail when a decode fails, for operators. */
  log: DecodeLogger;
}

export interface DecodedAudio {
  /** Mono samples at SAMPLE_RATE, each finite and within [-1, 1]. */
  samples: Float32Array;
  durationSeconds: number;
}

/** Reason decoding was stopped before ffmpeg finished. */
type StopCause = "aborted" | "timed_out" | "too_long";

/** Outcome of one ffmpeg run, gathered after the process has exited. */
interface FfmpegRun {
  samples: Float32Array;
  stopCause: StopCause | undefined;
  /** ffmpeg's own failure: a non-zero exit, a signal, or a failed start. */
  ffmpegError: Error | undefined;
  started: boolean;
  stderr: string;
  input: InputReport;
}

/**
 * The input file as ffmpeg's stderr describes it. It is parsed here rather than taken from
 * fluent-ffmpeg's `codecData` event, because that event's patterns are not anchored and also
 * match a tag value such as a comment that contains "Duration:".
 */
interface InputReport {
  /** The demuxer's names as ffmpeg prints them, such as `wav` or `mov,mp4,m4a,3gp,3g2,mj2`. */
  format: string | undefined;
  /** The input's `Duration:` in seconds, undefined when ffmpeg prints `N/A`. */
  durationSeconds: number | undefined;
  /** Streams of the input, not counting attached pictures such as cover art. */
  streamCount: number;
  /** ffmpeg computed the duration from the bitrate and the file size. */
  durationEstimated: boolean;
  /** The mov demuxer found a sample that ends past the end of the file. */
  partialFile: boolean;
  /** True between the `Input #0` line and the stream mapping, where the input is described. */
  inInputSection: boolean;
}

/**
 * Decodes the audio file at `inputPath` to 16 kHz mono float samples.
 *
 * No format is passed to ffmpeg, so it probes the file's contents. It also weighs a known
 * extension when the contents are ambiguous, so store uploads under a name without one.
 *
 * Rejects with ApiError `invalid_audio` (param `file`) when the file yields no samples or is
 * truncated, with ApiError `invalid_request` when the audio is longer than
 * `maxDurationSeconds`, and with `signal.reason` when aborted. Settles only after ffmpeg has
 * exited. Truncation is detected only where the container states its duration exactly (see
 * `findDeclaredSeconds`). A cut file in another format, such as mp3 or Ogg, yields the audio
 * before the cut. NaN samples become 0 and the rest are clamped to [-1, 1], so ±Infinity
 * becomes ±1.
 */
export async function decodeAudio(
  inputPath: string,
  options: DecodeOptions,
): Promise<DecodedAudio> {
  options.signal?.throwIfAborted();
  await assertRunnable(options.ffmpegPath);
  await assertNotEmpty(inputPath);

  const startedAt = performance.now();
  const run = await runFfmpeg(inputPath, options);
  const samples = checkRun(run, options);
  await assertComplete(inputPath, run, options.log);

  const repairs = repairSamples(samples);
  if (repairs.nonFinite > 0 || repairs.clamped > 0) {
    options.log.info(
      { nonFiniteSamples: repairs.nonFinite, clampedSamples: repairs.clamped },
      "replaced decoded samples that were not finite or outside [-1, 1]",
    );
  }
  const durationSeconds = samples.length / SAMPLE_RATE;
  const decodeMs = Math.round(performance.now() - startedAt);
  options.log.debug({ durationSeconds, decodeMs }, "audio decoded");
  return { samples, durationSeconds };
}

/**
 * Checks before every run that the executable still exists and may be executed.
 * NOTE: fluent-ffmpeg 2.1.3 throws an uncaught TypeError when spawning ffmpeg fails, which ends
 * the process. This check covers a missing or non-executable file, but a spawn that fails for
 * lack of memory or process slots (ENOMEM, EAGAIN) still hits that bug.
 */
async function assertRunnable(ffmpegPath: string): Promise<void> {
  try {
    await access(ffmpegPath, constants.X_OK);
  } catch (error) {
    throw new Error(`ffmpeg at ${ffmpegPath} cannot be run`, { cause: error });
  }
}

async function assertNotEmpty(inputPath: string): Promise<void> {
  const info = await stat(inputPath);
  if (info.isFile() && info.size === 0) {
    throw invalidAudio(`The file is empty. ${SUPPORTED_FORMATS_HINT}`);
  }
}

function invalidAudio(message: string): ApiError {
  return new ApiError("invalid_audio", message, { param: "file" });
}

function runFfmpeg(inputPath: string, options: DecodeOptions): Promise<FfmpegRun> {
  return new Promise((resolve) => {
    const command = buildCommand(inputPath, options.ffmpegPath);
    let stopCause: StopCause | undefined;
    let started = false;
    const stop = (cause: StopCause) => {
      stopCause ??= cause;
      // Before 'start' there is no process yet, so the start handler kills it.
      if (started) command.kill("SIGKILL");
    };

    const maxBytes = Math.ceil(options.maxDurationSeconds * SAMPLE_RATE) * BYTES_PER_SAMPLE;
    const collector = new SampleCollector(maxBytes, () => stop("too_long"));
    const input = createInputReport();
    const { signal } = options;
    const onAbort = () => stop("aborted");
    signal?.addEventListener("abort", onAbort, { once: true });
    // An abort during the awaits before this point fired no event that this listener saw.
    if (signal?.aborted) stop("aborted");
    const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    const timer = setTimeout(() => stop("timed_out"), timeoutSeconds * 1000);

    const settle = async (ffmpegError: Error | undefined, stderr: string | null) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      // stdout can still hold samples after the exit. It ends even when ffmpeg was killed.
      if (started) await collector.finished;
      const samples = collector.toSamples();
      resolve({ samples, stopCause, ffmpegError, started, stderr: stderr ?? "", input });
    };
    command.once("start", () => {
      started = true;
      if (stopCause) command.kill("SIGKILL");
    });
    // fluent-ffmpeg passes every line here, while `stderr` at the end holds only the last ones.
    command.on("stderr", (line: string) => readStderrLine(input, line));
    command.once("error", (error: Error, _stdout, stderr) => void settle(error, stderr));
    command.once("end", (_stdout, stderr) => void settle(undefined, stderr));
    command.pipe(collector, { end: true });
  });
}

// NOTE: fluent-ffmpeg 2.1.3 stores the ffmpeg path in one process-wide variable, so concurrent
// decodes must all use the same path.
function buildCommand(inputPath: string, ffmpegPath: string): FfmpegCommand {
  return (
    ffmpeg({ stdoutLines: STDERR_TAIL_LINES })
      .setFfmpegPath(ffmpegPath)
      // The `file:` prefix stops a name such as `concat:a|b` or `http://…` naming a protocol.
      .input(`file:${path.resolve(inputPath)}`)
      .inputOptions(["-nostdin", "-hide_banner", "-nostats"])
      .inputOptions(["-protocol_whitelist", "file", "-format_whitelist", ALLOWED_DEMUXERS])
      // The first audio stream only, so a video track is never decoded.
      .outputOptions(["-map", "0:a:0", "-ac", "1", "-ar", String(SAMPLE_RATE)])
      // Without this, ffmpeg's downmix to float output is 0.707 * (L + R) for stereo and reaches
      // 1.7 times full scale for 5.1. With it the channels are averaged and stay within [-1, 1].
      .outputOptions(["-rematrix_maxval", "1"])
      .outputOptions(["-c:a", PCM_CODEC, "-f", PCM_FORMAT])
  );
}

/** Returns the samples of a run that produced usable audio, or throws the error to report. */
function checkRun(run: FfmpegRun, options: DecodeOptions): Float32Array {
  const ffmpegStderr = run.stderr.trim();
  if (run.stopCause) throw stopError(run.stopCause, ffmpegStderr, options);
  if (!run.started || isSystemFailure(run.ffmpegError)) {
    throw new Error(`ffmpeg at ${options.ffmpegPath} failed to run: ${run.ffmpegError?.message}`, {
      cause: run.ffmpegError,
    });
  }

  if (run.samples.length === 0) {
    options.log.info(
      { ffmpegError: firstLine(run.ffmpegError), ffmpegStderr },
      "ffmpeg produced no audio from the upload",
    );
    throw invalidAudio(describeUndecodable(run.stderr));
  }
  if (run.ffmpegError) {
    options.log.info(
      { ffmpegError: firstLine(run.ffmpegError), ffmpegStderr, samples: run.samples.length },
      "ffmpeg failed part way; using the audio decoded before the failure",
    );
  }
  return run.samples;
}

function firstLine(error: Error | undefined): string | undefined {
  return error?.message.split("\n")[0];
}

/** Logs why decoding stopped early and returns the error to reject with. */
function stopError(cause: StopCause, ffmpegStderr: string, options: DecodeOptions): unknown {
  switch (cause) {
    case "aborted":
      options.log.debug("decoding stopped because the request was aborted");
      return options.signal?.reason;
    case "too_long":
      options.log.info(
        { maxDurationSeconds: options.maxDurationSeconds },
        "decoding stopped because the audio is longer than the maximum",
      );
      return tooLong(options.maxDurationSeconds);
    case "timed_out": {
      const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
      options.log.warn({ timeoutSeconds, ffmpegStderr }, "decoding timed out, ffmpeg killed");
      return timedOut(timeoutSeconds);
    }
  }
}

/**
 * Tells a failure of the machine apart from a bad upload: ffmpeg could not start, or a signal
 * this module did not send (such as the kernel's out-of-memory killer) ended it.
 */
function isSystemFailure(error: Error | undefined): boolean {
  if (error === undefined) return false;
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === "string" || /killed with signal/.test(error.message);
}

/** Picks a message for the client from ffmpeg's stderr, which is never sent: it names paths. */
function describeUndecodable(stderr: string): string {
  if (/matches no streams|does not contain any stream/.test(stderr)) {
    return "The file contains no audio track. Upload a file with an audio track.";
  }
  if (/Invalid data found|not on whitelist|moov atom not found/.test(stderr)) {
    return `The file is not in a supported format, or it is damaged. ${SUPPORTED_FORMATS_HINT}`;
  }
  return `The file contains no audio that could be decoded. ${SUPPORTED_FORMATS_HINT}`;
}

function tooLong(maxDurationSeconds: number): ApiError {
  return new ApiError(
    "invalid_request",
    `The audio is longer than the maximum of ${maxDurationSeconds} seconds. ` +
      "Upload a shorter recording or split it into parts.",
    { param: "file" },
  );
}

function timedOut(timeoutSeconds: number): ApiError {
  return invalidAudio(
    `Decoding the audio did not finish within ${timeoutSeconds} seconds. ` +
      "The file may be damaged; try converting it to mp3 or wav.",
  );
}

const INPUT_LINE = /^Input #0, (\S+), from /;
// Exactly two spaces: ffmpeg indents tag values further, so a tag cannot pose as this line.
const DURATION_LINE = /^ {2}Duration: (?:(\d+):(\d{2}):(\d{2}(?:\.\d+)?)|N\/A)/;
const STREAM_LINE = /^\s+Stream #0:\d+/;
const INPUT_SECTION_END = /^(?:Stream mapping:|Output #)/;
const ESTIMATED_DURATION_LINE = /^\[[^\]]+\] Estimating duration from bitrate/;
const PARTIAL_FILE_LINE = /^\[mov,[^\]]+\] stream \d+, offset 0x[0-9a-f]+: partial file/;

function createInputReport(): InputReport {
  return {
    format: undefined,
    durationSeconds: undefined,
    streamCount: 0,
    durationEstimated: false,
    partialFile: false,
    inInputSection: false,
  };
}

/** Updates `report` with one line of ffmpeg's stderr. */
function readStderrLine(report: InputReport, line: string): void {
  const input = INPUT_LINE.exec(line);
  if (input) {
    report.format = input[1];
    report.inInputSection = true;
    return;
  }
  if (INPUT_SECTION_END.test(line)) report.inInputSection = false;
  if (report.inInputSection) {
    const duration = DURATION_LINE.exec(line);
    if (duration) report.durationSeconds = durationToSeconds(duration);
    if (STREAM_LINE.test(line) && !line.includes("(attached pic)")) report.streamCount++;
  }
  if (ESTIMATED_DURATION_LINE.test(line)) report.durationEstimated = true;
  if (PARTIAL_FILE_LINE.test(line)) report.partialFile = true;
}

/** Converts a match of DURATION_LINE to seconds, or to undefined for `N/A`. */
function durationToSeconds([, hours, minutes, seconds]: RegExpExecArray): number | undefined {
  if (hours === undefined) return undefined;
  return Number(hours) * 3600 + Number(minutes) * 60 + Number(seconds);
}

/**
 * Rejects a file whose decoded audio falls short of the duration its container declares by at
 * least max(0.25 s, 1 %), so that a client never gets a transcript of part of a file.
 */
async function assertComplete(
  inputPath: string,
  run: FfmpegRun,
  log: DecodeLogger,
): Promise<void> {
  const declaredSeconds = await findDeclaredSeconds(inputPath, run.input);
  if (declaredSeconds === undefined) return;

  const decodedSeconds = run.samples.length / SAMPLE_RATE;
  const shortfallSeconds = declaredSeconds - decodedSeconds;
  const toleranceSeconds = Math.max(
    TRUNCATION_MIN_SHORTFALL_SECONDS,
    TRUNCATION_MIN_SHORTFALL_FRACTION * declaredSeconds,
  );
  if (shortfallSeconds < toleranceSeconds) return;

  const { format, streamCount, partialFile } = run.input;
  log.info(
    {
      format,
      declaredSeconds,
      decodedSeconds,
      streamCount,
      partialFile,
      ffmpegStderr: run.stderr.trim(),
    },
    "rejected a truncated upload: less audio decoded than the container declares",
  );
  throw invalidAudio(
    `The audio file is truncated: it declares a duration of ${declaredSeconds.toFixed(2)} ` +
      `seconds, but only ${decodedSeconds.toFixed(2)} seconds of audio could be decoded. ` +
      "Upload the complete file.",
  );
}

/**
 * Returns the duration that the container states exactly, in seconds, or undefined where it
 * states none or ffmpeg estimates one.
 *
 * Checked: WAV (the data chunk's size, read here because ffmpeg 5.1 and the 2018 static build
 * replace a size that runs past the end of the file with one computed from the file size),
 * mp4/m4a/mov (the moov box) and flac (STREAMINFO's sample count). Not checked: raw AAC and
 * mp3 without a Xing or Info header, whose durations ffmpeg estimates from the bitrate, and
 * Ogg, whose duration ffmpeg reads from the last page's granule position, so a cut file
 * declares exactly what it still contains.
 * NOTE: a cut mp3 with a Xing or Info header, a cut webm or mkv with a Duration element, and
 * a cut aiff, au or WavPack file also declare more than they hold, but are not checked yet.
 */
async function findDeclaredSeconds(
  inputPath: string,
  report: InputReport,
): Promise<number | undefined> {
  // ffmpeg names some demuxers by a list, such as `mov,mp4,m4a,3gp,3g2,mj2`.
  const demuxer = report.format?.split(",")[0];
  if (demuxer === "wav") return readWavDeclaredSeconds(inputPath);
  if (report.durationEstimated) return undefined;
  if (demuxer === "flac") return report.durationSeconds;
  if (demuxer === "mov") {
    // The movie's duration is its longest track's, which may be a video or data track that
    // runs longer than the audio. With such tracks, only a sample past the end proves a cut.
    if (report.streamCount > 1 && !report.partialFile) return undefined;
    return report.durationSeconds;
  }
  return undefined;
}

// WAV format tags whose data size converts exactly to a duration: PCM, IEEE float, A-law, µ-law.
const WAV_FIXED_SIZE_FORMATS = new Set([0x0001, 0x0003, 0x0006, 0x0007]);
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/**
 * A data size of 0, or of this many bytes (about 2 GiB) or more, is a placeholder and declares
 * no duration. A writer leaves one when it cannot seek back to fill in the size, as sox 14.4
 * (0x7FFFF000) and ffmpeg 5.1 (0xFFFFFFFF) do when writing to a pipe.
 */
const WAV_PLACEHOLDER_MIN_BYTES = 0x7fff_f000;
/** Maximum chunks read before `data`. Ordinary files have a few. */
const WAV_MAX_CHUNKS = 64;

interface WavHeader {
  formatTag: number;
  sampleRate: number;
  /** Bytes per sample frame, all channels together. */
  blockAlign: number;
  /** The size of the `data` chunk, from `ds64` in an RF64 file. */
  dataBytes: number;
}

/** Returns the duration declared by a PCM WAV file's header, in seconds. */
async function readWavDeclaredSeconds(inputPath: string): Promise<number | undefined> {
  const file = await open(inputPath, "r");
  let header: WavHeader | undefined;
  try {
    header = await readWavHeader(file);
  } finally {
    await file.close();
  }
  if (header === undefined || !WAV_FIXED_SIZE_FORMATS.has(header.formatTag)) return undefined;
  if (header.dataBytes === 0 || header.dataBytes >= WAV_PLACEHOLDER_MIN_BYTES) return undefined;
  if (header.blockAlign === 0 || header.sampleRate === 0) return undefined;
  return Math.floor(header.dataBytes / header.blockAlign) / header.sampleRate;
}

/**
 * Reads the `fmt ` and `data` chunk headers of a RIFF or RF64 WAVE file. Returns undefined for
 * another file type or a header that ends before the `data` chunk.
 */
async function readWavHeader(file: FileHandle): Promise<WavHeader | undefined> {
  const riff = await readBytes(file, 0, 12);
  const magic = riff.toString("latin1", 0, 4);
  if ((magic !== "RIFF" && magic !== "RF64") || riff.toString("latin1", 8, 12) !== "WAVE") {
    return undefined;
  }

  let format: Buffer | undefined;
  let ds64DataBytes: number | undefined;
  let offset = 12;
  for (let chunk = 0; chunk < WAV_MAX_CHUNKS; chunk++) {
    const chunkHeader = await readBytes(file, offset, 8);
    if (chunkHeader.length < 8) return undefined;
    const id = chunkHeader.toString("latin1", 0, 4);
    const size = chunkHeader.readUInt32LE(4);
    const body = offset + 8;

    if (id === "data") {
      if (format === undefined || format.length < 16) return undefined;
      const dataBytes = magic === "RF64" && size === 0xffff_ffff ? ds64DataBytes : size;
      return dataBytes === undefined ? undefined : { ...readWavFormat(format), dataBytes };
    }
    if (id === "fmt ") format = await readBytes(file, body, Math.min(size, 40));
    if (id === "ds64" && size >= 16) {
      ds64DataBytes = Number((await readBytes(file, body, 16)).readBigUInt64LE(8));
    }
    // A chunk with an odd size is followed by one pad byte.
    offset = body + size + (size % 2);
  }
  return undefined;
}

function readWavFormat(format: Buffer): Omit<WavHeader, "dataBytes"> {
  let formatTag = format.readUInt16LE(0);
  // WAVE_FORMAT_EXTENSIBLE keeps the real format tag in the first two bytes of its GUID.
  if (formatTag === WAVE_FORMAT_EXTENSIBLE && format.length >= 26) {
    formatTag = format.readUInt16LE(24);
  }
  return { formatTag, sampleRate: format.readUInt32LE(4), blockAlign: format.readUInt16LE(12) };
}

/** Reads up to `length` bytes at `position`, fewer at the end of the file. */
async function readBytes(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

/**
 * Replaces NaN with 0 and clamps every sample to [-1, 1], in place. A float WAV can carry NaN
 * and ±Infinity, which abort whisper.cpp. Audio decoded from integer PCM is already in range.
 */
function repairSamples(samples: Float32Array): { nonFinite: number; clamped: number } {
  let nonFinite = 0;
  let clamped = 0;
  for (let index = 0; index < samples.length; index++) {
    const sample = samples[index] ?? 0;
    // NaN fails both comparisons, so it takes the slow path with the out-of-range values.
    if (sample >= -1 && sample <= 1) continue;
    if (Number.isNaN(sample)) {
      samples[index] = 0;
    } else {
      samples[index] = sample > 0 ? 1 : -1;
    }
    if (Number.isFinite(sample)) clamped++;
    else nonFinite++;
  }
  return { nonFinite, clamped };
}

/**
 * Keeps ffmpeg's output chunks up to `maxBytes` and copies them once into one Float32Array.
 * Past the limit it drops further output and calls `onLimit` once.
 */
class SampleCollector extends Writable {
  readonly finished: Promise<void>;
  private readonly chunks: Buffer[] = [];
  private byteLength = 0;
  private limitReached = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onLimit: () => void,
  ) {
    // No 'close' event: fluent-ffmpeg reads one as "output closed early" and kills ffmpeg.
    super({ emitClose: false, autoDestroy: false });
    this.finished = new Promise((resolve) => this.once("finish", () => resolve()));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    if (!this.limitReached && this.byteLength + chunk.length > this.maxBytes) {
      this.limitReached = true;
      this.onLimit();
    }
    if (!this.limitReached) {
      this.chunks.push(chunk);
      this.byteLength += chunk.length;
    }
    callback();
  }

  /** Returns the samples received; a partial trailing sample is dropped. */
  toSamples(): Float32Array {
    const samples = new Float32Array(Math.floor(this.byteLength / BYTES_PER_SAMPLE));
    const bytes = new Uint8Array(samples.buffer);
    let offset = 0;
    for (const chunk of this.chunks) {
      const length = Math.min(chunk.length, bytes.length - offset);
      bytes.set(chunk.subarray(0, length), offset);
      offset += length;
    }
    this.chunks.length = 0;
    return samples;
  }
}
