import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { buildTestApp, multipartBody, SPEECH_FIXTURE, type TestApp } from "./helpers/app.js";

const KEY = "sk-log-secret-5b9d1e7f3a";
const WRONG_KEY = "sk-wrong-guess-8c2e4a6b0d";
const QUERY_KEY = "sk-in-the-query-3e9b7c1f5a";

describe("logs", () => {
  let server: TestApp;

  beforeAll(async () => {
    server = await buildTestApp({ API_KEY: KEY, LOG_LEVEL: "trace" });
  });
  afterAll(() => server.app.close());

  it("never contain an API key, right or wrong", async () => {
    const audio = await readFile(SPEECH_FIXTURE);
    const { payload, headers } = await multipartBody({ model: "whisper-1" }, { content: audio });
    const requests = [
      { method: "GET" as const, url: "/v1/models", key: KEY },
      { method: "GET" as const, url: "/v1/models", key: WRONG_KEY },
      { method: "GET" as const, url: "/v1/models/no-such-model", key: KEY },
      { method: "POST" as const, url: "/v1/audio/transcriptions", key: KEY, payload, headers },
      { method: "POST" as const, url: "/v1/audio/transcriptions", key: WRONG_KEY, payload, headers },
    ];

    for (const request of requests) {
      await server.app.inject({
        method: request.method,
        url: request.url,
        payload: request.payload,
        headers: { ...request.headers, authorization: `Bearer ${request.key}` },
      });
    }

    expect(server.logs.lines.length).toBeGreaterThan(requests.length);
    expect(server.logs.text).not.toContain(WRONG_KEY);
    expect(server.logs.text).not.toContain(KEY);
  });

  it("never contain a key sent in the query string", async () => {
    const { payload, headers } = await multipartBody(
      { model: "whisper-1" },
      { content: Buffer.alloc(10) },
    );
    const requests = [
      { method: "GET" as const, url: `/v1/models?api_key=${QUERY_KEY}` },
      { method: "GET" as const, url: `/v1/no-such-route?api_key=${QUERY_KEY}` },
      { method: "GET" as const, url: `/v1/models/%zz?api_key=${QUERY_KEY}` },
      {
        method: "POST" as const,
        url: `/v1/audio/transcriptions?api_key=${QUERY_KEY}`,
        payload,
        headers,
      },
    ];
    const linesBefore = server.logs.lines.length;

    for (const request of requests) {
      await server.app.inject({
        method: request.method,
        url: request.url,
        payload: request.payload,
        headers: { ...request.headers, authorization: `Bearer ${KEY}` },
      });
    }

    const lines = server.logs.lines.slice(linesBefore);
    const incoming = lines.filter((line) => line.includes('"incoming request"'));
    expect(incoming).toHaveLength(requests.length);
    expect(JSON.parse(incoming[0]!).req.url).toBe("/v1/models");
    expect(lines.join("\n")).not.toContain(QUERY_KEY);
  });

  it("redact an authorization header that reaches a log object", () => {
    server.app.log.info({ headers: { authorization: `Bearer ${KEY}` } }, "probe");

    const line = server.logs.lines.find((entry) => entry.includes('"probe"'));
    expect(line).toBeDefined();
    expect(line).not.toContain(KEY);
    expect(line).toContain("[redacted]");
  });
});
