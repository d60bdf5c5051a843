import { describe, expect, it } from "vitest";

import { median, percentile, round } from "../lib/stats.js";

describe("percentile", () => {
  it("interpolates between neighbours", () => {
    expect(percentile([10, 20, 30, 40], 0.5)).toBe(25);
    expect(percentile([10, 20, 30, 40], 0.95)).toBeCloseTo(38.5, 10);
  });

  it("ignores input order", () => {
    expect(percentile([40, 10, 30, 20], 0)).toBe(10);
    expect(percentile([40, 10, 30, 20], 1)).toBe(40);
  });

  it("returns the only sample", () => {
    expect(percentile([7], 0.95)).toBe(7);
  });

  it("rejects an empty list", () => {
    expect(() => percentile([], 0.5)).toThrow(RangeError);
  });

  it("rejects a fraction outside 0..1", () => {
    expect(() => percentile([1, 2], 1.5)).toThrow(/within \[0, 1\]/);
  });
});

describe("median", () => {
  it("takes the middle of an odd count", () => {
    expect(median([3, 1, 2])).toBe(2);
  });
});

describe("round", () => {
  it("keeps the requested decimals", () => {
    expect(round(1.23456, 2)).toBe(1.23);
  });
});
