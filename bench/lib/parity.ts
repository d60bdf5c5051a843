// Compares earshot's transcript with the CLI's for the same clip and decoding parameters.
import type { CliSegment } from "./cli-output.js";
import type { ServerTranscript } from "./client.js";

export interface SegmentMismatch {
  index: number;
  field: "start" | "end" | "text" | "missing";
  native: string;
  server: string;
}

export interface ParityResult {
  identical: boolean;
  nativeSegments: number;
  serverSegments: number;
  /** Segments whose CLI end time runs past the audio, which earshot clamps to its length. */
  clampedEnds: number;
  /** The first differences found, at most `maxReported`. */
  mismatches: SegmentMismatch[];
}

// earshot reports times in seconds rounded to the millisecond. The CLI's times are multiples
// of 10 ms, so any difference beyond floating-point noise is real.
const toleranceSeconds = 0.0005;
const maxReported = 5;

/**
 * Checks that every segment has the same text and the same times. earshot clamps times to the
 * audio's length (whisper.cpp's last end can run past it), so the CLI's times are clamped the
 * same way before they are compared, and the clamped segments are counted.
 */
export function compareTranscripts(
  native: readonly CliSegment[],
  server: ServerTranscript,
): ParityResult {
  const mismatches: SegmentMismatch[] = [];
  const count = Math.max(native.length, server.segments.length);
  let clampedEnds = 0;
  for (let index = 0; index < count; index += 1) {
    const expected = native[index];
    const actual = server.segments[index];
    if (!expected || !actual) {
      const describe = (present: unknown) => (present ? "present" : "absent");
      mismatches.push({
        index,
        field: "missing",
        native: describe(expected),
        server: describe(actual),
      });
      continue;
    }
    const start = clampSeconds(expected.startMs, server.duration);
    const end = Math.max(start, clampSeconds(expected.endMs, server.duration));
    if (expected.endMs / 1000 > server.duration) clampedEnds += 1;
    if (Math.abs(start - actual.start) > toleranceSeconds) {
      mismatches.push({ index, field: "start", native: `${start}`, server: `${actual.start}` });
    }
    if (Math.abs(end - actual.end) > toleranceSeconds) {
      mismatches.push({ index, field: "end", native: `${end}`, server: `${actual.end}` });
    }
    if (expected.text !== actual.text) {
      mismatches.push({ index, field: "text", native: expected.text, server: actual.text });
    }
  }
  return {
    identical: mismatches.length === 0,
    nativeSegments: native.length,
    serverSegments: server.segments.length,
    clampedEnds,
    mismatches: mismatches.slice(0, maxReported),
  };
}

function clampSeconds(milliseconds: number, durationSeconds: number): number {
  return Math.min(durationSeconds, Math.max(0, milliseconds / 1000));
}
