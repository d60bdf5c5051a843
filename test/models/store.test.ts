import { existsSync } from "node:fs";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { ApiError } from "../../src/errors.js";
import { ModelStore, type ModelStoreOptions } from "../../src/models/store.js";
import { startStandInHub, type StandInHub } from "../helpers/stand-in-hub.js";
import {
  capturedLogger,
  closedPort,
  MICRO_EN_MODEL,
  MICRO_MODEL,
  startRepositoryFront,
  temporaryModelDir,
} from "./model-fixtures.js";

let hub: StandInHub;
let modelDir: string;

beforeEach(async () => {
  hub = await startStandInHub({
    "ggml-tiny.en.bin": MICRO_EN_MODEL,
    "ggml-base.bin": MICRO_MODEL,
    "ggml-micro.bin": MICRO_MODEL,
    "custom-q5.bin": MICRO_MODEL,
    "not-a-model.bin": Buffer.from("this is not a ggml file"),
  });
  modelDir = await temporaryModelDir();
});

afterEach(async () => {
  await hub.close();
  await rm(modelDir, { recursive: true, force: true });
});

function createStore(options: ModelStoreOptions = {}): ModelStore {
  return new ModelStore(modelDir, "base", {
    downloadPolicy: "known",
    hubEndpoint: hub.url,
    resumeDelayMs: 0,
    ...options,
  });
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error("expected the promise to reject, but it resolved");
}

