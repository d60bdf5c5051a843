import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AudioWorkspace } from "../helpers/audio.js";
import { buildTestApp, multipartBody, SPEECH_FIXTURE, type TestApp } from "../helpers/app.js";

const SEGMENT_FIELDS = [
  "id", "seek", "start", "end", "text", "tokens",
  "temperature", "avg_logprob", "compression_ratio", "no_speech_prob",
].sort();

let server: TestApp;
let audio: AudioWorkspace;
let tone: Buffer;
let uploadRoot: string;
const originalTmpdir = process.env.TMPDIR;

beforeAll(async () => {
  audio = await AudioWorkspace.create();
  tone = await audio.tone("tone.wav", 3);
  // Uploads land in their own folder here, so leftovers of this file's requests can be counted.
  uploadRoot = await mkdtemp(path.join(tmpdir(), "earshot-test-uploads-"));
  process.env.TMPDIR = uploadRoot;
  server = await buildTestApp();
});

afterAll(async () => {
  await server.app.close();
  process.env.TMPDIR = originalTmpdir;
  await audio.remove();
  await rm(uploadRoot, { recursive: true, force: true });
});

afterEach(async () => {
  expect(await readdir(uploadRoot)).toEqual([]);
});

async function transcribe(
  fields: Record<string, string | string[]>,
  file: Buffer | null = tone,
  url = "/v1/audio/transcriptions",
) {
  // null sends no file part at all; the default applies to undefined only.
  const { payload, headers } = await multipartBody(fields, file ? { content: file } : undefined);
  return server.app.inject({ method: "POST", url, payload, headers });
}

describe("POST /v1/audio/transcriptions", () => {
  it("returns json by default", async () => {
    const response = await transcribe({ model: "whisper-1" });

    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^application\/json/);
    const body = response.json();
    expect(typeof body.text).toBe("string");
    expect(body.usage).toEqual({ type: "duration", seconds: 3 });
  });

  it("returns the same text as plain text", async () => {
    const json = await transcribe({ model: "whisper-1" });
    const text = await transcribe({ model: "whisper-1", response_format: "text" });

    expect(text.statusCode).toBe(200);
    expect(text.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(text.body.trim()).toBe(json.json().text);
  });

  it("returns numbered SRT cues", async () => {
    const response = await transcribe({ model: "whisper-1", response_format: "srt" });

    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(response.body).toMatch(/^1\n\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}\n/);
  });

  it("returns WebVTT", async () => {
    const response = await transcribe({ model: "whisper-1", response_format: "vtt" });

    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/vtt/);
    expect(response.body).toMatch(/^WEBVTT\n/);
    expect(response.body).toMatch(/\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}/);
  });

  it("returns verbose_json with every segment field", async () => {
    const response = await transcribe({
      model: "whisper-1",
      response_format: "verbose_json",
      language: "en",
    });

    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.task).toBe("transcribe");
    expect(body.language).toBe("english");
    expect(body.duration).toBeCloseTo(3, 2);
    expect(body.words).toBeUndefined();
    expect(body.segments.length).toBeGreaterThan(0);
    for (const segment of body.segments) {
      expect(Object.keys(segment).sort()).toEqual(SEGMENT_FIELDS);
      expect(segment.start).toBeGreaterThanOrEqual(0);
      expect(segment.end).toBeGreaterThanOrEqual(segment.start);
      expect(segment.end).toBeLessThanOrEqual(body.duration);
      expect(segment.tokens.every(Number.isInteger)).toBe(true);
    }
  });

  it("adds words when timestamp_granularities[] includes word", async () => {
    const response = await transcribe({
      model: "whisper-1",
      response_format: "verbose_json",
      "timestamp_granularities[]": ["word", "segment"],
    });

    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(Array.isArray(body.words)).toBe(true);
    expect(body.segments.length).toBeGreaterThan(0);
    for (const word of body.words) {
      expect(Object.keys(word).sort()).toEqual(["end", "start", "word"]);
      expect(word.end).toBeLessThanOrEqual(body.duration);
    }
  });

  it("adds token logprobs to json on include[]=logprobs", async () => {
    const response = await transcribe({ model: "whisper-1", "include[]": "logprobs" });

    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.logprobs.length).toBeGreaterThan(0);
    for (const entry of body.logprobs) {
      expect(typeof entry.token).toBe("string");
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(Buffer.from(entry.bytes).toString("utf8")).toBe(entry.token);
    }
  });

  it("treats an English-only model's language as English", async () => {
    const response = await transcribe({ model: "micro.en", response_format: "verbose_json" });

    expect(response.statusCode).toBe(200);
    expect(response.json().language).toBe("english");
  });

  it("rejects a non-English language on an English-only model", async () => {
    const response = await transcribe({ model: "micro.en", language: "fr" });

    expect(response.statusCode).toBe(400);
    expect(response.json().error.param).toBe("language");
  });

  it("accepts prompt and temperature", async () => {
    const response = await transcribe({
      model: "micro",
      prompt: "Glossary: earshot, whisper.cpp.",
      temperature: "0.4",
    });

    expect(response.statusCode).toBe(200);
  });

  it("ignores unknown fields", async () => {
    const response = await transcribe({ model: "whisper-1", unknown_field: "x", "meta[a]": "1" });

    expect(response.statusCode).toBe(200);
  });

  it("transcribes the recorded speech fixture", async () => {
    const speech = await readFile(SPEECH_FIXTURE);
    const response = await transcribe({ model: "whisper-1", response_format: "verbose_json" }, speech);

    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.duration).toBeGreaterThan(2);
    expect(body.text.length).toBeGreaterThan(0);
  });

  it("transcribes audio longer than two 30-second windows", async () => {
    const long = await audio.tone("long.wav", 75, 300);
    const response = await transcribe({ model: "whisper-1", response_format: "verbose_json" }, long);

    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.duration).toBeCloseTo(75, 1);
    const lastEnd = Math.max(...body.segments.map((segment: { end: number }) => segment.end));
    expect(lastEnd).toBeGreaterThan(30);
    expect(lastEnd).toBeLessThanOrEqual(75);
  });
});

