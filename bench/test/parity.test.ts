import { describe, expect, it } from "vitest";

import type { CliSegment } from "../lib/cli-output.js";
import type { ServerTranscript } from "../lib/client.js";
import { compareTranscripts } from "../lib/parity.js";

const native: CliSegment[] = [
  { startMs: 0, endMs: 4200, text: " The morning train" },
  { startMs: 4200, endMs: 14500, text: " left the station." },
];

function serverTranscript(overrides: Partial<ServerTranscript> = {}): ServerTranscript {
  return {
    text: "The morning train left the station.",
    duration: 10,
    segments: [
      { start: 0, end: 4.2, text: " The morning train" },
      { start: 4.2, end: 10, text: " left the station." },
    ],
    ...overrides,
  };
}

describe("compareTranscripts", () => {
  it("accepts equal segments with the last end clamped to the audio", () => {
    const result = compareTranscripts(native, serverTranscript());
    expect(result.identical).toBe(true);
    expect(result.clampedEnds).toBe(1);
    expect(result.mismatches).toEqual([]);
  });

  it("reports a different text", () => {
    const transcript = serverTranscript();
    transcript.segments[0]!.text = " The evening train";
    const result = compareTranscripts(native, transcript);
    expect(result.identical).toBe(false);
    expect(result.mismatches).toEqual([
      { index: 0, field: "text", native: " The morning train", server: " The evening train" },
    ]);
  });

  it("reports a time that differs by more than a millisecond", () => {
    const transcript = serverTranscript();
    transcript.segments[1]!.start = 4.21;
    const result = compareTranscripts(native, transcript);
    expect(result.identical).toBe(false);
    expect(result.mismatches[0]?.field).toBe("start");
  });

  it("reports a segment only one side has", () => {
    const transcript = serverTranscript();
    transcript.segments.pop();
    const result = compareTranscripts(native, transcript);
    expect(result.identical).toBe(false);
    expect(result.serverSegments).toBe(1);
    expect(result.mismatches[0]).toEqual({
      index: 1,
      field: "missing",
      native: "present",
      server: "absent",
    });
  });

  it("keeps at most five mismatches", () => {
    const many: CliSegment[] = Array.from({ length: 8 }, (_, index) => ({
      startMs: index * 1000,
      endMs: index * 1000 + 500,
      text: ` word${index}`,
    }));
    const result = compareTranscripts(many, serverTranscript({ segments: [] }));
    expect(result.identical).toBe(false);
    expect(result.mismatches).toHaveLength(5);
  });
});
