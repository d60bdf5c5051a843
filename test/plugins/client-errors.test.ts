// Errors raised before a request reaches a route: Node's HTTP parser and timeouts, and URLs the
// router cannot decode. Real sockets, since `inject` bypasses Node's parser.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "../helpers/app.js";
import { RawConnection, type RawResponse } from "../helpers/raw-http.js";

const KEY = "sk-client-errors-7d3f9a1c";

function expectOpenAiError(response: RawResponse, status: number, code: string | null): void {
  expect(response.status).toBe(status);
  expect(response.headers["content-type"]).toMatch(/^application\/json/);
  const body = JSON.parse(response.body);
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error).toEqual({
    message: expect.any(String),
    type: "invalid_request_error",
    param: null,
    code,
  });
}

async function sendRaw(address: string, request: string): Promise<RawConnection> {
  const connection = await RawConnection.open(address);
  await connection.write(request);
  return connection;
}

describe("requests Node cannot parse", () => {
  let server: TestApp;
  let address: string;

  beforeAll(async () => {
    server = await buildTestApp({ API_KEY: KEY });
    address = await server.app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(() => server.app.close());

  it("returns 431 for headers over 16 KB", async () => {
    const connection = await sendRaw(
      address,
      `GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${"a".repeat(20_000)}\r\n\r\n`,
    );

    const response = await connection.readResponse();
    expectOpenAiError(response, 431, "request_header_fields_too_large");
    expect(JSON.parse(response.body).error.message).toContain("16384 bytes");
    expect(response.headers.connection).toBe("close");
    expect(await connection.waitForClose()).toBe(true);
  });

  it("returns 400 for a garbage request line", async () => {
    const connection = await sendRaw(address, "HELLO THERE\r\n\r\n");

    const response = await connection.readResponse();
    expectOpenAiError(response, 400, null);
    expect(JSON.parse(response.body).error.message).toContain("not valid HTTP/1.1");
    expect(await connection.waitForClose()).toBe(true);
  });

  it("returns 400 for Content-Length with Transfer-Encoding", async () => {
    const connection = await sendRaw(
      address,
      "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n" +
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );

    const response = await connection.readResponse();
    expectOpenAiError(response, 400, null);
    expect(JSON.parse(response.body).error.message).toContain("Transfer-Encoding");
    expect(await connection.waitForClose()).toBe(true);
  });

  it("returns 400 for a bad chunk size mid-upload", async () => {
    const connection = await sendRaw(
      address,
      "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
        `Authorization: Bearer ${KEY}\r\n` +
        "Content-Type: multipart/form-data; boundary=XX\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "4\r\n--XX\r\nzz\r\n",
    );

    const response = await connection.readResponse();
    expectOpenAiError(response, 400, null);
    expect(await connection.waitForClose()).toBe(true);
  });
});

describe("a request slower than requestTimeout", () => {
  let server: TestApp;
  let address: string;

  beforeAll(async () => {
    server = await buildTestApp({ API_KEY: undefined });
    // Node checks for expired requests every connectionsCheckingInterval (30 s by default); it
    // reads these properties when the server starts listening.
    Object.assign(server.app.server, {
      requestTimeout: 500,
      headersTimeout: 500,
      connectionsCheckingInterval: 100,
    });
    address = await server.app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(() => server.app.close());

  it("returns 408 when the body stops halfway", async () => {
    const connection = await sendRaw(
      address,
      "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
        "Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 1000\r\n\r\n--XX\r\n",
    );

    const response = await connection.readResponse(5_000);
    expectOpenAiError(response, 408, "request_timeout");
    expect(await connection.waitForClose()).toBe(true);
  });

  it("returns 408 when the headers never end", async () => {
    const connection = await sendRaw(address, "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n");

    const response = await connection.readResponse(5_000);
    expectOpenAiError(response, 408, "request_timeout");
    expect(await connection.waitForClose()).toBe(true);
  });
});

describe("a URL with a malformed percent-encoding", () => {
  let open: TestApp;
  let protectedServer: TestApp;

  beforeAll(async () => {
    open = await buildTestApp({ API_KEY: undefined });
    protectedServer = await buildTestApp({ API_KEY: KEY });
  });
  afterAll(async () => {
    await open.app.close();
    await protectedServer.app.close();
  });

  it.each(["/v1/models/%zz", "/v1/%E0%A4%A/models", "/%"])("returns 400 for %s", async (url) => {
    const response = await open.app.inject({ method: "GET", url });

    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: {
        message: expect.stringContaining("is not valid"),
        type: "invalid_request_error",
        param: null,
        code: null,
      },
    });
  });

  it("returns 401 without a key", async () => {
    const response = await protectedServer.app.inject({ method: "GET", url: "/v1/models/%zz" });

    expect(response.statusCode).toBe(401);
    expect(response.json().error.type).toBe("invalid_request_error");
    expect(response.body).not.toContain("%zz");
    expect(response.headers["www-authenticate"]).toMatch(/^Bearer/);
  });

  it("returns 401 with a wrong key", async () => {
    const response = await protectedServer.app.inject({
      method: "GET",
      url: "/v1/models/%zz",
      headers: { authorization: `Bearer ${KEY}x` },
    });

    expect(response.statusCode).toBe(401);
    expect(response.json().error.code).toBe("invalid_api_key");
  });

  it("returns 400 with the right key", async () => {
    const response = await protectedServer.app.inject({
      method: "GET",
      url: "/v1/models/%zz",
      headers: { authorization: `Bearer ${KEY}` },
    });

    expect(response.statusCode).toBe(400);
    expect(response.json().error.message).toContain("/v1/models/%zz");
  });
});
