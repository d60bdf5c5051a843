// Runs at most `slots` transcriptions at once. Waiting jobs go shortest audio first, as the caller
// estimates it, so a short clip does not wait behind a long file. Each second a job waits counts
// as one second less of audio, so a long job is never passed over indefinitely.
import { ApiError } from "../errors.js";

/** Seconds a client should wait after a 429, sent as Retry-After. */
const RETRY_AFTER_SECONDS = 5;

interface QueuedJob {
  audioSeconds: number;
  enqueuedAt: number;
  start: () => void;
}

export class JobScheduler {
  private running = 0;
  private readonly queue: QueuedJob[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly slots: number,
    private readonly maxQueued: number,
  ) {}

  get runningJobs(): number {
    return this.running;
  }

  get queuedJobs(): number {
    return this.queue.length;
  }

  /** Throws 429 when no job could be queued now, before a request spends work on decoding. */
  assertCapacity(): void {
    if (this.running >= this.slots && this.queue.length >= this.maxQueued) {
      throw new ApiError(
        "queue_full",
        "The server is busy with other transcriptions. Retry after a few seconds.",
        { retryAfterSeconds: RETRY_AFTER_SECONDS },
      );
    }
  }

  /**
   * Runs `work` when a slot is free. A job still waiting when `signal` aborts is dropped and
   * the promise rejects with the signal's reason; a running job runs to its end.
   */
  async run<T>(audioSeconds: number, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    if (this.running >= this.slots) {
      this.assertCapacity();
      await this.waitForSlot(audioSeconds, signal);
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      this.running--;
      this.startNext();
    }
  }

  /** Resolves once no job is running or queued. */
  whenIdle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private waitForSlot(audioSeconds: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const job: QueuedJob = {
        audioSeconds,
        enqueuedAt: Date.now(),
        start: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const index = this.queue.indexOf(job);
        if (index >= 0) this.queue.splice(index, 1);
        this.notifyIfIdle();
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.queue.push(job);
    });
  }

  private startNext(): void {
    if (this.running < this.slots && this.queue.length > 0) {
      const now = Date.now();
      const priority = (job: QueuedJob) => job.audioSeconds - (now - job.enqueuedAt) / 1000;
      let next = 0;
      for (let i = 1; i < this.queue.length; i++) {
        if (priority(this.queue[i]!) < priority(this.queue[next]!)) next = i;
      }
      const [job] = this.queue.splice(next, 1);
      this.running++;
      job!.start();
    }
    this.notifyIfIdle();
  }

  private notifyIfIdle(): void {
    if (this.running > 0 || this.queue.length > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
