// Renders a transcript as the body of each OpenAI `response_format`.
// Reference: https://platform.openai.com/docs/api-reference/audio/createTranscription

import { languageName } from "./languages.js";
import type { ResponseFormat, Segment, Transcript, Word } from "./types.js";

export interface RenderOptions {
  /** Whether the request includes `timestamp_granularities[]=word`. */
  wordTimestamps?: boolean;
}

export interface RenderedTranscript {
  /** Value for the `content-type` response header. */
  contentType: string;
  body: string;
}

const jsonType = "application/json; charset=utf-8";
const plainTextType = "text/plain; charset=utf-8";
// The media type that the WebVTT specification registers. The openai SDK (checked with
// 6.49) parses a body as JSON only when its type is JSON, so it returns this body as a string.
const webVttType = "text/vtt; charset=utf-8";

/** Usage block of `json` and `verbose_json`, billed by audio duration. */
interface DurationUsage {
  type: "duration";
  /** Whole seconds, rounded up: OpenAI's reference reports 8.47 s of audio as 9. */
  seconds: number;
}

/** Renders `transcript` as the body and content type of one `response_format`. */
export function renderTranscript(
  transcript: Transcript,
  format: ResponseFormat,
  options: RenderOptions = {},
): RenderedTranscript {
  switch (format) {
    case "json":
      return { contentType: jsonType, body: JSON.stringify(renderJson(transcript)) };
    case "verbose_json":
      return {
        contentType: jsonType,
        body: JSON.stringify(renderVerboseJson(transcript, options)),
      };
    case "text":
      return { contentType: plainTextType, body: renderText(transcript) };
    case "srt":
      return { contentType: plainTextType, body: renderSrt(transcript.segments) };
    case "vtt":
      return { contentType: webVttType, body: renderVtt(transcript.segments) };
  }
}

/**
 * Formats a time in seconds as `HH:MM:SS<separator>mmm`, the cue time of SRT (",") and
 * WebVTT ("."). Hours take as many digits as they need and never wrap at 24. Milliseconds
 * are rounded to nearest, and a carry moves into the seconds, so ",1000" never appears.
 * Negative times become zero. Throws a RangeError for NaN and infinities.
 */
export function formatTimestamp(seconds: number, separator: "," | "."): string {
  if (!Number.isFinite(seconds)) {
    throw new RangeError(`Cannot format a timestamp of ${seconds} seconds.`);
  }

  const totalMilliseconds = roundToMilliseconds(Math.max(seconds, 0));
  const milliseconds = totalMilliseconds % 1000;
  const totalSeconds = (totalMilliseconds - milliseconds) / 1000;
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor(totalSeconds / 60) % 60;
  const wholeSeconds = totalSeconds % 60;

  return (
    `${pad(hours, 2)}:${pad(minutes, 2)}:${pad(wholeSeconds, 2)}` +
    `${separator}${pad(milliseconds, 3)}`
  );
}

/**
 * Rounds seconds to whole milliseconds, half away from zero. Rounding to microseconds
 * first removes binary noise, so 0.9995 (stored as 0.99949999...) becomes 1000 ms.
 */
function roundToMilliseconds(seconds: number): number {
  const microseconds = Math.round(seconds * 1_000_000);
  return Math.round(microseconds / 1000);
}

function pad(value: number, digits: number): string {
  return String(value).padStart(digits, "0");
}

function durationUsage(duration: number): DurationUsage {
  // Rounding to milliseconds first keeps float noise such as 3.0000000001 from billing 4 s.
  const seconds = Math.ceil(roundToMilliseconds(Math.max(duration, 0)) / 1000);
  return { type: "duration", seconds };
}

function renderJson(transcript: Transcript) {
  return {
    text: transcript.text.trim(),
    ...(transcript.logprobs ? { logprobs: transcript.logprobs } : {}),
    usage: durationUsage(transcript.duration),
  };
}

