import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { FfmpegUnavailableError, findFfmpeg } from "../../src/audio/ffmpeg-binary.js";

const execFileAsync = promisify(execFile);

let folder: string;
let emptyDirectory: string;
let systemFfmpeg: string;

async function writeScript(name: string, body: string, mode = 0o755): Promise<string> {
  const file = path.join(folder, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, mode);
  return file;
}

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), "earshot-ffmpeg-binary-test-"));
  emptyDirectory = path.join(folder, "empty");
  await mkdir(emptyDirectory);
  // The ffmpeg found the server's way: a system one where installed, else the npm package's.
  systemFfmpeg = (await findFfmpeg()).path;
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

describe("findFfmpeg with FFMPEG_PATH", () => {
  it("uses the configured executable", async () => {
    const binary = await findFfmpeg({ configuredPath: systemFfmpeg, searchPath: emptyDirectory });

    expect(binary.source).toBe("FFMPEG_PATH");
    expect(binary.path).toBe(systemFfmpeg);
    const { stdout } = await execFileAsync(systemFfmpeg, ["-version"]);
    expect(stdout.split("\n")[0]).toContain(`ffmpeg version ${binary.version} `);
  });

  it("resolves a relative path", async () => {
    const relative = path.relative(process.cwd(), systemFfmpeg);

    const binary = await findFfmpeg({ configuredPath: relative });

    expect(binary.path).toBe(systemFfmpeg);
  });

  it("rejects a path that does not exist", async () => {
    const missing = path.join(folder, "no-such-ffmpeg");

    const error = await findFfmpeg({ configuredPath: missing }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(FfmpegUnavailableError);
    expect((error as Error).message).toContain(missing);
    expect((error as Error).message).toContain("FFMPEG_PATH");
  });

  it("rejects a file that is not executable", async () => {
    const file = await writeScript("not-executable", "exit 0", 0o644);

    await expect(findFfmpeg({ configuredPath: file })).rejects.toThrow(/is not executable/);
  });

  it("rejects an executable that fails", async () => {
    const file = await writeScript("failing-ffmpeg", "echo 'cannot load libavcodec' >&2\nexit 1");

    await expect(findFfmpeg({ configuredPath: file })).rejects.toThrow(
      /failed to run '-version'/,
    );
  });

  it("rejects a program that is not ffmpeg", async () => {
    const file = await writeScript("impostor", "echo 'hello from another tool'");

    await expect(findFfmpeg({ configuredPath: file })).rejects.toThrow(
      /does not look like ffmpeg/,
    );
  });
});

describe("findFfmpeg without FFMPEG_PATH", () => {
  it("finds ffmpeg on PATH", async () => {
    const searchPath = [emptyDirectory, path.dirname(systemFfmpeg)].join(path.delimiter);

    const binary = await findFfmpeg({ searchPath });

    expect(binary.source).toBe("PATH");
    expect(binary.path).toBe(systemFfmpeg);
    expect(binary.version).not.toBe("");
  });

  it("skips a file named ffmpeg that is not executable", async () => {
    const directory = path.join(folder, "data-only");
    await mkdir(directory);
    await writeFile(path.join(directory, "ffmpeg"), "not a program");
    const searchPath = [directory, path.dirname(systemFfmpeg)].join(path.delimiter);

    const binary = await findFfmpeg({ searchPath });

    expect(binary.path).toBe(systemFfmpeg);
  });

  it("rejects a broken ffmpeg on PATH instead of falling back", async () => {
    const directory = path.join(folder, "broken");
    await mkdir(directory);
    await writeFile(path.join(directory, "ffmpeg"), "#!/bin/sh\nexit 127\n", { mode: 0o755 });

    await expect(findFfmpeg({ searchPath: directory })).rejects.toThrow(/failed to run/);
  });

  it("falls back to the npm package", async () => {
    const { default: installer } = await import("@ffmpeg-installer/ffmpeg");

    const binary = await findFfmpeg({ searchPath: emptyDirectory });

    expect(binary.source).toBe("@ffmpeg-installer/ffmpeg");
    expect(binary.path).toBe(installer.path);
    expect(binary.version).toMatch(/^\S+$/);
  });
});
