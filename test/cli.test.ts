import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { startStandInHub, type StandInHub } from "./helpers/stand-in-hub.js";
import { closedPort, MICRO_EN_MODEL, temporaryModelDir } from "./models/model-fixtures.js";

const REPOSITORY_ROOT = path.resolve(import.meta.dirname, "..");

let hub: StandInHub;
let modelDir: string;

beforeEach(async () => {
  hub = await startStandInHub({ "ggml-tiny.en.bin": MICRO_EN_MODEL });
  modelDir = await temporaryModelDir();
});

afterEach(async () => {
  await hub.close();
  await rm(modelDir, { recursive: true, force: true });
});

interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs `earshot ARGS` from the sources, with only the environment given here. */
function earshot(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const environment = {
    PATH: process.env.PATH ?? "",
    MODEL_DIR: modelDir,
    HF_ENDPOINT: hub.url,
    ...env,
  };
  return new Promise((resolve) => {
    execFile(
      "node",
      ["--import", "tsx", "src/cli.ts", ...args],
      { cwd: REPOSITORY_ROOT, env: environment, timeout: 20_000 },
      (error, stdout, stderr) => {
        let status = 0;
        if (error) status = typeof error.code === "number" ? error.code : -1;
        resolve({ status, stdout, stderr });
      },
    );
  });
}

const installedPath = () => path.join(modelDir, "ggml-tiny.en.bin");

describe("earshot models pull", () => {
  it("downloads a model with a progress bar", async () => {
    const result = await earshot(["models", "pull", "tiny.en"]);

    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`Downloaded tiny.en (8.1 MB) at ${installedPath()}`);
    expect(result.stderr).toMatch(/tiny\.en \[[█░]+\] 100% \| 8\.1 MB of 8\.1 MB/);
    expect((await readFile(installedPath())).equals(await readFile(MICRO_EN_MODEL))).toBe(true);
  });

  it("leaves an installed model alone", async () => {
    await earshot(["models", "pull", "tiny.en"]);

    const result = await earshot(["models", "pull", "tiny.en"]);

    expect(result.status).toBe(0);
    expect(result.stdout).toContain("Already installed: tiny.en");
    expect(hub.cdnRequestCount()).toBe(1);
  });

  it("resumes a partial download", async () => {
    const model = await readFile(MICRO_EN_MODEL);
    await writeFile(`${installedPath()}.part`, model.subarray(0, 1_000_000));

    const result = await earshot(["models", "pull", "tiny.en"]);

    expect(result.status).toBe(0);
    expect(hub.requests.find((request) => request.kind === "cdn")?.range).toBe("bytes=1000000-");
    expect((await readFile(installedPath())).equals(model)).toBe(true);
  });

  it("downloads even when MODEL_DOWNLOAD is off", async () => {
    const result = await earshot(["models", "pull", "tiny.en"], { MODEL_DOWNLOAD: "off" });

    expect(result.status).toBe(0);
    expect(existsSync(installedPath())).toBe(true);
  });

  it("exits 1 with the URL when the hub is down", async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;

    const result = await earshot(["models", "pull", "tiny.en"], { HF_ENDPOINT: endpoint });

    expect(result.status).toBe(1);
    expect(result.stderr).toContain("earshot models pull tiny.en failed");
    expect(result.stderr).toContain(`${endpoint}/ggerganov/whisper.cpp/resolve/main/`);
    expect(result.stderr).toContain("(MODEL_DIR) as ggml-tiny.en.bin");
  });

  it("exits 1 naming sizes when the disk is too small", async () => {
    // 10^15 bytes (1 PB) exceeds the free space of any disk these tests run on.
    hub.behaviour.linkedSizeBytes = 1e15;

    const result = await earshot(["models", "pull", "tiny.en"]);

    expect(result.status).toBe(1);
    expect(result.stderr).toContain("ggml-tiny.en.bin is 1000000000000000 bytes");
    expect(result.stderr).toMatch(/file system has \d+ bytes \([\d.]+ MB\) free/);
    expect(existsSync(`${installedPath()}.part`)).toBe(false);
  });

  it("exits 2 when MODEL_DIR is a file", async () => {
    const file = path.join(modelDir, "not-a-folder");
    await writeFile(file, "");

    const result = await earshot(["models", "pull", "tiny.en"], { MODEL_DIR: file });

    expect(result.status).toBe(2);
    expect(result.stderr).toBe(
      `earshot: MODEL_DIR=${file} is not a folder. Set MODEL_DIR to a folder, or to a path ` +
        "where one can be created.\n",
    );
    expect(hub.requests).toEqual([]);
  });

  it("exits 2 when MODEL_DIR is below a file", async () => {
    const file = path.join(modelDir, "not-a-folder");
    await writeFile(file, "");

    const result = await earshot(["models", "list"], { MODEL_DIR: path.join(file, "models") });

    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^earshot: MODEL_DIR=\S+ is not a folder\./);
  });

  it("exits 1 on one line for an unexpected error", async () => {
    // A folder where the model file belongs makes the final rename fail with EISDIR.
    await mkdir(installedPath());

    const result = await earshot(["models", "pull", "tiny.en"]);

    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^earshot models pull tiny\.en failed: EISDIR/m);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it("prints the stack when EARSHOT_DEBUG is set", async () => {
    await mkdir(installedPath());

    const result = await earshot(["models", "pull", "tiny.en"], { EARSHOT_DEBUG: "1" });

    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^\s+at /m);
  });

  it("exits 1 for a name that escapes MODEL_DIR", async () => {
    const result = await earshot(["models", "pull", "../tiny.en"]);

    expect(result.status).toBe(1);
    expect(result.stderr).toContain("The model '../tiny.en' does not exist");
    expect(hub.requests).toEqual([]);
  });
});

