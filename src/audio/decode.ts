// Decodes an uploaded file to the input whisper.cpp takes: 16 kHz mono 32-bit float samples.
// ffmpeg reads the file from disk, because an mp4/m4a with its index at the end cannot be
// decoded through a pipe, and writes raw samples to stdout.
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { endianness } from "node:os";
import path from "node:path";
import ffmpeg, { type FfmpegCommand } from "fluent-ffmpeg";
import type { BaseLogger } from "pino";
import { ApiError } from "../errors.js";
import { BYTES_PER_SAMPLE, repairSamples, SampleCollector } from "./samples.js";
import {
  assertComplete,
  createInputReport,
  readStderrLine,
  type InputReport,
} from "./truncation.js";

/** whisper.cpp accepts only 16 kHz input. */
export const SAMPLE_RATE = 16_000;

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
 * Decodes the audio file at `inputPath` to 16 kHz mono float samples.
 *
 * No format is passed to ffmpeg, so it probes the file's contents. It also weighs a known
 * extension when the contents are ambiguous, so store uploads under a name without one.
 *
 * Rejects with ApiError `invalid_audio` (param `file`) when the file yields no samples or is
 * truncated, with ApiError `invalid_request` when the audio is longer than
 * `maxDurationSeconds`, and with `signal.reason` when aborted. Settles only after ffmpeg has
 * exited. Truncation is detected only where the container states its duration exactly (see
 * `findDeclaredSeconds` in truncation.ts). A cut file in another format, such as mp3 or Ogg,
 * yields the audio before the cut. NaN samples become 0 and the rest are clamped to [-1, 1],
 * so ±Infinity becomes ±1.
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
  await assertComplete(inputPath, samples.length / SAMPLE_RATE, run, options.log);

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
      // A stopped run is rejected, so its chunks are dropped without copying them into one
      // array, which would double the memory of a decode cut off at the duration limit.
      const samples = stopCause ? new Float32Array(0) : collector.toSamples();
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
