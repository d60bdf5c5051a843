import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { makeSpeechClip } from "../lib/clips.js";
import { runCommand } from "../lib/process.js";

const hasTools = ["espeak-ng", "sox", "soxi"].every(
  (tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0,
);

describe.runIf(hasTools)("makeSpeechClip", () => {
  const clipDir = mkdtempSync(path.join(tmpdir(), "bench-clips-"));
  afterAll(() => rmSync(clipDir, { recursive: true, force: true }));

  it("writes a 16 kHz mono clip of exactly the requested length", async () => {
    const clip = await makeSpeechClip(clipDir, 7);
    const info = await runCommand("soxi", [clip.path], { timeoutMs: 5000 });
    const text = info.stdout.toString("utf8");
    expect(text).toMatch(/Sample Rate\s*:\s*16000/);
    expect(text).toMatch(/Channels\s*:\s*1/);
    expect(text).toMatch(/Precision\s*:\s*16-bit/);
    const duration = await runCommand("soxi", ["-D", clip.path], { timeoutMs: 5000 });
    expect(Number(duration.stdout.toString("utf8"))).toBe(7);
    expect(clip.durationSeconds).toBe(7);
  });
});
