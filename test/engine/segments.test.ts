import { describe, expect, it } from "vitest";
import type { NativeSegment } from "../../src/engine/binding.js";
import { compressionRatio, toSegment, toWords } from "../../src/engine/segments.js";

function nativeSegment(overrides: Partial<NativeSegment> = {}): NativeSegment {
  return {
    from: 1000,
    to: 2500,
    text: " Hello world",
    lang: "en",
    confidence: 0.9,
    tokens: [
      { text: "[_BEG_]", id: 50364, p: 1, from: 1000, to: 1000 },
      { text: " Hello", id: 15947, p: 0.5, from: 1000, to: 1600 },
      { text: " wor", id: 1002, p: 0.25, from: 1700, to: 2000 },
      { text: "ld", id: 335, p: 1, from: 2000, to: 2400 },
      { text: "[_TT_125]", id: 50489, p: 1, from: 2500, to: 2500 },
    ],
    ...overrides,
  };
}

describe("toSegment", () => {
  it("converts milliseconds to seconds", () => {
    const segment = toSegment(nativeSegment(), 0, 10, 0);

    expect(segment.start).toBe(1);
    expect(segment.end).toBe(2.5);
    expect(segment.seek).toBe(100);
  });

  it("clamps times to the audio's duration", () => {
    const segment = toSegment(nativeSegment({ from: 9000, to: 12_000 }), 3, 10, 0);

    expect(segment.start).toBe(9);
    expect(segment.end).toBe(10);
  });

  it("clamps negative and non-finite times to zero", () => {
    const segment = toSegment(nativeSegment({ from: -500, to: Number.NaN }), 0, 10, 0);

    expect(segment.start).toBe(0);
    expect(segment.end).toBe(0);
  });

  it("keeps only text tokens", () => {
    expect(toSegment(nativeSegment(), 0, 10, 0).tokens).toEqual([15947, 1002, 335]);
  });

  it("averages the log probability of text tokens", () => {
    const expected = (Math.log(0.5) + Math.log(0.25) + Math.log(1)) / 3;

    expect(toSegment(nativeSegment(), 0, 10, 0).avg_logprob).toBeCloseTo(expected, 10);
  });

  it("keeps the requested temperature and the id", () => {
    const segment = toSegment(nativeSegment(), 7, 10, 0.4);

    expect(segment.id).toBe(7);
    expect(segment.temperature).toBe(0.4);
  });
});

describe("toWords", () => {
  it("joins tokens without a leading space into one word", () => {
    expect(toWords(nativeSegment(), 10)).toEqual([
      { word: "Hello", start: 1, end: 1.6 },
      { word: "world", start: 1.7, end: 2.4 },
    ]);
  });

  it("clamps word times to the duration", () => {
    const words = toWords(nativeSegment(), 2);

    expect(words.at(-1)).toEqual({ word: "world", start: 1.7, end: 2 });
  });
});

describe("compressionRatio", () => {
  it("is higher for repetitive text", () => {
    const repetitive = compressionRatio("the same words ".repeat(40));
    const varied = compressionRatio("A quick brown fox jumps over the lazy dog.");

    expect(repetitive).toBeGreaterThan(2.4);
    expect(varied).toBeLessThan(repetitive);
  });

  it("is zero for empty text", () => {
    expect(compressionRatio("")).toBe(0);
  });
});
