// Malformed and oversized multipart bodies on the upload routes: each ends with a 4xx in
// OpenAI's shape, promptly, and leaves the connection usable.
import path from "node:path";
import { setTimeout } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FORM_STALL_TIMEOUT_MS } from "../../src/upload/body-guard.js";
import { AudioWorkspace } from "../helpers/audio.js";
import { buildTestApp, type TestApp } from "../helpers/app.js";
import { RawConnection } from "../helpers/raw-http.js";

const URL_PATH = "/v1/audio/transcriptions";
const BOUNDARY = "XX";

/** Builds one part of a multipart body, starting with its delimiter line. */
function part(headers: string[], content: string | Buffer): Buffer {
  const head = [`--${BOUNDARY}`, ...headers, "", ""].join("\r\n");
  return Buffer.concat([Buffer.from(head), Buffer.from(content), Buffer.from("\r\n")]);
}

function field(name: string, value: string): Buffer {
  return part([`Content-Disposition: form-data; name="${name}"`], value);
}

function filePart(name: string, content: Buffer): Buffer {
  return part(
    [
      `Content-Disposition: form-data; name="${name}"; filename="a.wav"`,
      "Content-Type: application/octet-stream",
    ],
    content,
  );
}

const CLOSING_DELIMITER = Buffer.from(`--${BOUNDARY}--\r\n`);

function form(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, CLOSING_DELIMITER]);
}

/** Stands in for audio: every case here fails before the file is decoded. */
const FILE_CONTENT = Buffer.alloc(8000, 1);