describe("ModelStore.ensure", () => {
  it("downloads a missing published model once", async () => {
    const store = createStore();

    const model = await store.ensure(store.resolve("tiny.en"));
    const again = await store.ensure(store.resolve("tiny.en"));

    expect(model.id).toBe("tiny.en");
    expect(model.filePath).toBe(path.join(modelDir, "ggml-tiny.en.bin"));
    expect((await readFile(model.filePath)).equals(await readFile(MICRO_EN_MODEL))).toBe(true);
    expect(model.sizeBytes).toBe((await stat(MICRO_EN_MODEL)).size);
    expect(again.filePath).toBe(model.filePath);
    expect(hub.cdnRequestCount()).toBe(1);
  });

  it("shares one download among concurrent requests", async () => {
    hub.behaviour.chunkDelayMs = 5;
    const store = createStore();

    const models = await Promise.all(
      Array.from({ length: 6 }, () => store.ensure(store.resolve("tiny.en"))),
    );

    expect(hub.cdnRequestCount()).toBe(1);
    for (const model of models) expect(model.id).toBe("tiny.en");
  });

  it("maps OpenAI names to the default model", async () => {
    const store = createStore();

    const model = await store.ensure(store.resolve("whisper-1"));

    expect(model.id).toBe("base");
    expect(existsSync(path.join(modelDir, "ggml-base.bin"))).toBe(true);
  });

  it("logs the download and its progress", async () => {
    const { log, lines } = capturedLogger();
    const store = createStore({ log });

    await store.ensure(store.resolve("tiny.en"));

    const messages = lines.map((line) => line.msg);
    expect(messages).toContain("downloading model");
    expect(messages).toContain("model downloaded");
    const progress = lines.filter((line) => String(line.msg).startsWith("downloading ggml-"));
    expect(progress.at(-1)?.percent).toBe(100);
    expect(progress.at(-1)?.bytesPerSecond).toBeGreaterThan(0);
    expect(progress.at(-1)).toHaveProperty("secondsLeft");
  });

  it("rejects a corrupted transfer and installs nothing", async () => {
    hub.behaviour.corruptBody = true;
    const store = createStore();

    const error = await rejection(store.ensure(store.resolve("tiny.en")));

    expect(error.status).toBe(503);
    expect(error.code).toBe("model_unavailable");
    expect(error.message).toContain("'tiny.en'");
    expect(error.message).toContain("SHA-256");
    expect(error.message).not.toContain(modelDir);
    expect(await readdir(modelDir)).toEqual([]);
  });

  it("downloads afresh after a corrupted transfer", async () => {
    hub.behaviour.corruptBody = true;
    const store = createStore();
    await rejection(store.ensure(store.resolve("tiny.en")));
    hub.behaviour.corruptBody = false;

    const model = await store.ensure(store.resolve("tiny.en"));

    expect((await readFile(model.filePath)).equals(await readFile(MICRO_EN_MODEL))).toBe(true);
    expect(hub.requests.filter((request) => request.kind === "cdn").at(-1)?.range).toBeUndefined();
  });

  it("resumes an interrupted transfer with a range request", async () => {
    hub.behaviour.dropConnectionAfterBytes = 3_000_000;
    const store = createStore();

    const model = await store.ensure(store.resolve("tiny.en"));

    expect((await readFile(model.filePath)).equals(await readFile(MICRO_EN_MODEL))).toBe(true);
    const ranges = hub.requests.filter((request) => request.kind === "cdn").map((r) => r.range);
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it("fails fast with 503 when the hub is down", async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const store = createStore({ hubEndpoint: endpoint, connectTimeoutMs: 2_000 });
    const startedMs = performance.now();

    const error = await rejection(store.ensure(store.resolve("tiny.en")));

    expect(performance.now() - startedMs).toBeLessThan(2_000);
    expect(error.status).toBe(503);
    expect(error.code).toBe("model_unavailable");
    expect(error.retryAfterSeconds).toBeGreaterThan(0);
    expect(error.message).toContain("'tiny.en'");
    expect(error.message).toContain(
      `${endpoint}/ggerganov/whisper.cpp/resolve/main/ggml-tiny.en.bin`,
    );
    expect(error.message).toContain("model folder (MODEL_DIR) as ggml-tiny.en.bin");
    expect(error.message).not.toContain(modelDir);
  });

  it("times out on a hub that accepts but never responds", async () => {
    const { createServer } = await import("node:net");
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as import("node:net").AddressInfo;
    const store = createStore({ hubEndpoint: `http://127.0.0.1:${port}`, connectTimeoutMs: 300 });

    try {
      const error = await rejection(store.ensure(store.resolve("tiny.en")));

      expect(error.status).toBe(503);
      expect(error.message).toMatch(/did not respond within 300 ms/);
    } finally {
      silent.close();
    }
  });

  it("deletes a downloaded file that is not a whisper model", async () => {
    const front = await startRepositoryFront(hub.url);
    try {
      const store = createStore({ downloadPolicy: "any", hubEndpoint: front.url });

      const error = await rejection(store.ensure(store.resolve("owner/repo/not-a-model.bin")));

      expect(error.status).toBe(503);
      expect(error.retryable).toBe(false);
      expect(error.message).toMatch(/is not a whisper\.cpp ggml model/);
      expect(hub.cdnRequestCount()).toBe(1);
      expect(await readdir(modelDir)).toEqual([]);
    } finally {
      await front.close();
    }
  });

  it("stops waiting when the caller aborts, but finishes the download", async () => {
    hub.behaviour.chunkDelayMs = 20;
    const store = createStore();
    const controller = new AbortController();
    const reason = new Error("the client closed the connection");

    const waiting = store.ensure(store.resolve("tiny.en"), { signal: controller.signal });
    await vi.waitUntil(() => hub.cdnRequestCount() === 1);
    controller.abort(reason);

    await expect(waiting).rejects.toBe(reason);
    expect(store.isDownloading(store.resolve("tiny.en"))).toBe(true);
    await vi.waitUntil(() => !store.isDownloading(store.resolve("tiny.en")), { timeout: 20_000 });
    expect(existsSync(path.join(modelDir, "ggml-tiny.en.bin"))).toBe(true);
  });

  it("stops downloads on close and keeps the partial file", async () => {
    hub.behaviour.chunkDelayMs = 20;
    const store = createStore();
    const waiting = store.ensure(store.resolve("tiny.en"));
    await vi.waitUntil(() => hub.cdnRequestCount() === 1);

    store.close();
    const error = await rejection(waiting);

    expect(error.status).toBe(503);
    expect(error.code).toBe("shutting_down");
    expect(existsSync(path.join(modelDir, "ggml-tiny.en.bin"))).toBe(false);
    expect(existsSync(path.join(modelDir, "ggml-tiny.en.bin.part"))).toBe(true);
  });
});

describe("ModelStore permanent download failures", () => {
  it.each([
    ["a body shorter than X-Linked-Size", { linkedSizeBytes: 10_000_000 }, /size is \d+ but/],
    ["a corrupted body", { corruptBody: true }, /SHA-256/],
    ["a redirect without Location", { redirectLocation: null }, /has no Location/],
    ["a redirect to a file: URL", { redirectLocation: "file:///x" }, /scheme file:/],
    ["a redirect loop", { relativeRedirects: 6 }, /redirected more than 5 times/],
    ["a declared size beyond the free space", { linkedSizeBytes: 1e15 }, /1000000000000000/],
  ])("rejects %s as not retryable", async (_case, behaviour, message) => {
    Object.assign(hub.behaviour, behaviour);
    const store = createStore();

    const error = await rejection(store.ensure(store.resolve("tiny.en")));

    expect(error.status).toBe(503);
    expect(error.code).toBe("model_unavailable");
    expect(error.retryable).toBe(false);
    expect(error.retryAfterSeconds).toBeUndefined();
    expect(error.message).toMatch(message);
    expect(error.message).not.toMatch(/try again/i);
    expect(error.message).not.toContain(modelDir);
    expect(await readdir(modelDir)).toEqual([]);
  });

  it("fails once on a body shorter than X-Linked-Size", async () => {
    hub.behaviour.linkedSizeBytes = 10_000_000;
    const store = createStore();

    await rejection(store.ensure(store.resolve("tiny.en")));

    expect(hub.cdnRequestCount()).toBe(2);
  });

  it("rejects a MODEL_DIR that is a file as not retryable", async () => {
    const file = path.join(modelDir, "not-a-folder");
    await writeFile(file, "");
    const store = new ModelStore(file, "base", { downloadPolicy: "known", hubEndpoint: hub.url });

    const error = await rejection(store.ensure(store.resolve("tiny.en")));

    expect(error.status).toBe(503);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain("the model folder (MODEL_DIR) is not a folder");
    expect(error.message).not.toContain(modelDir);
  });
});

describe("ModelStore download policy", () => {
  it("allows no downloads when off", async () => {
    const store = createStore({ downloadPolicy: "off" });

    const error = await rejection(store.ensure(store.resolve("tiny.en")));

    expect(error.status).toBe(404);
    expect(error.code).toBe("model_not_found");
    expect(error.message).toContain("MODEL_DOWNLOAD=off");
    expect(error.message).toContain("ggml-tiny.en.bin");
    expect(hub.requests).toEqual([]);
  });

  it("allows only published names when known", async () => {
    const store = createStore({ downloadPolicy: "known" });

    const unpublished = await rejection(store.ensure(store.resolve("micro")));
    const hubModel = store.resolve("owner/repo/custom-q5.bin");
    const otherRepository = await rejection(store.ensure(hubModel));

    expect(unpublished.status).toBe(404);
    expect(unpublished.message).toContain("not one of whisper.cpp's published models");
    expect(otherRepository.status).toBe(404);
    expect(otherRepository.message).toContain("MODEL_DOWNLOAD=any");
    expect(hub.requests).toEqual([]);
  });

  it("downloads any hub file when any", async () => {
    const front = await startRepositoryFront(hub.url);
    try {
      const store = createStore({ downloadPolicy: "any", hubEndpoint: front.url });

      const model = await store.ensure(store.resolve("some-owner/some-repo/custom-q5.bin"));

      expect(model.id).toBe("some-owner/some-repo/custom-q5.bin");
      expect(model.filePath).toBe(path.join(modelDir, "hf--some-owner--some-repo--custom-q5.bin"));
      expect(front.paths).toEqual(["/some-owner/some-repo/resolve/main/custom-q5.bin"]);
      expect((await store.list()).map((installed) => installed.id)).toEqual([
        "some-owner/some-repo/custom-q5.bin",
      ]);
    } finally {
      await front.close();
    }
  });

  it("returns 404 for a file the hub does not have", async () => {
    const store = createStore({ downloadPolicy: "any" });

    const error = await rejection(store.ensure(store.resolve("large-v9")));

    expect(error.status).toBe(404);
    expect(error.message).toContain("ggml-large-v9.bin was not found");
    expect(await readdir(modelDir)).toEqual([]);
  });

  it("returns 404 for a repository the hub does not show", async () => {
    const front = await startRepositoryFront(hub.url);
    try {
      const store = createStore({ downloadPolicy: "any", hubEndpoint: front.url });

      const error = await rejection(store.ensure(store.resolve("private/repo/custom-q5.bin")));

      expect(error.status).toBe(404);
      expect(error.message).toContain("HTTP 401");
    } finally {
      await front.close();
    }
  });

  it("lists the downloadable published models", () => {
    expect(createStore({ downloadPolicy: "off" }).catalog()).toEqual([]);
    const ids = createStore({ downloadPolicy: "known" }).catalog().map((model) => model.id);
    expect(ids).toContain("tiny.en");
    expect(ids).toContain("large-v3-turbo-q5_0");
    expect(ids).not.toContain("micro");
  });

  it.each([
    "../base",
    "/etc/passwd",
    "base/../../../etc/passwd",
    "..%2F..%2Fbase",
    "owner/../escape.bin",
    "base\u0000",
  ])("rejects the escaping name %j with 404", (name) => {
    const store = createStore({ downloadPolicy: "any" });

    let error: unknown;
    try {
      store.resolve(name);
    } catch (thrown) {
      error = thrown;
    }

    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(404);
    expect(hub.requests).toEqual([]);
  });
});

describe("ModelStore.list and remove", () => {
  it("lists model files by id and skips others", async () => {
    const micro = await readFile(MICRO_MODEL);
    await writeFile(path.join(modelDir, "ggml-small.en.bin"), micro);
    await writeFile(path.join(modelDir, "custom.bin"), micro);
    await writeFile(path.join(modelDir, "hf--owner--repo--model.bin"), micro);
    await writeFile(path.join(modelDir, "ggml-base.bin.part"), "partial");
    await writeFile(path.join(modelDir, "notes.txt"), "not a model");

    const models = await createStore().list();

    expect(models.map((model) => model.id)).toEqual([
      "custom.bin",
      "owner/repo/model.bin",
      "small.en",
    ]);
    expect(models[0]?.sizeBytes).toBe(micro.length);
  });

  it("deletes an installed model", async () => {
    const store = createStore();
    const model = store.resolve("tiny.en");
    await store.ensure(model);
    const beforeDelete = vi.fn(async () => undefined);

    await store.remove(model, beforeDelete);

    expect(beforeDelete).toHaveBeenCalledOnce();
    expect(existsSync(store.filePathOf(model))).toBe(false);
    expect(await store.find(model)).toBeUndefined();
  });

  it("returns 404 when removing a missing model", async () => {
    const store = createStore();

    const error = await rejection(store.remove(store.resolve("tiny.en")));

    expect(error.status).toBe(404);
    expect(error.message).toContain("not installed");
  });

  it("rejects downloads while a model is being deleted", async () => {
    const store = createStore();
    const model = store.resolve("tiny.en");
    await store.ensure(model);
    let duringDelete: Promise<unknown> | undefined;

    await store.remove(model, async () => {
      duringDelete = store.ensure(model).catch((error: unknown) => error);
      await duringDelete;
    });

    const error = (await duringDelete) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(409);
    expect(error.code).toBe("model_in_use");
    expect(hub.cdnRequestCount()).toBe(1);
  });
});
