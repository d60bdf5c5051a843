// Parsers for what whisper.cpp's CLI (`main`, whisper.cpp 2ef717b2) writes: the timings it
// prints on stderr and the transcript it saves with `-oj`.

/** The CLI's own timings from `whisper_print_timings`, in milliseconds. */
export interface CliTimings {
  loadMs: number;
  melMs: number;
  sampleMs: number;
  encodeMs: number;
  decodeMs: number;
  batchdMs: number;
  promptMs: number;
  /** From context creation (before the model load) to the end of the transcription. */
  totalMs: number;
}

/** One segment as the CLI reports it; times in milliseconds. */
export interface CliSegment {
  startMs: number;
  endMs: number;
  text: string;
}

const timingFields: Record<string, keyof CliTimings> = {
  load: "loadMs",
  mel: "melMs",
  sample: "sampleMs",
  encode: "encodeMs",
  decode: "decodeMs",
  batchd: "batchdMs",
  prompt: "promptMs",
  total: "totalMs",
};

/** Reads the `whisper_print_timings: <name> time = <ms> ms` lines; throws if any is missing. */
export function parseCliTimings(stderr: string): CliTimings {
  const timings: Partial<CliTimings> = {};
  const pattern = /whisper_print_timings:\s+(\w+) time =\s+([\d.]+) ms/g;
  for (const match of stderr.matchAll(pattern)) {
    const field = timingFields[match[1] as string];
    if (field) {
      timings[field] = Number(match[2]);
    }
  }
  const missing = Object.values(timingFields).filter((field) => timings[field] === undefined);
  if (missing.length > 0) {
    throw new Error(`the CLI's output lacks the timings ${missing.join(", ")}`);
  }
  return timings as CliTimings;
}

/** Returns the time the CLI spent transcribing: its total minus the model load, in ms. */
export function cliTranscribeMs(timings: CliTimings): number {
  return timings.totalMs - timings.loadMs;
}

/**
 * Parses the JSON the CLI writes with `-oj`.
 *
 * The CLI escapes only `"` and `\` in segment text, so a token holding a control character
 * (random weights produce any token) leaves a raw one inside a string, which JSON.parse rejects.
 * Bytes that are not valid UTF-8 are decoded to U+FFFD, as Node does for the binding's strings.
 */
export function parseCliJson(bytes: Uint8Array): CliSegment[] {
  const text = escapeControlCharactersInStrings(new TextDecoder("utf-8").decode(bytes));
  const document = JSON.parse(text) as {
    transcription?: { offsets: { from: number; to: number }; text: string }[];
  };
  if (!Array.isArray(document.transcription)) {
    throw new Error("the CLI's JSON output has no `transcription` list");
  }
  return document.transcription.map((segment) => ({
    startMs: segment.offsets.from,
    endMs: segment.offsets.to,
    text: segment.text,
  }));
}

/** Escapes U+0000..U+001F inside JSON string literals and leaves the layout outside them. */
export function escapeControlCharactersInStrings(json: string): string {
  let output = "";
  let inString = false;
  let escaped = false;
  for (const character of json) {
    const code = character.codePointAt(0) as number;
    if (inString && code < 0x20) {
      output += `\\u${code.toString(16).padStart(4, "0")}`;
      escaped = false;
      continue;
    }
    output += character;
    if (escaped) {
      escaped = false;
    } else if (inString && character === "\\") {
      escaped = true;
    } else if (character === '"') {
      inString = !inString;
    }
  }
  return output;
}
