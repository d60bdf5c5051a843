import { existsSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";

import { AudioWorkspace } from "../helpers/audio.js";
import { buildTestApp, multipartBody, SPEECH_FIXTURE, type TestApp } from "../helpers/app.js";
import { startStandInHub, type StandInHub } from "../helpers/stand-in-hub.js";
import {
  closedPort,
  MICRO_EN_MODEL,
  MICRO_MODEL,
  startRepositoryFront,
  temporaryModelDir,
} from "../models/model-fixtures.js";

let hub: StandInHub;
let modelDir: string;
let server: TestApp | undefined;
let speech: Buffer;

beforeAll(async () => {
  speech = await readFile(SPEECH_FIXTURE);
});

beforeEach(async () => {
  hub = await startStandInHub({
    "ggml-tiny.en.bin": MICRO_EN_MODEL,
    "ggml-base.bin": MICRO_MODEL,
    "custom-q5.bin": MICRO_MODEL,
  });
  modelDir = await temporaryModelDir();
});

afterEach(async () => {
  await server?.app.close();
  server = undefined;
  await hub.close();
  await rm(modelDir, { recursive: true, force: true });
});

/** Starts the app with an empty MODEL_DIR and the stand-in hub as HF_ENDPOINT. */
async function start(overrides: Record<string, string> = {}): Promise<TestApp> {
  server = await buildTestApp({
    MODEL_DIR: modelDir,
    HF_ENDPOINT: hub.url,
    MODEL_DOWNLOAD: "known",
    DEFAULT_MODEL: "tiny.en",
    ...overrides,
  });
  return server;
}

async function transcribe(app: TestApp, model: string, audio: Buffer = speech) {
  const { payload, headers } = await multipartBody({ model }, { content: audio });
  return app.app.inject({ method: "POST", url: "/v1/audio/transcriptions", payload, headers });
}

async function listModels(app: TestApp) {
  const response = await app.app.inject({ method: "GET", url: "/v1/models" });
  expect(response.statusCode).toBe(200);
  return response.json().data as { id: string; installed: boolean; loaded: boolean }[];
}

function cdnRanges(): (string | undefined)[] {
  return hub.requests.filter((request) => request.kind === "cdn").map((request) => request.range);
}

describe("transcription of a missing model", () => {
  it("downloads tiny.en, then transcribes on the first try", async () => {
    const app = await start();

    const response = await transcribe(app, "tiny.en");

    expect(response.statusCode).toBe(200);
    expect(typeof response.json().text).toBe("string");
    const listed = (await listModels(app)).find((model) => model.id === "tiny.en");
    expect(listed?.installed).toBe(true);
    expect(listed?.loaded).toBe(true);
    expect(hub.cdnRequestCount()).toBe(1);
  });

  it("downloads DEFAULT_MODEL for whisper-1", async () => {
    const app = await start({ DEFAULT_MODEL: "tiny.en" });

    const response = await transcribe(app, "whisper-1");

    expect(response.statusCode).toBe(200);
    expect(existsSync(path.join(modelDir, "ggml-tiny.en.bin"))).toBe(true);
  });

  it("makes one download for concurrent first requests", async () => {
    hub.behaviour.chunkDelayMs = 5;
    const app = await start();

    const responses = await Promise.all(
      Array.from({ length: 4 }, () => transcribe(app, "tiny.en")),
    );

    for (const response of responses) expect(response.statusCode).toBe(200);
    expect(hub.cdnRequestCount()).toBe(1);
  });

  it("rejects a corrupted transfer and installs nothing", async () => {
    hub.behaviour.corruptBody = true;
    const app = await start();

    const response = await transcribe(app, "tiny.en");

    expect(response.statusCode).toBe(503);
    expect(response.json().error.code).toBe("model_unavailable");
    expect(response.json().error.message).toContain("SHA-256");
    expect(await readdir(modelDir)).toEqual([]);
    const listed = (await listModels(app)).find((model) => model.id === "tiny.en");
    expect(listed?.installed).toBe(false);
  });

  it("resumes an interrupted transfer", async () => {
    hub.behaviour.dropConnectionAfterBytes = 2_000_000;
    const app = await start();

    const response = await transcribe(app, "tiny.en");

    expect(response.statusCode).toBe(200);
    const ranges = cdnRanges();
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it("returns 503 naming the model, URL and manual step when the hub is down", async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const app = await start({ HF_ENDPOINT: endpoint });

    const response = await transcribe(app, "tiny.en");

    expect(response.statusCode).toBe(503);
    const { error } = response.json();
    expect(error.code).toBe("model_unavailable");
    expect(error.message).toContain("'tiny.en'");
    expect(error.message).toContain(`${endpoint}/ggerganov/whisper.cpp/resolve/main/`);
    expect(error.message).toContain("the model folder (MODEL_DIR) as ggml-tiny.en.bin");
    expect(error.message).not.toContain(modelDir);
    expect(Number(response.headers["retry-after"])).toBeGreaterThan(0);
  });

  it.each([
    ["off", "tiny.en", "MODEL_DOWNLOAD=off"],
    ["known", "micro", "not one of whisper.cpp's published models"],
    ["known", "owner/repo/custom-q5.bin", "MODEL_DOWNLOAD=any"],
  ])("returns 404 when MODEL_DOWNLOAD=%s forbids %s", async (policy, model, reason) => {
    const app = await start({ MODEL_DOWNLOAD: policy });

    const response = await transcribe(app, model);

    expect(response.statusCode).toBe(404);
    expect(response.json().error.code).toBe("model_not_found");
    expect(response.json().error.message).toContain(reason);
    expect(hub.requests).toEqual([]);
  });

  it.each([
    "../tiny.en",
    "/etc/passwd",
    "tiny.en/../../../etc/passwd",
    "..%2F..%2Ftiny.en",
    "owner/../escape.bin",
    "..\\tiny.en",
  ])("returns 404 for the escaping name %j", async (model) => {
    const app = await start({ MODEL_DOWNLOAD: "any" });

    const response = await transcribe(app, model);

    expect(response.statusCode).toBe(404);
    expect(response.json().error.code).toBe("model_not_found");
    expect(hub.requests).toEqual([]);
    expect(await readdir(modelDir)).toEqual([]);
  });
});

describe("GET /v1/models", () => {
  it("lists installed models and marks downloadable ones", async () => {
    await writeFile(path.join(modelDir, "ggml-micro.bin"), await readFile(MICRO_MODEL));
    const app = await start();

    const models = await listModels(app);

    expect(models[0]).toMatchObject({ id: "micro", installed: true, loaded: false });
    expect(models.find((model) => model.id === "large-v3-turbo-q5_0")).toMatchObject({
      installed: false,
      loaded: false,
      downloading: false,
      size_bytes: null,
    });
  });

  it("lists only installed models when downloads are off", async () => {
    await writeFile(path.join(modelDir, "ggml-micro.bin"), await readFile(MICRO_MODEL));
    const app = await start({ MODEL_DOWNLOAD: "off" });

    const models = await listModels(app);

    expect(models.map((model) => model.id)).toEqual(["micro"]);
  });
});

describe("GET /v1/models/{id}", () => {
  it("shows a downloadable model as not installed", async () => {
    const app = await start();

    const response = await app.app.inject({ method: "GET", url: "/v1/models/tiny.en" });

    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ id: "tiny.en", object: "model", installed: false });
  });

  it("returns 404 for a model neither installed nor downloadable", async () => {
    const app = await start();

    const response = await app.app.inject({ method: "GET", url: "/v1/models/large-v9" });

    expect(response.statusCode).toBe(404);
    expect(response.json().error.code).toBe("model_not_found");
  });
});