describe("earshot models list", () => {
  it("shows installed and downloadable models", async () => {
    await earshot(["models", "pull", "tiny.en"]);

    const result = await earshot(["models", "list"]);

    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^ID\s+SIZE\s+STATUS$/m);
    expect(result.stdout).toMatch(/^tiny\.en\s+8\.1 MB\s+installed$/m);
    expect(result.stdout).toMatch(/^large-v3-turbo-q5_0\s+-\s+available$/m);
    expect(result.stdout).not.toMatch(/^tiny\.en\s+-\s+available$/m);
    expect(result.stdout).toContain(`Model folder (MODEL_DIR): ${modelDir}`);
  });
});

describe("earshot models rm", () => {
  it("deletes an installed model", async () => {
    await earshot(["models", "pull", "tiny.en"]);

    const result = await earshot(["models", "rm", "tiny.en"]);

    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`Deleted tiny.en (${installedPath()})`);
    expect(existsSync(installedPath())).toBe(false);
  });

  it("exits 1 for a model that is not installed", async () => {
    const result = await earshot(["models", "rm", "tiny.en"]);

    expect(result.status).toBe(1);
    expect(result.stderr).toContain("The model 'tiny.en' is not installed");
  });
});

describe("earshot usage", () => {
  it("exits 2 with usage for an unknown command", async () => {
    const result = await earshot(["models", "fetch", "tiny.en"]);

    expect(result.status).toBe(2);
    expect(result.stderr).toContain("earshot models pull NAME...");
  });

  it("exits 2 when pull has no name", async () => {
    const result = await earshot(["models", "pull"]);

    expect(result.status).toBe(2);
    expect(result.stderr).toContain("give at least one model NAME");
  });

  it("prints usage on --help", async () => {
    const result = await earshot(["--help"]);

    expect(result.status).toBe(0);
    expect(result.stdout).toContain("earshot models list");
  });

  it("exits 2 naming an invalid variable", async () => {
    const result = await earshot(["models", "list"], { MODEL_DOWNLOAD: "sometimes" });

    expect(result.status).toBe(2);
    expect(result.stderr).toContain('MODEL_DOWNLOAD="sometimes"');
  });
});
