import { rm } from "node:fs/promises";
import type { FastifyBaseLogger } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { ModelPool } from "../../src/engine/model-pool.js";
import { preloadModels } from "../../src/models/preload.js";
import { ModelStore } from "../../src/models/store.js";
import { startStandInHub, type StandInHub } from "../helpers/stand-in-hub.js";
import { capturedLogger, MICRO_EN_MODEL, temporaryModelDir } from "./model-fixtures.js";
import { TEST_POOL_SETTINGS } from "../helpers/pool-settings.js";

let hub: StandInHub;
let modelDir: string;
let pool: ModelPool;

beforeEach(async () => {
  hub = await startStandInHub({ "ggml-tiny.en.bin": MICRO_EN_MODEL });
  modelDir = await temporaryModelDir();
});

afterEach(async () => {
  await pool.close();
  await hub.close();
  await rm(modelDir, { recursive: true, force: true });
});

describe("preloadModels", () => {
  it("downloads and loads each model, skipping failures", async () => {
    const { log, lines } = capturedLogger();
    const store = new ModelStore(modelDir, "tiny.en", {
      downloadPolicy: "known",
      hubEndpoint: hub.url,
    });
    pool = new ModelPool(
      TEST_POOL_SETTINGS,
      log as unknown as FastifyBaseLogger,
    );

    const loaded = await preloadModels(["large-v9", "../escape", "whisper-1"], store, pool, log);

    expect(loaded).toEqual(["tiny.en"]);
    expect(pool.isLoaded("tiny.en")).toBe(true);
    expect(pool.usersOf("tiny.en")).toBe(0);
    const failures = lines.filter((line) => String(line.msg).startsWith("failed to preload"));
    expect(failures.map((line) => line.model)).toEqual(["large-v9", "../escape"]);
  });
});
