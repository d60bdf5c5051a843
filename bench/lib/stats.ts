// Summary statistics over timing samples.

/** Returns the value below which `fraction` of the samples lie, by linear interpolation. */
export function percentile(samples: readonly number[], fraction: number): number {
  if (samples.length === 0) {
    throw new RangeError("percentile of an empty sample list is undefined");
  }
  if (fraction < 0 || fraction > 1) {
    throw new RangeError(`percentile fraction must be within [0, 1], got ${fraction}`);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const position = (sorted.length - 1) * fraction;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  const lowerValue = sorted[lower] as number;
  const upperValue = sorted[upper] as number;
  return lowerValue + (upperValue - lowerValue) * (position - lower);
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 0.5);
}

/** Rounds to `digits` decimal places, for tables and JSON that people read. */
export function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
