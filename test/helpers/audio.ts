// Audio synthesized for tests with ffmpeg, so no recording is needed beyond the speech fixture.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export class AudioWorkspace {
  private constructor(readonly folder: string) {}

  static async create(): Promise<AudioWorkspace> {
    return new AudioWorkspace(await mkdtemp(path.join(tmpdir(), "earshot-test-audio-")));
  }

  /** Runs ffmpeg with `args` writing `name` in the workspace; returns the file's bytes. */
  async ffmpeg(name: string, args: string[]): Promise<Buffer> {
    const output = path.join(this.folder, name);
    await execFileAsync("ffmpeg", ["-loglevel", "error", "-y", ...args, output]);
    return readFile(output);
  }

  /** A sine tone as 16 kHz mono WAV. */
  tone(name: string, seconds: number, frequency = 440): Promise<Buffer> {
    return this.ffmpeg(name, [
      "-f", "lavfi", "-i", `sine=frequency=${frequency}:duration=${seconds}`,
      "-ar", "16000", "-ac", "1",
    ]);
  }

  remove(): Promise<void> {
    return rm(this.folder, { recursive: true, force: true });
  }
}

/** Files in the temporary folder that earshot creates for uploads. */
export async function uploadFolders(): Promise<string[]> {
  const { readdir } = await import("node:fs/promises");
  return (await readdir(tmpdir())).filter((name) => name.startsWith("earshot-upload-"));
}
