// The official openai client against a real port, as users run it.
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, SPEECH_FIXTURE, type TestApp } from "./helpers/app.js";

const KEY = "sk-sdk-test-2f8a6c4e";

let server: TestApp;
let client: OpenAI;

beforeAll(async () => {
  server = await buildTestApp({ API_KEY: KEY });
  const address = await server.app.listen({ host: "127.0.0.1", port: 0 });
  client = new OpenAI({ apiKey: KEY, baseURL: `${address}/v1`, maxRetries: 0 });
});

afterAll(() => server.app.close());

describe("openai SDK: audio.transcriptions.create", () => {
  it("returns json from a file stream", async () => {
    const result = await client.audio.transcriptions.create({
      file: createReadStream(SPEECH_FIXTURE),
      model: "whisper-1",
    });

    expect(typeof result.text).toBe("string");
    expect(result.text.length).toBeGreaterThan(0);
  });

  it.each(["text", "srt", "vtt"] as const)("returns %s as a string", async (format) => {
    const result = await client.audio.transcriptions.create({
      file: createReadStream(SPEECH_FIXTURE),
      model: "whisper-1",
      response_format: format,
    });

    expect(typeof result).toBe("string");
    if (format === "vtt") expect(result).toMatch(/^WEBVTT/);
    if (format === "srt") expect(result).toMatch(/^1\n00:00:/);
  });

  it("returns verbose_json with segments and words", async () => {
    const result = await client.audio.transcriptions.create({
      file: createReadStream(SPEECH_FIXTURE),
      model: "whisper-1",
      response_format: "verbose_json",
      timestamp_granularities: ["word", "segment"],
      language: "en",
    });

    expect(result.language).toBe("english");
    expect(result.duration).toBeGreaterThan(2);
    expect(result.segments?.length).toBeGreaterThan(0);
    expect(Array.isArray(result.words)).toBe(true);
  });

  it("detects the format of a part named unknown_file typed octet-stream", async () => {
    const bytes = await readFile(SPEECH_FIXTURE);
    const result = await client.audio.transcriptions.create({
      file: await toFile(bytes, "unknown_file", { type: "application/octet-stream" }),
      model: "whisper-1",
    });

    expect(result.text.length).toBeGreaterThan(0);
  });

  it("streams deltas and a done event", async () => {
    const stream = await client.audio.transcriptions.create({
      file: await toFile(await readFile(SPEECH_FIXTURE), "speech.wav"),
      model: "whisper-1",
      stream: true,
    });

    const types: string[] = [];
    let deltas = "";
    let done = "";
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "transcript.text.delta") deltas += event.delta;
      if (event.type === "transcript.text.done") done = event.text;
    }
    expect(types.at(-1)).toBe("transcript.text.done");
    expect(types).toContain("transcript.text.delta");
    expect(deltas.trim()).toBe(done);
  });

  it("raises a 400 BadRequestError for bad audio", async () => {
    const upload = client.audio.transcriptions.create({
      file: await toFile(Buffer.from("definitely not audio"), "clip.mp3"),
      model: "whisper-1",
    });

    await expect(upload).rejects.toMatchObject({ status: 400, param: "file" });
  });

  it("raises a 404 for an unknown model", async () => {
    const upload = client.audio.transcriptions.create({
      file: createReadStream(SPEECH_FIXTURE),
      model: "no-such-model",
    });

    await expect(upload).rejects.toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("raises AuthenticationError with a wrong key", async () => {
    const stranger = new OpenAI({
      apiKey: "sk-wrong",
      baseURL: client.baseURL,
      maxRetries: 0,
    });
    const upload = stranger.audio.transcriptions.create({
      file: createReadStream(SPEECH_FIXTURE),
      model: "whisper-1",
    });

    await expect(upload).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });
});

describe("openai SDK: audio.translations.create", () => {
  it.each(["json", "verbose_json"] as const)("returns %s", async (format) => {
    const result = await client.audio.translations.create({
      file: createReadStream(SPEECH_FIXTURE),
      model: "whisper-1",
      response_format: format,
    });

    expect(typeof result.text).toBe("string");
  });

  it.each(["text", "srt", "vtt"] as const)("returns %s as a string", async (format) => {
    const result = await client.audio.translations.create({
      file: createReadStream(SPEECH_FIXTURE),
      model: "whisper-1",
      response_format: format,
    });

    expect(typeof result).toBe("string");
  });
});

describe("openai SDK: models", () => {
  it("lists installed models", async () => {
    const page = await client.models.list();
    const ids = page.data.map((model) => model.id);

    expect(ids).toContain("micro");
  });

  it("retrieves whisper-1 as the default model", async () => {
    const model = await client.models.retrieve("whisper-1");

    expect(model.id).toBe("micro");
    expect(model.object).toBe("model");
  });
});
