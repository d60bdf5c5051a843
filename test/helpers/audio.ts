// Audio synthesized for tests with ffmpeg, so no recording is needed beyond the speech fixture.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { findFfmpeg } from "../../src/audio/ffmpeg-binary.js";

const execFileAsync = promisify(execFile);

export class AudioWorkspace {
  private constructor(readonly folder: string) {}

  static async create(): Promise<AudioWorkspace> {
    return new AudioWorkspace(await mkdtemp(path.join(tmpdir(), "earshot-test-audio-")));
  }

  /**
   * Runs ffmpeg with `args` writing `name` in the workspace; returns the file's bytes. The
   * executable is the one the server would use, so tests run where no system ffmpeg exists.
   */
  async ffmpeg(name: string, args: string[]): Promise<Buffer> {
    const output = path.join(this.folder, name);
    const { path: ffmpegPath } = await findFfmpeg();
    await execFileAsync(ffmpegPath, ["-loglevel", "error", "-y", ...args, output]);
    return readFile(output);
  }

  /** Writes a sine tone as 16 kHz mono WAV and returns its bytes. */
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

