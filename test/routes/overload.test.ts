// Requests beyond the job slots and the queue get 429 without costing a decode.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AudioWorkspace } from "../helpers/audio.js";
import { buildTestApp, multipartBody, type TestApp } from "../helpers/app.js";

describe("POST /v1/audio/transcriptions under overload", () => {
  let server: TestApp;
  let audio: AudioWorkspace;

  beforeAll(async () => {
    audio = await AudioWorkspace.create();
    server = await buildTestApp({
      MAX_CONCURRENT_JOBS: "1",
      MAX_QUEUED_JOBS: "0",
      LOG_LEVEL: "debug",
    });
  });
  afterAll(async () => {
    await server.app.close();
    await audio.remove();
  });

  it("answers 429 with Retry-After and decodes only admitted uploads", async () => {
    const clip = await audio.tone("clip.wav", 30);
    const { payload, headers } = await multipartBody({ model: "whisper-1" }, { content: clip });
    const send = () =>
      server.app.inject({ method: "POST", url: "/v1/audio/transcriptions", payload, headers });

    const responses = await Promise.all([send(), send(), send()]);

    const statuses = responses.map((response) => response.statusCode).sort();
    expect(statuses).toEqual([200, 429, 429]);
    for (const response of responses.filter((r) => r.statusCode === 429)) {
      expect(response.headers["retry-after"]).toBe("5");
      expect(response.json().error.code).toBe("queue_full");
    }
    const decodes = server.logs.lines.filter((line) => line.includes('"msg":"audio decoded"'));
    expect(decodes).toHaveLength(1);
  });
});
