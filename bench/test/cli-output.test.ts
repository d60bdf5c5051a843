import { describe, expect, it } from "vitest";

import {
  cliTranscribeMs,
  escapeControlCharactersInStrings,
  parseCliJson,
  parseCliTimings,
} from "../lib/cli-output.js";

// Copied from a run of whisper.cpp 2ef717b2's `main` on a tiny.en-shaped model.
const timingOutput = `
whisper_print_timings:     load time =   141.10 ms
whisper_print_timings:     fallbacks =   0 p /   0 h
whisper_print_timings:      mel time =    33.70 ms
whisper_print_timings:   sample time =     3.57 ms /     1 runs (    3.57 ms per run)
whisper_print_timings:   encode time =  1426.57 ms /     1 runs ( 1426.57 ms per run)
whisper_print_timings:   decode time =    16.00 ms /     4 runs (    4.00 ms per run)
whisper_print_timings:   batchd time =     0.00 ms /     1 runs (    0.00 ms per run)
whisper_print_timings:   prompt time =     0.00 ms /     1 runs (    0.00 ms per run)
whisper_print_timings:    total time =  1729.06 ms
`;

describe("parseCliTimings", () => {
  it("reads every timing in milliseconds", () => {
    const timings = parseCliTimings(timingOutput);
    expect(timings.loadMs).toBe(141.1);
    expect(timings.encodeMs).toBe(1426.57);
    expect(timings.decodeMs).toBe(16);
    expect(timings.totalMs).toBe(1729.06);
  });

  it("subtracts the load from the total", () => {
    expect(cliTranscribeMs(parseCliTimings(timingOutput))).toBeCloseTo(1587.96, 6);
  });

  it("names the timings that are missing", () => {
    const withoutLoad = timingOutput.replace(/.*load time.*\n/, "");
    expect(() => parseCliTimings(withoutLoad)).toThrow(/loadMs/);
  });
});

function cliJson(segmentText: string): Uint8Array {
  const document = `{
\t"transcription": [
\t\t{
\t\t\t"timestamps": {"from": "00:00:00,160", "to": "00:00:14,500"},
\t\t\t"offsets": {
\t\t\t\t"from": 160,
\t\t\t\t"to": 14500
\t\t\t},
\t\t\t"text": "${segmentText}"
\t\t}
\t]
}`;
  return new TextEncoder().encode(document);
}

describe("parseCliJson", () => {
  it("reads offsets in milliseconds and the text", () => {
    expect(parseCliJson(cliJson(" hello"))).toEqual([
      { startMs: 160, endMs: 14500, text: " hello" },
    ]);
  });

  it("accepts raw control characters in the text", () => {
    const [segment] = parseCliJson(cliJson(" a\tb\nc"));
    expect(segment?.text).toBe(" a\tb\nc");
  });

  it("keeps escaped quotes and backslashes", () => {
    const [segment] = parseCliJson(cliJson(' say \\"hi\\" \\\\'));
    expect(segment?.text).toBe(' say "hi" \\');
  });

  it("decodes invalid UTF-8 to U+FFFD", () => {
    const bytes = cliJson(" x");
    const at = bytes.lastIndexOf("x".charCodeAt(0));
    bytes[at] = 0xe2;
    const [segment] = parseCliJson(bytes);
    expect(segment?.text).toBe(" \uFFFD");
  });

  it("rejects output without a transcription list", () => {
    expect(() => parseCliJson(new TextEncoder().encode("{}"))).toThrow(/transcription/);
  });
});

describe("escapeControlCharactersInStrings", () => {
  it("leaves whitespace between tokens alone", () => {
    const json = '{\n\t"a": "x\ny"\n}';
    expect(escapeControlCharactersInStrings(json)).toBe('{\n\t"a": "x\\u000ay"\n}');
  });

  it("does not end a string at an escaped quote", () => {
    const json = '["a\\"\t"]';
    expect(escapeControlCharactersInStrings(json)).toBe('["a\\"\\u0009"]');
  });
});
