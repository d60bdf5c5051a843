// stream=true over a real socket, where the connection's lifetime can be observed.
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, multipartBody, SPEECH_FIXTURE, type TestApp } from "../helpers/app.js";
import { RawConnection } from "../helpers/raw-http.js";

describe("POST /v1/audio/transcriptions with stream=true", () => {
  let server: TestApp;
  let address: string;

  beforeAll(async () => {
    server = await buildTestApp({ API_KEY: undefined });
    address = await server.app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(() => server.app.close());

  async function streamOn(connection: RawConnection, connectionHeader: string) {
    const { payload, headers } = await multipartBody(
      { model: "whisper-1", stream: "true" },
      { content: await readFile(SPEECH_FIXTURE) },
    );
    await connection.write(
      "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
        `Connection: ${connectionHeader}\r\nContent-Type: ${headers["content-type"]}\r\n` +
        `Content-Length: ${payload.length}\r\n\r\n`,
    );
    await connection.write(payload);
    return connection.readResponse(20_000);
  }

  it("closes the connection when the request asked for Connection: close", async () => {
    const connection = await RawConnection.open(address);
    const response = await streamOn(connection, "close");

    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(response.body).toContain('"type":"transcript.text.done"');
    expect(response.headers.connection).toBe("close");
    expect(await connection.waitForClose()).toBe(true);
  });

  it("keeps a keep-alive connection open for the next request", async () => {
    const connection = await RawConnection.open(address);
    const response = await streamOn(connection, "keep-alive");
    await connection.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const next = await connection.readResponse();
    connection.destroy();

    expect(response.status).toBe(200);
    expect(response.headers.connection).toBe("keep-alive");
    expect(next.status).toBe(200);
  });
});