describe("POST /v1/models/{id}", () => {
  it("downloads a model, then reports it installed", async () => {
    const app = await start();

    const first = await app.app.inject({ method: "POST", url: "/v1/models/tiny.en" });
    const second = await app.app.inject({ method: "POST", url: "/v1/models/tiny.en" });

    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({ id: "tiny.en", installed: true, loaded: false });
    expect(second.statusCode).toBe(200);
    expect(hub.cdnRequestCount()).toBe(1);
  });

  it.each([
    ["slash-separated", "/v1/models/some-owner/some-repo/custom-q5.bin"],
    ["percent-encoded", "/v1/models/some-owner%2Fsome-repo%2Fcustom-q5.bin"],
  ])("takes a %s id with slashes", async (_form, url) => {
    const front = await startRepositoryFront(hub.url);
    try {
      const app = await start({ MODEL_DOWNLOAD: "any", HF_ENDPOINT: front.url });

      const response = await app.app.inject({ method: "POST", url });
      const shown = await app.app.inject({
        method: "GET",
        url: "/v1/models/some-owner/some-repo/custom-q5.bin",
      });

      expect(response.statusCode).toBe(201);
      expect(response.json().id).toBe("some-owner/some-repo/custom-q5.bin");
      expect(shown.json()).toMatchObject({ installed: true });
      expect(existsSync(path.join(modelDir, "hf--some-owner--some-repo--custom-q5.bin"))).toBe(
        true,
      );
    } finally {
      await front.close();
    }
  });

  it("returns 404 when the policy forbids the download", async () => {
    const app = await start({ MODEL_DOWNLOAD: "off" });

    const response = await app.app.inject({ method: "POST", url: "/v1/models/tiny.en" });

    expect(response.statusCode).toBe(404);
    expect(hub.requests).toEqual([]);
  });

  it.each(["/v1/models/..%2F..%2Fetc%2Fpasswd", "/v1/models/owner/%2E%2E/escape.bin"])(
    "returns 404 for the escaping path %s",
    async (url) => {
      const app = await start({ MODEL_DOWNLOAD: "any" });

      const response = await app.app.inject({ method: "POST", url });

      expect(response.statusCode).toBe(404);
      expect(hub.requests).toEqual([]);
    },
  );
});