describe("POST /v1/audio/transcriptions with bad input", () => {
  it.each([
    ["an unknown response_format", { response_format: "xml" }, "response_format"],
    ["diarized_json, which whisper models lack", { response_format: "diarized_json" }, "response_format"],
    ["a temperature above 1", { temperature: "1.5" }, "temperature"],
    ["a negative temperature", { temperature: "-0.1" }, "temperature"],
    ["a temperature that is not a number", { temperature: "warm" }, "temperature"],
    ["NaN as temperature", { temperature: "NaN" }, "temperature"],
    ["an unknown language", { language: "klingon" }, "language"],
    ["a stream flag that is not a boolean", { stream: "maybe" }, "stream"],
    ["word timestamps without verbose_json", { "timestamp_granularities[]": "word" }, "timestamp_granularities"],
    ["an unknown timestamp granularity", { "timestamp_granularities[]": "sentence" }, "timestamp_granularities"],
    ["logprobs with a text format", { "include[]": "logprobs", response_format: "text" }, "include"],
    ["a prompt over the length limit", { prompt: "word ".repeat(1000) }, "prompt"],
    ["stream with a subtitle format", { stream: "true", response_format: "srt" }, "response_format"],
    ["stream with verbose_json", { stream: "true", response_format: "verbose_json" }, "response_format"],
    ["stream with logprobs", { stream: "true", "include[]": "logprobs" }, "include"],
  ])("rejects %s with 400", async (_case, fields, param) => {
    const response = await transcribe({ model: "whisper-1", ...fields });

    expect(response.statusCode).toBe(400);
    expect(response.json().error.type).toBe("invalid_request_error");
    expect(response.json().error.param).toBe(param);
  });

  it("rejects a request without model", async () => {
    const response = await transcribe({});

    expect(response.statusCode).toBe(400);
    expect(response.json().error.param).toBe("model");
  });

  it("rejects a request without file", async () => {
    const response = await transcribe({ model: "whisper-1" }, null);

    expect(response.statusCode).toBe(400);
    expect(response.json().error.param).toBe("file");
  });

  it.each([
    ["an empty file", Buffer.alloc(0)],
    ["a text file", Buffer.from("These are not the bytes of any audio format.\n".repeat(20))],
    ["random bytes", Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256))],
  ])("rejects %s as audio with 400", async (_case, content) => {
    const response = await transcribe({ model: "whisper-1" }, content);

    expect(response.statusCode).toBe(400);
    expect(response.json().error.param).toBe("file");
    expect(response.body).not.toContain(tmpdir());
  });

  it("rejects a truncated wav file with 400", async () => {
    const speech = await readFile(SPEECH_FIXTURE);
    // The header still declares the full duration, but only half the samples follow it.
    const truncated = speech.subarray(0, Math.floor(speech.length / 2));
    const response = await transcribe({ model: "whisper-1" }, truncated);

    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe("invalid_audio");
    expect(response.json().error.param).toBe("file");
    expect(response.json().error.message).toMatch(/truncated/);
    expect(response.body).not.toContain(tmpdir());
  });

  it.each([
    ["an unknown name", "large-v9"],
    ["a parent-folder escape", "../micro"],
    ["an absolute path", "/etc/passwd"],
    ["a nested escape", "micro/../../../etc/passwd"],
    ["an encoded escape", "..%2F..%2Fmicro"],
    ["a name with a NUL byte", "micro\u0000"],
  ])("rejects %s as model with 404", async (_case, model) => {
    const response = await transcribe({ model });

    expect(response.statusCode).toBe(404);
    expect(response.json().error.code).toBe("model_not_found");
    expect(response.json().error.param).toBe("model");
  });

  it.each([
    ["JSON", "application/json", '{"model":"whisper-1"}'],
    ["text", "text/plain", "model=whisper-1"],
    ["urlencoded", "application/x-www-form-urlencoded", "model=whisper-1"],
  ])("rejects a %s body with 415", async (_case, contentType, payload) => {
    const response = await server.app.inject({
      method: "POST",
      url: "/v1/audio/transcriptions",
      payload,
      headers: { "content-type": contentType },
    });

    expect(response.statusCode).toBe(415);
    expect(response.json().error.type).toBe("invalid_request_error");
    expect(response.json().error.code).toBe("unsupported_media_type");
    expect(response.json().error.message).toContain(contentType);
  });

  it("rejects a deeply nested 20 MB JSON body without parsing it", async () => {
    const depth = 10_000_000;
    const payload = `${"[".repeat(depth)}${"]".repeat(depth)}`;
    const startedAt = Date.now();
    const response = await server.app.inject({
      method: "POST",
      url: "/v1/audio/transcriptions",
      payload,
      headers: { "content-type": "application/json" },
    });

    expect(response.statusCode).toBe(415);
    expect(Date.now() - startedAt).toBeLessThan(1_000);
  });

  it("rejects two files in one request", async () => {
    const form = new FormData();
    form.append("model", "whisper-1");
    form.append("file", new Blob([tone]), "a.wav");
    form.append("file", new Blob([tone]), "b.wav");
    const request = new Request("http://127.0.0.1/", { method: "POST", body: form });
    const response = await server.app.inject({
      method: "POST",
      url: "/v1/audio/transcriptions",
      payload: Buffer.from(await request.arrayBuffer()),
      headers: { "content-type": request.headers.get("content-type")! },
    });

    expect(response.statusCode).toBe(400);
    expect(response.json().error.param).toBe("file");
  });
});

