import type { BaseLogger } from "pino";

/** A download's progress, as passed to `onProgress`. */
export interface DownloadProgress {
  /** Bytes on disk so far, including bytes kept from an earlier, interrupted attempt. */
  bytesDone: number;
  /** Expected file size in bytes, or undefined when the server sent no size. */
  bytesTotal: number | undefined;
  /** Transfer rate over the last few seconds, in bytes per second. */
  bytesPerSecond: number;
  /** Estimated seconds until the download ends at the recent rate, or undefined if unknown. */
  secondsLeft: number | undefined;
}

interface RateSample {
  timeMs: number;
  bytes: number;
}

/** Minimum spacing of kept samples, so a fast transfer keeps a short sample list. */
const SAMPLE_SPACING_MS = 250;

/**
 * Turns byte counts into DownloadProgress, measuring the rate over a sliding window so that
 * the estimate follows changes in speed instead of averaging over the whole download.
 */
export class ProgressTracker {
  private readonly samples: RateSample[];

  constructor(
    private readonly bytesTotal: number | undefined,
    bytesDone: number,
    private readonly windowMs = 5_000,
  ) {
    this.samples = [{ timeMs: performance.now(), bytes: bytesDone }];
  }

  /** Records the current byte count and returns the progress it gives. */
  update(bytesDone: number): DownloadProgress {
    const timeMs = performance.now();
    this.keepSample({ timeMs, bytes: bytesDone });

    const oldest = this.samples[0] ?? { timeMs, bytes: bytesDone };
    const elapsedSeconds = (timeMs - oldest.timeMs) / 1000;
    const bytesPerSecond = elapsedSeconds > 0 ? (bytesDone - oldest.bytes) / elapsedSeconds : 0;
    const secondsLeft =
      this.bytesTotal !== undefined && bytesPerSecond > 0
        ? Math.max(0, this.bytesTotal - bytesDone) / bytesPerSecond
        : undefined;
    return { bytesDone, bytesTotal: this.bytesTotal, bytesPerSecond, secondsLeft };
  }

  private keepSample(sample: RateSample): void {
    const last = this.samples[this.samples.length - 1];
    if (last && sample.timeMs - last.timeMs < SAMPLE_SPACING_MS) return;

    this.samples.push(sample);
    // Keep one sample older than the window as the baseline of the rate.
    while (this.samples.length > 2 && sample.timeMs - this.samples[1]!.timeMs >= this.windowMs) {
      this.samples.shift();
    }
  }
}

export interface ProgressLoggerOptions {
  /** The file being downloaded, such as `ggml-base.en.bin`; it appears in every line. */
  fileName: string;
  /** Minimum time between two log lines, in seconds. The final line is always logged. */
  intervalSeconds?: number;
}

/**
 * Returns an `onProgress` callback that logs percent, speed and time left at info level, at
 * most once every `intervalSeconds`, and always when `bytesDone` reaches `bytesTotal`.
 */
export function createProgressLogger(
  logger: Pick<BaseLogger, "info">,
  { fileName, intervalSeconds = 5 }: ProgressLoggerOptions,
): (progress: DownloadProgress) => void {
  let lastLogMs: number | undefined;

  return (progress) => {
    const nowMs = performance.now();
    const { bytesDone, bytesTotal } = progress;
    const finished = bytesTotal !== undefined && bytesDone >= bytesTotal;
    const due = lastLogMs === undefined || nowMs - lastLogMs >= intervalSeconds * 1000;
    if (!due && !finished) return;

    lastLogMs = nowMs;
    logger.info(progressFields(fileName, progress), describeProgress(fileName, progress));
  };
}

function progressFields(fileName: string, progress: DownloadProgress): Record<string, unknown> {
  const percent =
    progress.bytesTotal !== undefined && progress.bytesTotal > 0
      ? roundTo((progress.bytesDone / progress.bytesTotal) * 100, 1)
      : undefined;
  return {
    file: fileName,
    bytesDone: progress.bytesDone,
    bytesTotal: progress.bytesTotal,
    percent,
    bytesPerSecond: Math.round(progress.bytesPerSecond),
    secondsLeft: progress.secondsLeft === undefined ? undefined : Math.ceil(progress.secondsLeft),
  };
}

/** Formats a line such as `downloading ggml-base.bin: 42.0% of 147.9 MB at 11.2 MB/s`. */
function describeProgress(fileName: string, progress: DownloadProgress): string {
  const { bytesDone, bytesTotal, bytesPerSecond, secondsLeft } = progress;
  const amount =
    bytesTotal !== undefined && bytesTotal > 0
      ? `${((bytesDone / bytesTotal) * 100).toFixed(1)}% of ${formatMegabytes(bytesTotal)}`
      : formatMegabytes(bytesDone);
  const timeLeft = secondsLeft === undefined ? "" : `, ${Math.ceil(secondsLeft)} s left`;
  return `downloading ${fileName}: ${amount} at ${formatMegabytes(bytesPerSecond)}/s${timeLeft}`;
}

/** Formats bytes in decimal megabytes (10^6 bytes), the unit download tools usually show. */
function formatMegabytes(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

function roundTo(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