describe("DELETE /v1/models/{id}", () => {
  let audio: AudioWorkspace;
  let longTone: Buffer;

  beforeAll(async () => {
    audio = await AudioWorkspace.create();
    longTone = await audio.tone("long.wav", 120);
  });

  afterAll(() => audio.remove());

  it("deletes an installed model", async () => {
    const app = await start();
    await app.app.inject({ method: "POST", url: "/v1/models/tiny.en" });

    const response = await app.app.inject({ method: "DELETE", url: "/v1/models/tiny.en" });

    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ id: "tiny.en", object: "model", deleted: true });
    expect(await readdir(modelDir)).toEqual([]);
  });

  it("unloads a loaded model before deleting it", async () => {
    const app = await start();
    expect((await transcribe(app, "tiny.en")).statusCode).toBe(200);

    const response = await app.app.inject({ method: "DELETE", url: "/v1/models/tiny.en" });

    expect(response.statusCode).toBe(200);
    const listed = (await listModels(app)).find((model) => model.id === "tiny.en");
    expect(listed).toMatchObject({ installed: false, loaded: false });
  });

  it("returns 409 while a job uses the model", async () => {
    const app = await start();
    await app.app.inject({ method: "POST", url: "/v1/models/tiny.en" });

    const job = transcribe(app, "tiny.en", longTone);
    await vi.waitUntil(() => app.logs.text.includes('"msg":"model loaded"'), { timeout: 20_000 });
    const during = await app.app.inject({ method: "DELETE", url: "/v1/models/tiny.en" });
    const finished = await job;
    const after = await app.app.inject({ method: "DELETE", url: "/v1/models/tiny.en" });

    expect(during.statusCode).toBe(409);
    expect(during.json().error.code).toBe("model_in_use");
    expect(finished.statusCode).toBe(200);
    expect(after.statusCode).toBe(200);
  });

  it("returns 404 for a model that is not installed", async () => {
    const app = await start();

    const response = await app.app.inject({ method: "DELETE", url: "/v1/models/tiny.en" });

    expect(response.statusCode).toBe(404);
    expect(response.json().error.message).toContain("not installed");
  });

  it("rejects whisper-1 so no alias deletes a file", async () => {
    const app = await start();
    await app.app.inject({ method: "POST", url: "/v1/models/tiny.en" });

    const response = await app.app.inject({ method: "DELETE", url: "/v1/models/whisper-1" });

    expect(response.statusCode).toBe(400);
    expect(response.json().error.message).toContain("'tiny.en'");
    expect(existsSync(path.join(modelDir, "ggml-tiny.en.bin"))).toBe(true);
  });
});
