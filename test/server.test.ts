// The entry point as a real process: startup log, config errors, auth before the body, and a
// graceful stop on SIGTERM.
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SPEECH_FIXTURE, testEnvironment } from "./helpers/app.js";

const SERVER_ENTRY = path.resolve(import.meta.dirname, "../src/server.ts");

interface ServerProcess {
  child: ChildProcess;
  output: () => string;
  baseUrl: string;
  exited: Promise<number | null>;
}

const running: ChildProcess[] = [];

afterEach(() => {
  for (const child of running.splice(0)) child.kill("SIGKILL");
});

function spawnServer(env: Record<string, string | undefined>): ServerProcess & {
  listening: Promise<string>;
} {
  const child = spawn(process.execPath, ["--import", "tsx", SERVER_ENTRY], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...testEnvironment(env), PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.push(child);
  let output = "";
  const listening = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { child, output: () => output, baseUrl: "", exited, listening };
}

describe("server process", () => {
  it("logs its build, auth state and ffmpeg at start", async () => {
    const server = spawnServer({ API_KEY: "sk-process-test" });
    await server.listening;

    const startLine = server.output().split("\n").find((line) => line.includes("earshot starting"));
    expect(startLine).toBeDefined();
    const entry = JSON.parse(startLine!);
    expect(entry.auth).toBe(true);
    expect(entry.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(entry.revision).toBeTruthy();
    expect(["PATH", "FFMPEG_PATH", "@ffmpeg-installer/ffmpeg"]).toContain(entry.ffmpeg.source);
    expect(server.output()).not.toContain("sk-process-test");
  });

  it("warns that it is open to anyone without API_KEY", async () => {
    const server = spawnServer({ API_KEY: undefined });
    await server.listening;

    expect(server.output()).toContain("API_KEY is not set");
  });

  it("exits with a message naming a bad variable", async () => {
    const server = spawnServer({ MAX_UPLOAD_BYTES: "lots" });

    await expect(server.listening).rejects.toThrow();
    expect(await server.exited).toBe(1);
    expect(server.output()).toContain("MAX_UPLOAD_BYTES");
  });

  it("answers 401 before reading a declared 20 MB body", async () => {
    const server = spawnServer({ API_KEY: "sk-process-test" });
    const url = new URL(await server.listening);

    const response = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname);
      let received = "";
      socket.on("data", (chunk) => {
        received += chunk.toString();
        if (received.includes("\r\n\r\n")) {
          socket.destroy();
          resolve(received);
        }
      });
      socket.on("error", reject);
      // Only the headers go out: a server that waited for the body would never answer.
      socket.write(
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
          "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 20000000\r\n\r\n",
      );
    });

    expect(response).toMatch(/^HTTP\/1\.1 401/);
  });

  it("finishes a running transcription on SIGTERM, then exits", async () => {
    const server = spawnServer({ API_KEY: undefined, SHUTDOWN_GRACE_SECONDS: "30" });
    const baseUrl = await server.listening;
    const form = new FormData();
    form.append("model", "whisper-1");
    form.append("file", new Blob([await readFile(SPEECH_FIXTURE)]), "speech.wav");

    const upload = fetch(`${baseUrl}/v1/audio/transcriptions`, { method: "POST", body: form });
    await waitFor(() => server.output().includes("incoming request"));
    server.child.kill("SIGTERM");
    const response = await upload;

    expect(response.status).toBe(200);
    const body = (await response.json()) as { text: unknown };
    expect(typeof body.text).toBe("string");
    expect(await server.exited).toBe(0);
    expect(server.output()).toContain("stopped");
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
