import { describe, expect, it } from "vitest";

import { readProcessMemory } from "../lib/server.js";
import { ServerLog } from "../lib/server-log.js";

describe("readProcessMemory", () => {
  it("reads this process's resident size and its peak", () => {
    const memory = readProcessMemory(process.pid);
    expect(memory.rssBytes).toBeGreaterThan(1024 * 1024);
    expect(memory.peakRssBytes).toBeGreaterThanOrEqual(memory.rssBytes);
  });
});

describe("ServerLog", () => {
  it("finds entries by message and skips lines that are not JSON", () => {
    const log = new ServerLog();
    log.append(`${JSON.stringify({ msg: "earshot starting" })}\n`);
    log.append("whisper_init_state: kv self size  =    9.44 MB\n{ not json\n");
    log.append(`${JSON.stringify({ msg: "model loaded", model: "tiny.en-shape" })}\n`);
    expect(log.withMessage("model loaded")).toEqual([
      { msg: "model loaded", model: "tiny.en-shape" },
    ]);
    expect(log.withMessage("earshot starting")).toHaveLength(1);
  });

  it("joins a line split across chunks", () => {
    const log = new ServerLog();
    const line = JSON.stringify({ msg: "transcription finished", inferenceSeconds: 1.25 });
    log.append(line.slice(0, 10));
    expect(log.withMessage("transcription finished")).toHaveLength(0);
    log.append(`${line.slice(10)}\n`);
    expect(log.withMessage("transcription finished")[0]?.inferenceSeconds).toBe(1.25);
  });
});
