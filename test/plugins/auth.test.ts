import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InjectOptions } from "fastify";
import { buildTestApp, multipartBody, type TestApp } from "../helpers/app.js";

const KEY = "sk-test-0123456789abcdef";
const SECOND_KEY = "sk-second-key-fedcba9876543210";

/** Every route the server has, plus paths it does not have: all must need the key. */
const protectedRequests: InjectOptions[] = [
  { method: "GET", url: "/v1/models" },
  { method: "GET", url: "/v1/models/micro" },
  { method: "GET", url: "/v1/models/whisper-1" },
  { method: "POST", url: "/v1/audio/transcriptions" },
  { method: "POST", url: "/v1/audio/translations" },
  { method: "DELETE", url: "/v1/models/micro" },
  { method: "POST", url: "/v1/models/micro" },
  { method: "GET", url: "/v1/nothing-here" },
  { method: "GET", url: "/health/" },
  { method: "POST", url: "/health" },
  { method: "GET", url: "/" },
];

describe("API key authentication", () => {
  let server: TestApp;

  beforeAll(async () => {
    server = await buildTestApp({ API_KEY: `${KEY}, ${SECOND_KEY}` });
  });
  afterAll(() => server.app.close());

  it.each(protectedRequests)("rejects $method $url without a key", async (request) => {
    const response = await server.app.inject(request);

    expect(response.statusCode).toBe(401);
    expect(response.json()).toEqual({
      error: {
        message: expect.stringContaining("API key"),
        type: "invalid_request_error",
        param: null,
        code: null,
      },
    });
    expect(response.headers["www-authenticate"]).toMatch(/^Bearer/);
  });

  it.each(protectedRequests)("rejects $method $url with a wrong key", async (request) => {
    const wrongKey = `${KEY}x`;
    const response = await server.app.inject({
      ...request,
      headers: { authorization: `Bearer ${wrongKey}` },
    });

    expect(response.statusCode).toBe(401);
    expect(response.json().error.code).toBe("invalid_api_key");
    expect(response.json().error.type).toBe("invalid_request_error");
    expect(response.body).not.toContain(wrongKey);
    expect(response.body).not.toContain(KEY.slice(3, 12));
    expect(response.headers["www-authenticate"]).toMatch(/^Bearer/);
  });

  it.each([
    ["another scheme", `Basic ${KEY}`],
    ["an empty bearer value", "Bearer "],
    ["the key without a scheme", KEY],
    ["a prefix of the key", `Bearer ${KEY.slice(0, -1)}`],
    ["both keys joined", `Bearer ${KEY},${SECOND_KEY}`],
  ])("rejects %s", async (_case, authorization) => {
    const response = await server.app.inject({
      method: "GET",
      url: "/v1/models",
      headers: { authorization },
    });

    expect(response.statusCode).toBe(401);
  });

  it("accepts each configured key", async () => {
    for (const key of [KEY, SECOND_KEY]) {
      const response = await server.app.inject({
        method: "GET",
        url: "/v1/models",
        headers: { authorization: `Bearer ${key}` },
      });
      expect(response.statusCode).toBe(200);
    }
  });

  it("accepts the scheme name in any case", async () => {
    const response = await server.app.inject({
      method: "GET",
      url: "/v1/models",
      headers: { authorization: `bearer ${KEY}` },
    });

    expect(response.statusCode).toBe(200);
  });

  it("serves GET /health without a key", async () => {
    const response = await server.app.inject({ method: "GET", url: "/health" });

    expect(response.statusCode).toBe(200);
    expect(response.json().auth).toBe(true);
  });

  it("checks the key before reading the upload", async () => {
    const { payload, headers } = await multipartBody(
      { model: "whisper-1" },
      { content: Buffer.from("not audio at all") },
    );
    const response = await server.app.inject({
      method: "POST",
      url: "/v1/audio/transcriptions",
      headers: { ...headers, authorization: "Bearer wrong" },
      payload,
    });

    expect(response.statusCode).toBe(401);
    // A body that was parsed would have failed as bad audio or logged the upload.
    expect(server.logs.text).not.toContain("invalid_audio");
  });
});

describe("without API_KEY", () => {
  let server: TestApp;

  beforeAll(async () => {
    server = await buildTestApp({ API_KEY: undefined });
  });
  afterAll(() => server.app.close());

  it("accepts any bearer value, as the openai SDK always sends one", async () => {
    for (const authorization of [undefined, "Bearer anything", "Bearer sk-placeholder"]) {
      const response = await server.app.inject({
        method: "GET",
        url: "/v1/models",
        headers: authorization ? { authorization } : {},
      });
      expect(response.statusCode).toBe(200);
    }
  });

  it("reports authentication off in /health", async () => {
    const response = await server.app.inject({ method: "GET", url: "/health" });

    expect(response.json().auth).toBe(false);
  });
});
