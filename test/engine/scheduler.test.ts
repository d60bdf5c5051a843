import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors.js";
import { JobScheduler } from "../../src/engine/scheduler.js";

/** Creates a job whose end the test controls. */
function controlledJob() {
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  return { work: () => finished, finish };
}

const neverAborted = new AbortController().signal;

describe("JobScheduler", () => {
  it("runs at most `slots` jobs at once", async () => {
    const scheduler = new JobScheduler(2, 10);
    const jobs = [controlledJob(), controlledJob(), controlledJob()];
    const runs = jobs.map((job) => scheduler.run(1, neverAborted, job.work));
    await Promise.resolve();

    expect(scheduler.runningJobs).toBe(2);
    expect(scheduler.queuedJobs).toBe(1);

    jobs[0]!.finish();
    await runs[0];
    expect(scheduler.runningJobs).toBe(2);
    expect(scheduler.queuedJobs).toBe(0);

    jobs[1]!.finish();
    jobs[2]!.finish();
    await Promise.all(runs);
    expect(scheduler.runningJobs).toBe(0);
  });

  it("starts the shortest waiting audio first", async () => {
    const scheduler = new JobScheduler(1, 10);
    const blocker = controlledJob();
    const order: number[] = [];
    const blocking = scheduler.run(1, neverAborted, blocker.work);
    const waiting = [600, 5, 60].map((seconds) =>
      scheduler.run(seconds, neverAborted, async () => {
        order.push(seconds);
      }),
    );

    blocker.finish();
    await Promise.all([blocking, ...waiting]);

    expect(order).toEqual([5, 60, 600]);
  });

  it("rejects with 429 and Retry-After when the queue is full", async () => {
    const scheduler = new JobScheduler(1, 1);
    const blocker = controlledJob();
    const queued = controlledJob();
    const runs = [
      scheduler.run(1, neverAborted, blocker.work),
      scheduler.run(1, neverAborted, queued.work),
    ];

    const overflow = scheduler.run(1, neverAborted, async () => "ran");
    await expect(overflow).rejects.toBeInstanceOf(ApiError);
    await expect(overflow).rejects.toMatchObject({ status: 429, retryAfterSeconds: 5 });
    expect(() => scheduler.assertCapacity()).toThrow(ApiError);

    blocker.finish();
    queued.finish();
    await Promise.all(runs);
  });

  it("drops a waiting job when its signal aborts", async () => {
    const scheduler = new JobScheduler(1, 10);
    const blocker = controlledJob();
    const controller = new AbortController();
    let ran = false;
    const blocking = scheduler.run(1, neverAborted, blocker.work);
    const waiting = scheduler.run(1, controller.signal, async () => {
      ran = true;
    });

    controller.abort(new Error("client left"));
    await expect(waiting).rejects.toThrow("client left");
    expect(scheduler.queuedJobs).toBe(0);

    blocker.finish();
    await blocking;
    expect(ran).toBe(false);
  });

  it("frees the slot when a job throws", async () => {
    const scheduler = new JobScheduler(1, 10);
    const failing = scheduler.run(1, neverAborted, async () => {
      throw new Error("engine failed");
    });

    await expect(failing).rejects.toThrow("engine failed");
    await expect(scheduler.run(1, neverAborted, async () => "next")).resolves.toBe("next");
  });

  it("resolves whenIdle once every job has ended", async () => {
    const scheduler = new JobScheduler(1, 10);
    const job = controlledJob();
    const run = scheduler.run(1, neverAborted, job.work);
    let idle = false;
    const idlePromise = scheduler.whenIdle().then(() => (idle = true));

    await Promise.resolve();
    expect(idle).toBe(false);
    job.finish();
    await run;
    await idlePromise;
    expect(idle).toBe(true);
  });
});
