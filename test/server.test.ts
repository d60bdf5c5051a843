// The entry point as a real process: startup log, config errors, auth before the body, and a
// graceful stop on SIGTERM.
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { pathToFileURL } from "node:url";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AudioWorkspace } from "./helpers/audio.js";
import { SPEECH_FIXTURE, testEnvironment } from "./helpers/app.js";

const SERVER_ENTRY = path.resolve(import.meta.dirname, "../src/server.ts");
// An absolute loader URL, so the server can start from any working directory.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

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

function spawnServer(
  env: Record<string, string | undefined>,
  options: { cwd?: string } = {},
): ServerProcess & { listening: Promise<string> } {
  const child = spawn(process.execPath, ["--import", TSX_LOADER, SERVER_ENTRY], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: process.env.TMPDIR,
      ...testEnvironment(env),
      PORT: "0",
    },
    cwd: options.cwd,
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
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code, signal) => {
      output += `\n[exit code=${code} signal=${signal}]`;
      resolve(code);
    }),
  );
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

  it("warns when the default model can be neither found nor downloaded", async () => {
    const server = spawnServer({ DEFAULT_MODEL: "base", MODEL_DOWNLOAD: "off" });
    await server.listening;
    await waitFor(() => server.output().includes("default model"));

    expect(server.output()).toContain("the default model is not installed and MODEL_DOWNLOAD");
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
      // Only the headers go out, so a server that waited for the body would never respond.
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

describe("server process stop", () => {
  it("exits soon after a stream on a keep-alive connection ends", async () => {
    const server = spawnServer({ API_KEY: undefined, SHUTDOWN_GRACE_SECONDS: "30" });
    const baseUrl = await server.listening;
    const form = new FormData();
    form.append("model", "whisper-1");
    form.append("stream", "true");
    form.append("file", new Blob([await readFile(SPEECH_FIXTURE)]), "speech.wav");

    const response = await fetch(`${baseUrl}/v1/audio/transcriptions`, {
      method: "POST",
      body: form,
    });
    const stoppedAt = Date.now();
    server.child.kill("SIGTERM");
    const events = await response.text();

    expect(events).toContain("transcript.text.done");
    expect(await server.exited).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
  });
});

describe("server process cleanup", () => {
  let uploadRoot: string;

  beforeAll(async () => {
    uploadRoot = await mkdtemp(path.join(tmpdir(), "earshot-test-process-"));
  });
  afterAll(() => rm(uploadRoot, { recursive: true, force: true }));

  it("exits after the grace period, leaving no upload behind", async () => {
    const server = spawnServer({ API_KEY: undefined, SHUTDOWN_GRACE_SECONDS: "1", TMPDIR: uploadRoot });
    const baseUrl = await server.listening;
    const longAudio = await AudioWorkspace.create();
    const form = new FormData();
    form.append("model", "whisper-1");
    form.append("file", new Blob([await longAudio.tone("long.wav", 600)]), "long.wav");
    await longAudio.remove();

    const upload = fetch(`${baseUrl}/v1/audio/transcriptions`, { method: "POST", body: form });
    upload.catch(() => undefined);
    await waitFor(() => server.output().includes("model loaded"), 20_000);
    const stoppedAt = Date.now();
    server.child.kill("SIGTERM");
    await server.exited;

    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
    expect(server.output()).toContain("grace period over");
    expect(await uploadFolders(uploadRoot)).toEqual([]);
  });

  it("removes uploads of dead servers at start and keeps live ones", async () => {
    const dead = path.join(uploadRoot, "earshot-upload-999999999-abc");
    const live = path.join(uploadRoot, `earshot-upload-${process.pid}-def`);
    await mkdir(dead);
    await writeFile(path.join(dead, "upload"), "left behind");
    await mkdir(live);

    const server = spawnServer({ API_KEY: undefined, TMPDIR: uploadRoot });
    await server.listening;

    expect(await uploadFolders(uploadRoot)).toEqual([path.basename(live)]);
    await rm(live, { recursive: true });
  });

  it("reads settings from .env in the working directory", async () => {
    const folder = await mkdtemp(path.join(tmpdir(), "earshot-test-dotenv-"));
    await writeFile(path.join(folder, ".env"), "API_KEY=sk-from-dotenv\nLOG_LEVEL=info\n");

    const server = spawnServer({ API_KEY: undefined }, { cwd: folder });
    const baseUrl = await server.listening;
    const response = await fetch(`${baseUrl}/v1/models`);

    expect(response.status).toBe(401);
    expect(server.output()).toContain('"auth":true');
    expect(server.output()).not.toContain("sk-from-dotenv");
    await rm(folder, { recursive: true });
  });

  it("names HOST when it cannot listen", async () => {
    const server = spawnServer({ HOST: "999.1.1.1" });

    await expect(server.listening).rejects.toThrow();
    expect(await server.exited).toBe(1);
    expect(server.output()).toContain("HOST=999.1.1.1");
  });
});

/** earshot's upload folders in `folder`; tsx keeps a cache folder there too. */
async function uploadFolders(folder: string): Promise<string[]> {
  return (await readdir(folder)).filter((name) => name.startsWith("earshot-upload-"));
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
