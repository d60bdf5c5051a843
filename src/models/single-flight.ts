// Shares one run of an async task, such as a model download, among concurrent callers.

/**
 * Shares one run of an async task among concurrent callers with the same key, such as a
 * download's destination path. The key is free again once the run settles, so after a failure
 * the next caller starts a new run.
 */
export class SingleFlight<T> {
  private readonly running = new Map<string, Promise<T>>();

  /**
   * Starts `task` unless a run for `key` is in flight, and returns that run's result.
   * An abort of `signal` rejects only this caller's promise, and the run goes on for the
   * others. To stop the run itself, abort the signal that `task` uses.
   */
  run(key: string, task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);

    let shared = this.running.get(key);
    if (!shared) {
      const started = Promise.resolve().then(task);
      shared = started.finally(() => {
        if (this.running.get(key) === shared) this.running.delete(key);
      });
      this.running.set(key, shared);
    }
    return signal ? rejectOnAbort(shared, signal) : shared;
  }

  /** Returns whether a run for `key` is in flight. */
  isRunning(key: string): boolean {
    return this.running.has(key);
  }
}

function rejectOnAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
