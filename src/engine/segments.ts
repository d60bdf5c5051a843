// Conversion of whisper.cpp's segments into OpenAI's segment and word objects.
import { deflateSync } from "node:zlib";
import type { Segment, TokenLogprob, Word } from "../transcription/types.js";
import type { NativeSegment, NativeToken } from "./binding.js";

/** Token ids from this one up are special (end of text, language, task and timestamp tokens). */
const FIRST_SPECIAL_TOKEN = 50256;

function isTextToken(token: NativeToken): boolean {
  return token.id < FIRST_SPECIAL_TOKEN && !token.text.startsWith("[_");
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** Milliseconds to seconds, clamped to the audio, since whisper.cpp's ends can run past it. */
function toSeconds(milliseconds: number, durationSeconds: number): number {
  if (!Number.isFinite(milliseconds)) return 0;
  return clamp(Math.round(milliseconds) / 1000, 0, durationSeconds);
}

/** Ratio of the text's UTF-8 size to its deflated size, as Whisper computes it with zlib. */
export function compressionRatio(text: string): number {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length === 0) return 0;
  return bytes.length / deflateSync(bytes).length;
}

function averageLogProbability(tokens: NativeToken[]): number {
  const textTokens = tokens.filter(isTextToken);
  if (textTokens.length === 0) return 0;
  const sum = textTokens.reduce((total, token) => total + Math.log(Math.max(token.p, 1e-10)), 0);
  return sum / textTokens.length;
}

export function toSegment(
  native: NativeSegment,
  id: number,
  durationSeconds: number,
  temperature: number,
): Segment {
  const start = toSeconds(native.from, durationSeconds);
  const end = Math.max(start, toSeconds(native.to, durationSeconds));
  const tokens = native.tokens ?? [];
  return {
    id,
    // Whisper's seek is the window offset in 10 ms mel frames. whisper.cpp does not expose its
    // windows, so this is the frame where the segment starts.
    seek: Math.floor(start * 100),
    start,
    end,
    text: native.text,
    tokens: tokens.filter(isTextToken).map((token) => token.id),
    // NOTE: this whisper.cpp version does not report the temperature a fallback settled on,
    // so this is the starting temperature.
    temperature,
    avg_logprob: averageLogProbability(tokens),
    compression_ratio: compressionRatio(native.text),
    // NOTE: this whisper.cpp version does not compute a no-speech probability.
    no_speech_prob: 0,
  };
}

/** Groups a segment's tokens into words: a token that starts with a space starts a new word. */
export function toWords(native: NativeSegment, durationSeconds: number): Word[] {
  const words: Word[] = [];
  for (const token of (native.tokens ?? []).filter(isTextToken)) {
    const start = toSeconds(token.from ?? native.from, durationSeconds);
    const end = Math.max(start, toSeconds(token.to ?? native.to, durationSeconds));
    const last = words.at(-1);
    if (last && !token.text.startsWith(" ")) {
      last.word += token.text;
      last.end = Math.max(last.end, end);
    } else {
      words.push({ word: token.text, start, end });
    }
  }
  return words
    .map((word) => ({ ...word, word: word.word.trim() }))
    .filter((word) => word.word.length > 0);
}

/** Returns the text tokens of a segment with their log probabilities. */
export function toTokenLogprobs(native: NativeSegment): TokenLogprob[] {
  return (native.tokens ?? []).filter(isTextToken).map((token) => ({
    token: token.text,
    logprob: Math.log(Math.max(token.p, 1e-10)),
    bytes: [...Buffer.from(token.text, "utf8")],
  }));
}