interface VerboseTranscriptBody {
  task: Transcript["task"];
  /** Lower-case English name, such as "english". */
  language: string;
  duration: number;
  text: string;
  segments: Segment[];
  words?: Word[];
  usage: DurationUsage;
}

function renderVerboseJson(
  transcript: Transcript,
  options: RenderOptions,
): VerboseTranscriptBody {
  return {
    task: transcript.task,
    // The code is reported as is only if the engine returns a language outside Whisper's table.
    language: languageName(transcript.language) ?? transcript.language,
    duration: transcript.duration,
    text: transcript.text.trim(),
    segments: transcript.segments.map(toSegmentBody),
    ...(options.wordTimestamps === true
      ? { words: (transcript.words ?? []).map(toWordBody) }
      : {}),
    usage: durationUsage(transcript.duration),
  };
}

/** Copies exactly the ten segment fields OpenAI returns, in OpenAI's order. */
function toSegmentBody(segment: Segment): Segment {
  return {
    id: segment.id,
    seek: segment.seek,
    start: segment.start,
    end: segment.end,
    text: segment.text,
    tokens: segment.tokens,
    temperature: segment.temperature,
    avg_logprob: segment.avg_logprob,
    compression_ratio: segment.compression_ratio,
    no_speech_prob: segment.no_speech_prob,
  };
}

function toWordBody(word: Word): Word {
  return { word: word.word, start: word.start, end: word.end };
}

/** Renders the `text` format: the trimmed text and a final newline, or "" for no speech. */
function renderText(transcript: Transcript): string {
  const text = transcript.text.trim();
  return text === "" ? "" : `${text}\n`;
}

interface Cue {
  start: number;
  end: number;
  /** One or more non-blank lines, already escaped for the subtitle format. */
  text: string;
}

/**
 * Turns segments into cues. A segment whose text is empty after cleaning is skipped, and
 * an end before the start is raised to the start.
 */
function toCues(segments: Segment[], escapeLine: (line: string) => string): Cue[] {
  const cues: Cue[] = [];
  for (const segment of segments) {
    const text = toCueLines(segment.text).map(escapeLine).join("\n");
    if (text !== "") {
      cues.push({ start: segment.start, end: Math.max(segment.end, segment.start), text });
    }
  }
  return cues;
}

/**
 * Splits text into trimmed, non-blank lines. A blank line ends a cue in both SRT and
 * WebVTT, so cue text must never contain one.
 */
function toCueLines(text: string): string[] {
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "");
}

/**
 * Rewrites every run of two or more hyphens before ">" as "->". SRT has no escape
 * syntax, and a line containing "-->" would be read as a cue timing line.
 */
function escapeSrtLine(line: string): string {
  return line.replace(/-{2,}>/g, "->");
}

/**
 * Escapes WebVTT's markup characters as character references. WebVTT requires "&" and "<"
 * to be escaped and forbids "-->" in cue text, which escaping ">" also rules out.
 */
function escapeVttLine(line: string): string {
  return line.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Renders SubRip: numbered cues from 1, each ended by a blank line. "" when no cue. */
function renderSrt(segments: Segment[]): string {
  return toCues(segments, escapeSrtLine)
    .map((cue, index) => {
      const timing = `${formatTimestamp(cue.start, ",")} --> ${formatTimestamp(cue.end, ",")}`;
      return `${index + 1}\n${timing}\n${cue.text}\n\n`;
    })
    .join("");
}

/**
 * Renders WebVTT: the header, then cues whose identifiers count from 1 like SRT's numbers,
 * each ended by a blank line.
 */
function renderVtt(segments: Segment[]): string {
  const cues = toCues(segments, escapeVttLine).map((cue, index) => {
    const timing = `${formatTimestamp(cue.start, ".")} --> ${formatTimestamp(cue.end, ".")}`;
    return `${index + 1}\n${timing}\n${cue.text}\n\n`;
  });
  return `WEBVTT\n\n${cues.join("")}`;
}