describe("POST /v1/audio/transcriptions with a malformed form", () => {
  let server: TestApp;

  beforeAll(async () => {
    server = await buildTestApp({ API_KEY: undefined });
  });
  afterAll(() => server.app.close());

  function post(payload: Buffer, contentType = `multipart/form-data; boundary=${BOUNDARY}`) {
    return server.app.inject({
      method: "POST",
      url: URL_PATH,
      payload,
      headers: { "content-type": contentType },
    });
  }

  const validForm = () => form(field("model", "whisper-1"), filePart("file", FILE_CONTENT));

  it.each([
    ["no boundary parameter", "multipart/form-data"],
    ["an empty boundary", "multipart/form-data; boundary="],
    ["an empty quoted boundary", 'multipart/form-data; boundary=""'],
    ["a boundary over 70 characters", `multipart/form-data; boundary=${"b".repeat(71)}`],
  ])("rejects %s with 400", async (_case, contentType) => {
    const response = await post(validForm(), contentType);

    expect(response.statusCode).toBe(400);
    expect(response.json().error.type).toBe("invalid_request_error");
    expect(response.json().error.param).toBe("file");
    expect(response.json().error.message).toContain("boundary");
  });

  it.each([
    ["a boundary that does not match the body", validForm(), "boundary=YY"],
    ["a body cut in the middle of the file", validForm().subarray(0, 2000), ""],
    ["a body without the closing delimiter", Buffer.concat([field("model", "whisper-1")]), ""],
    ["a body cut in a part's headers", Buffer.from(`--${BOUNDARY}\r\nContent-Dispo`), ""],
  ])("rejects %s with 400", async (_case, payload, boundaryOverride) => {
    const contentType = boundaryOverride
      ? `multipart/form-data; ${boundaryOverride}`
      : `multipart/form-data; boundary=${BOUNDARY}`;
    const response = await post(payload, contentType);

    expect(response.statusCode).toBe(400);
    expect(response.json().error.type).toBe("invalid_request_error");
    expect(response.json().error.param).toBe("file");
    expect(response.json().error.message).toContain("malformed");
  });

  it("rejects a file part without a name with 400", async () => {
    const nameless = part(['Content-Disposition: form-data; filename="a.wav"'], FILE_CONTENT);
    const response = await post(form(field("model", "whisper-1"), nameless));

    expect(response.statusCode).toBe(400);
    expect(response.json().error.param).toBe("file");
    expect(response.json().error.message).toContain("no name");
  });

  it("rejects a field without a name with 400", async () => {
    const nameless = part(["Content-Disposition: form-data"], "whisper-1");
    const response = await post(form(nameless, filePart("file", FILE_CONTENT)));

    expect(response.statusCode).toBe(400);
    expect(response.json().error.param).toBeNull();
    expect(response.json().error.message).toContain("no name");
  });

  it("rejects more than four files with 413", async () => {
    const extra = filePart("other", Buffer.alloc(100));
    const model = field("model", "whisper-1");
    const response = await post(form(model, extra, extra, extra, extra, extra));

    expect(response.statusCode).toBe(413);
    expect(response.json().error.code).toBe("upload_too_large");
  });

  it("ends at once when a 10 KB part lacks Content-Disposition", async () => {
    const startedAt = Date.now();
    const withoutDisposition = part([], Buffer.alloc(10_000, 97));
    const response = await post(form(field("model", "whisper-1"), withoutDisposition));

    expect(response.statusCode).toBe(400);
    expect(response.json().error.message).toContain("file is required");
    expect(Date.now() - startedAt).toBeLessThan(FORM_STALL_TIMEOUT_MS);
  });

  it("ends with 400 when busboy stalls on a 100 KB part", async () => {
    const startedAt = Date.now();
    const withoutDisposition = part([], Buffer.alloc(100_000, 97));
    const response = await post(form(field("model", "whisper-1"), withoutDisposition));

    expect(response.statusCode).toBe(400);
    expect(response.json().error.param).toBe("file");
    expect(response.json().error.message).toContain("did not end");
    expect(Date.now() - startedAt).toBeLessThan(FORM_STALL_TIMEOUT_MS + 3_000);
  });

  it("returns 500 when the upload cannot be written", async () => {
    const originalTmpdir = process.env.TMPDIR;
    process.env.TMPDIR = path.join(path.sep, "no-such-folder", "earshot-uploads");
    try {
      const response = await post(validForm());

      expect(response.statusCode).toBe(500);
      expect(response.json().error.code).toBe("internal_error");
    } finally {
      if (originalTmpdir === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = originalTmpdir;
    }
  });
});

describe("POST /v1/audio/transcriptions on a keep-alive connection", () => {
  let server: TestApp;
  let address: string;

  beforeAll(async () => {
    server = await buildTestApp({ API_KEY: undefined });
    address = await server.app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(() => server.app.close());

  it("serves the next request after a form rejected mid-body", async () => {
    // The nameless part is rejected at once; 1 MB of body follows it.
    const nameless = part(['Content-Disposition: form-data; filename="a.wav"'], Buffer.alloc(1e6));
    const body = form(field("model", "whisper-1"), nameless);
    const connection = await RawConnection.open(address);

    await connection.write(
      `POST ${URL_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` +
        `Content-Length: ${body.length}\r\n\r\n`,
    );
    await connection.write(body);
    const rejected = await connection.readResponse();
    await connection.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const next = await connection.readResponse();
    connection.destroy();

    expect(rejected.status).toBe(400);
    expect(next.status).toBe(200);
    expect(JSON.parse(next.body).status).toBe("ok");
  });
});

describe("POST /v1/audio/transcriptions with a chunked body over the limit", () => {
  const MAX_UPLOAD_BYTES = 20_000;
  /** Far over MAX_UPLOAD_BYTES plus the 1 MiB the app allows for the other fields. */
  const MAX_SENT_BYTES = 8 * 1024 * 1024;
  let server: TestApp;
  let address: string;
  let audio: AudioWorkspace;
  let shortTone: Buffer;

  beforeAll(async () => {
    audio = await AudioWorkspace.create();
    shortTone = await audio.tone("short.wav", 0.5);
    server = await buildTestApp({
      API_KEY: undefined,
      MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
    });
    address = await server.app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await server.app.close();
    await audio.remove();
  });

  function chunk(data: Buffer): Buffer {
    const sizeLine = Buffer.from(`${data.length.toString(16)}\r\n`);
    return Buffer.concat([sizeLine, data, Buffer.from("\r\n")]);
  }

  const extraFileHeader = 'Content-Disposition: form-data; name="extra"; filename="x"';

  it.each([
    ["a file under another field name", extraFileHeader],
    ["a part without Content-Disposition", ""],
  ])("returns 413 once %s passes the limit", async (_case, extraHeader) => {
    const connection = await RawConnection.open(address);
    await connection.write(
      `POST ${URL_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` +
        "Transfer-Encoding: chunked\r\n\r\n",
    );
    const head = Buffer.concat([
      field("model", "whisper-1"),
      filePart("file", shortTone),
      Buffer.from(`--${BOUNDARY}\r\n${extraHeader ? `${extraHeader}\r\n` : ""}\r\n`),
    ]);
    await connection.write(chunk(head));

    // The extra part grows by 64 KiB a millisecond until the server responds. A server that
    // only limits each file responds after the client stops at MAX_SENT_BYTES.
    let sentBytes = head.length;
    const filler = Buffer.alloc(64 * 1024, 97);
    while (!connection.hasResponse() && !connection.isClosed && sentBytes < MAX_SENT_BYTES) {
      await connection.write(chunk(filler));
      sentBytes += filler.length;
      await setTimeout(1);
    }
    await connection.write(chunk(Buffer.concat([Buffer.from("\r\n"), CLOSING_DELIMITER])));
    await connection.write("0\r\n\r\n");
    const response = await connection.readResponse(20_000);
    connection.destroy();

    expect(response.status).toBe(413);
    expect(JSON.parse(response.body).error.code).toBe("upload_too_large");
    expect(JSON.parse(response.body).error.message).toContain(String(MAX_UPLOAD_BYTES));
    expect(sentBytes).toBeLessThan(MAX_SENT_BYTES);
  });
});
