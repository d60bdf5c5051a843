import { execFile } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type { FastifyBaseLogger } from "fastify";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { ModelPool, type PoolSettings } from "../../src/engine/model-pool.js";
import { ApiError } from "../../src/errors.js";
import { capturedLogger, MICRO_MODEL, temporaryModelDir } from "./model-fixtures.js";
import { TEST_POOL_SETTINGS } from "../helpers/pool-settings.js";

const REPOSITORY_ROOT = path.resolve(import.meta.dirname, "../..");
const POOL_SOURCE = path.join(REPOSITORY_ROOT, "src/engine/model-pool.ts");

let pools: ModelPool[];
let logLines: Record<string, unknown>[];

beforeEach(() => {
  pools = [];
});

afterEach(async () => {
  await Promise.all(pools.map((pool) => pool.close()));
});

function createPool(settings: Partial<PoolSettings> = {}): ModelPool {
  const { log, lines } = capturedLogger();
  logLines = lines;
  const pool = new ModelPool(
    { ...TEST_POOL_SETTINGS, ...settings },
    log as unknown as FastifyBaseLogger,
  );
  pools.push(pool);
  return pool;
}

/** Loads the micro model under `id` for one job and releases it at once. */
async function useOnce(pool: ModelPool, id: string): Promise<void> {
  const lease = pool.lease(id, MICRO_MODEL);
  try {
    await lease.load();
  } finally {
    lease.release();
  }
}

function unloadReasons(): unknown[] {
  return logLines.filter((line) => line.msg === "model unloaded").map((line) => line.reason);
}

describe("ModelPool idle unload", () => {
  it("counts the idle time from the end of the last job", async () => {
    const pool = createPool({ modelIdleSeconds: 0.3 });
    const lease = pool.lease("micro", MICRO_MODEL);
    await lease.load();

    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(pool.isLoaded("micro")).toBe(true);

    lease.release();
    expect(pool.isLoaded("micro")).toBe(true);
    await vi.waitUntil(() => !pool.isLoaded("micro"), { timeout: 3_000 });
    await vi.waitUntil(() => unloadReasons().length > 0);
    expect(unloadReasons()).toEqual(["idle"]);
  });

  it("keeps a model that a new job leases", async () => {
    const pool = createPool({ modelIdleSeconds: 0.3 });
    await useOnce(pool, "micro");

    await new Promise((resolve) => setTimeout(resolve, 150));
    const lease = pool.lease("micro", MICRO_MODEL);
    await new Promise((resolve) => setTimeout(resolve, 400));

    expect(pool.isLoaded("micro")).toBe(true);
    lease.release();
  });

  it("keeps models loaded when MODEL_IDLE_SECONDS is 0", async () => {
    const pool = createPool({ modelIdleSeconds: 0 });
    await useOnce(pool, "micro");

    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(pool.isLoaded("micro")).toBe(true);
  });

  it("lets the process exit while a model waits to unload", async () => {
    const script = [
      `import { ModelPool } from ${JSON.stringify(POOL_SOURCE)};`,
      "const log = { info() {}, warn() {}, error() {} };",
      "const pool = new ModelPool({ threadsPerJob: 1, beamSize: 1, temperatureFallback: false,",
      "  maxSegmentTokens: 8, gpu: false, modelIdleSeconds: 600, maxLoadedModels: 2 }, log);",
      `const lease = pool.lease("micro", ${JSON.stringify(MICRO_MODEL)});`,
      "await lease.load();",
      "lease.release();",
      'console.log("released", pool.isLoaded("micro"));',
    ].join("\n");
    const folder = await temporaryModelDir();
    const scriptPath = path.join(folder, "idle-model.mts");
    await writeFile(scriptPath, script);
    const startedMs = performance.now();

    try {
      const { stdout } = await promisify(execFile)("node", ["--import", "tsx", scriptPath], {
        cwd: REPOSITORY_ROOT,
        timeout: 15_000,
      });

      expect(stdout).toContain("released true");
      expect(performance.now() - startedMs).toBeLessThan(15_000);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe("ModelPool MAX_LOADED_MODELS", () => {
  it("unloads the least recently used idle model", async () => {
    const pool = createPool({ maxLoadedModels: 2 });
    await useOnce(pool, "first");
    await useOnce(pool, "second");
    await useOnce(pool, "first");

    await useOnce(pool, "third");

    expect(pool.isLoaded("second")).toBe(false);
    expect(pool.isLoaded("first")).toBe(true);
    expect(pool.isLoaded("third")).toBe(true);
    expect(unloadReasons()).toEqual(["least recently used"]);
  });

  it("never unloads a model in use", async () => {
    const pool = createPool({ maxLoadedModels: 1 });
    const first = pool.lease("first", MICRO_MODEL);
    await first.load();
    const second = pool.lease("second", MICRO_MODEL);

    await second.load();

    expect(pool.isLoaded("first")).toBe(true);
    expect(pool.isLoaded("second")).toBe(true);
    expect(logLines.some((line) => String(line.msg).includes("MAX_LOADED_MODELS"))).toBe(true);

    first.release();
    expect(pool.isLoaded("first")).toBe(false);
    expect(pool.isLoaded("second")).toBe(true);
    second.release();
  });

  it("counts a job as a user before its model loads", async () => {
    const pool = createPool({ maxLoadedModels: 1 });
    await useOnce(pool, "first");
    const waiting = pool.lease("first", MICRO_MODEL);

    await useOnce(pool, "second");

    expect(pool.usersOf("first")).toBe(1);
    expect(pool.isLoaded("first")).toBe(true);
    waiting.release();
    expect(pool.usersOf("first")).toBe(0);
  });
});

describe("ModelPool.unload", () => {
  it("refuses a model in use", async () => {
    const pool = createPool();
    const lease = pool.lease("micro", MICRO_MODEL);
    await lease.load();

    expect(await pool.unload("micro")).toBe(false);
    expect(pool.isLoaded("micro")).toBe(true);

    lease.release();
    expect(await pool.unload("micro")).toBe(true);
    expect(pool.isLoaded("micro")).toBe(false);
    expect(unloadReasons()).toEqual(["removed"]);
  });

  it("rejects an invalid file before the addon sees it", async () => {
    const folder = await temporaryModelDir();
    const filePath = path.join(folder, "ggml-broken.bin");
    await writeFile(filePath, "not a model");
    const pool = createPool();
    const lease = pool.lease("broken", filePath);

    try {
      const error = await lease.load().catch((thrown: unknown) => thrown);

      expect(error).toBeInstanceOf(ApiError);
      expect((error as ApiError).status).toBe(503);
      expect(pool.isLoaded("broken")).toBe(false);
    } finally {
      lease.release();
      await rm(folder, { recursive: true, force: true });
    }
  });

  it("reports a file deleted before loading as not found", async () => {
    const folder = await temporaryModelDir();
    const pool = createPool();
    const lease = pool.lease("gone", path.join(folder, "ggml-gone.bin"));

    try {
      const error = await lease.load().catch((thrown: unknown) => thrown);

      expect(error).toBeInstanceOf(ApiError);
      expect((error as ApiError).status).toBe(404);
      expect((error as ApiError).code).toBe("model_not_found");
    } finally {
      lease.release();
      await rm(folder, { recursive: true, force: true });
    }
  });
});
