// Builds the app for tests: generated models, bounded decoding (random weights never stop on
// their own), and logs captured in memory so tests can read them.
import { Writable } from "node:stream";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/app.js";
import { loadConfig, type Config } from "../../src/config.js";

export const TEST_MODEL_DIR = path.resolve(import.meta.dirname, "../.models");
export const FIXTURE_DIR = path.resolve(import.meta.dirname, "../fixtures");
export const SPEECH_FIXTURE = path.join(FIXTURE_DIR, "speech-en.wav");

/** Environment for a test server; tests override single variables. */
export function testEnvironment(overrides: Record<string, string | undefined> = {}) {
  return {
    MODEL_DIR: TEST_MODEL_DIR,
    DEFAULT_MODEL: "micro",
    // No test reaches the real hub; download tests point HF_ENDPOINT at a stand-in.
    MODEL_DOWNLOAD: "off",
    LOG_LEVEL: "info",
    WHISPER_MAX_SEGMENT_TOKENS: "8",
    WHISPER_TEMPERATURE_FALLBACK: "false",
    MAX_CONCURRENT_JOBS: "2",
    WHISPER_THREADS: "1",
    ...overrides,
  };
}

/** Log lines kept in memory. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];

  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    callback();
  }

  get text(): string {
    return this.lines.join("\n");
  }
}

export interface TestApp {
  app: FastifyInstance;
  config: Config;
  logs: LogCapture;
}

export async function buildTestApp(
  overrides: Record<string, string | undefined> = {},
): Promise<TestApp> {
  const config = loadConfig(testEnvironment(overrides));
  const logs = new LogCapture();
  const app = await buildApp(config, {
    logDestination: logs,
    build: { version: "0.0.0-test", revision: "test-revision", buildDate: undefined },
  });
  return { app, config, logs };
}

/** Builds a multipart body for `inject` with the platform's FormData. */
export async function multipartBody(
  fields: Record<string, string | string[]>,
  file?: { content: Buffer; filename?: string; contentType?: string; fieldName?: string },
): Promise<{ payload: Buffer; headers: Record<string, string> }> {
  const form = new FormData();
  if (file) {
    const blob = new Blob([file.content], { type: file.contentType ?? "application/octet-stream" });
    form.append(file.fieldName ?? "file", blob, file.filename ?? "audio.wav");
  }
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) form.append(name, item);
  }
  const request = new Request("http://127.0.0.1/", { method: "POST", body: form });
  return {
    payload: Buffer.from(await request.arrayBuffer()),
    headers: { "content-type": request.headers.get("content-type")! },
  };
}
