// Detects a truncated upload by comparing the decoded duration with the duration that its
// container declares. The declared duration comes from ffmpeg's description of the input on
// stderr, or for WAV from the file's own header.
import { open, type FileHandle } from "node:fs/promises";
import type { BaseLogger } from "pino";
import { ApiError } from "../errors.js";

/**
 * A decode that falls short of the declared duration by less than this is complete: encoder
 * delay, padding and the precision of ffmpeg's `Duration:` line (10 ms) account for it.
 */
const TRUNCATION_MIN_SHORTFALL_SECONDS = 0.25;
const TRUNCATION_MIN_SHORTFALL_FRACTION = 0.01;

/**
 * The input file as ffmpeg's stderr describes it. It is parsed here rather than taken from
 * fluent-ffmpeg's `codecData` event, because that event's patterns are not anchored and also
 * match a tag value such as a comment that contains "Duration:".
 */
export interface InputReport {
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

const INPUT_LINE = /^Input #0, (\S+), from /;
// Exactly two spaces: ffmpeg indents tag values further, so a tag cannot pose as this line.
const DURATION_LINE = /^ {2}Duration: (?:(\d+):(\d{2}):(\d{2}(?:\.\d+)?)|N\/A)/;
const STREAM_LINE = /^\s+Stream #0:\d+/;
const INPUT_SECTION_END = /^(?:Stream mapping:|Output #)/;
const ESTIMATED_DURATION_LINE = /^\[[^\]]+\] Estimating duration from bitrate/;
const PARTIAL_FILE_LINE = /^\[mov,[^\]]+\] stream \d+, offset 0x[0-9a-f]+: partial file/;

export function createInputReport(): InputReport {
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
export function readStderrLine(report: InputReport, line: string): void {
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
 * `decodedSeconds` is the duration of the samples ffmpeg produced, and `run` is that ffmpeg
 * run's input report and stderr tail.
 */
export async function assertComplete(
  inputPath: string,
  decodedSeconds: number,
  run: { input: InputReport; stderr: string },
  log: Pick<BaseLogger, "info">,
): Promise<void> {
  const declaredSeconds = await findDeclaredSeconds(inputPath, run.input);
  if (declaredSeconds === undefined) return;

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
  throw new ApiError(
    "invalid_audio",
    `The audio file is truncated: it declares a duration of ${declaredSeconds.toFixed(2)} ` +
      `seconds, but only ${decodedSeconds.toFixed(2)} seconds of audio could be decoded. ` +
      "Upload the complete file.",
    { param: "file" },
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
