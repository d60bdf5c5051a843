// Collecting ffmpeg's output into one sample array, and repairing samples whisper.cpp cannot take.
import { Writable } from "node:stream";

/** Bytes of one f32 sample. */
export const BYTES_PER_SAMPLE = 4;

/**
 * Replaces NaN with 0 and clamps every sample to [-1, 1], in place. A float WAV can carry NaN
 * and ±Infinity, which abort whisper.cpp. Audio decoded from integer PCM is already in range.
 */
export function repairSamples(samples: Float32Array): { nonFinite: number; clamped: number } {
  let nonFinite = 0;
  let clamped = 0;
  for (let index = 0; index < samples.length; index++) {
    const sample = samples[index] ?? 0;
    // NaN fails both comparisons, so it takes the slow path with the out-of-range values.
    if (sample >= -1 && sample <= 1) continue;
    if (Number.isNaN(sample)) {
      samples[index] = 0;
    } else {
      samples[index] = sample > 0 ? 1 : -1;
    }
    if (Number.isFinite(sample)) clamped++;
    else nonFinite++;
  }
  return { nonFinite, clamped };
}

/**
 * Keeps ffmpeg's output chunks up to `maxBytes` and copies them once into one Float32Array.
 * Past the limit it drops further output and calls `onLimit` once.
 */
export class SampleCollector extends Writable {
  readonly finished: Promise<void>;
  private readonly chunks: Buffer[] = [];
  private byteLength = 0;
  private limitReached = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onLimit: () => void,
  ) {
    // No 'close' event: fluent-ffmpeg reads one as "output closed early" and kills ffmpeg.
    super({ emitClose: false, autoDestroy: false });
    this.finished = new Promise((resolve) => this.once("finish", () => resolve()));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    if (!this.limitReached && this.byteLength + chunk.length > this.maxBytes) {
      this.limitReached = true;
      this.onLimit();
    }
    if (!this.limitReached) {
      this.chunks.push(chunk);
      this.byteLength += chunk.length;
    }
    callback();
  }

  /** Returns the samples received; a partial trailing sample is dropped. */
  toSamples(): Float32Array {
    const samples = new Float32Array(Math.floor(this.byteLength / BYTES_PER_SAMPLE));
    const bytes = new Uint8Array(samples.buffer);
    let offset = 0;
    for (const chunk of this.chunks) {
      const length = Math.min(chunk.length, bytes.length - offset);
      bytes.set(chunk.subarray(0, length), offset);
      offset += length;
    }
    this.chunks.length = 0;
    return samples;
  }
}