describe("POST /v1/audio/transcriptions over MAX_UPLOAD_BYTES", () => {
  let small: TestApp;

  beforeAll(async () => {
    small = await buildTestApp({ MAX_UPLOAD_BYTES: "20000" });
  });
  afterAll(() => small.app.close());

  it("answers 413 instead of a truncated transcript", async () => {
    const { payload, headers } = await multipartBody({ model: "whisper-1" }, { content: tone });
    const response = await small.app.inject({
      method: "POST",
      url: "/v1/audio/transcriptions",
      payload,
      headers,
    });

    expect(response.statusCode).toBe(413);
    expect(response.json().error.type).toBe("invalid_request_error");
    expect(response.json().error.message).toContain("20000");
  });

  it("accepts a file within the limit", async () => {
    const shortTone = await audio.tone("short.wav", 0.5);
    const { payload, headers } = await multipartBody({ model: "whisper-1" }, { content: shortTone });
    const response = await small.app.inject({
      method: "POST",
      url: "/v1/audio/transcriptions",
      payload,
      headers,
    });

    expect(response.statusCode).toBe(200);
  });
});

describe("POST /v1/audio/transcriptions with stream=true", () => {
  it("sends text deltas, then the whole text", async () => {
    const response = await transcribe({ model: "whisper-1", stream: "true" });

    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/event-stream/);
    const events = response.body
      .split("\n\n")
      .filter(Boolean)
      .map((frame) => {
        expect(frame.startsWith("data: ")).toBe(true);
        return JSON.parse(frame.slice("data: ".length));
      });
    const done = events.at(-1);
    expect(done.type).toBe("transcript.text.done");
    const deltas = events.slice(0, -1);
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.every((event) => event.type === "transcript.text.delta")).toBe(true);
    expect(deltas.map((event) => event.delta).join("").trim()).toBe(done.text);
  });

  it("sends one delta per segment of the whole transcript", async () => {
    // Long enough for windows that yield several segments at once.
    const long = await audio.tone("stream-long.wav", 75, 300);
    const verbose = await transcribe({ model: "whisper-1", response_format: "verbose_json" }, long);
    const streamed = await transcribe({ model: "whisper-1", stream: "true" }, long);

    const segments = verbose.json().segments as { text: string }[];
    const deltas = streamed.body
      .split("\n\n")
      .filter(Boolean)
      .map((frame) => JSON.parse(frame.slice("data: ".length)))
      .filter((event) => event.type === "transcript.text.delta");
    expect(segments.length).toBeGreaterThan(1);
    expect(deltas).toHaveLength(segments.length);
    expect(deltas.map((event) => event.delta).join("").trim()).toBe(verbose.json().text);
  });

  it("answers a bad upload with an ordinary 400 before the stream starts", async () => {
    const response = await transcribe({ model: "whisper-1", stream: "true" }, Buffer.from("nope"));

    expect(response.statusCode).toBe(400);
    expect(response.json().error.param).toBe("file");
  });
});

describe("POST /v1/audio/translations", () => {
  it("returns English text with task translate", async () => {
    const response = await transcribe(
      { model: "whisper-1", response_format: "verbose_json" },
      tone,
      "/v1/audio/translations",
    );

    expect(response.statusCode).toBe(200);
    expect(response.json().task).toBe("translate");
  });

  it.each(["json", "text", "srt", "vtt"])("returns %s", async (format) => {
    const response = await transcribe(
      { model: "whisper-1", response_format: format },
      tone,
      "/v1/audio/translations",
    );

    expect(response.statusCode).toBe(200);
  });

  it("ignores stream with a subtitle format, as translations take no stream", async () => {
    const response = await transcribe(
      { model: "whisper-1", stream: "true", response_format: "srt" },
      tone,
      "/v1/audio/translations",
    );

    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("text/plain; charset=utf-8");
  });

  it("ignores language and stream, which translations do not take", async () => {
    const response = await transcribe(
      { model: "whisper-1", language: "klingon", stream: "true" },
      tone,
      "/v1/audio/translations",
    );

    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^application\/json/);
  });
});
