import { describe, expect, it } from "vitest";

import { parseBenchOptions } from "../lib/options.js";

describe("parseBenchOptions", () => {
  it("runs the full plan by default", () => {
    const options = parseBenchOptions([]);
    expect(options).not.toBe("help");
    if (options === "help") return;
    expect(options.plan.mode).toBe("full");
    expect(options.threads).toBeGreaterThan(0);
  });

  it("selects the quick plan", () => {
    const options = parseBenchOptions(["--quick", "--threads", "3"]);
    if (options === "help") throw new Error("expected options, got help");
    expect(options.plan.mode).toBe("quick");
    expect(options.threads).toBe(3);
  });

  it("runs the working tree unless a server ref is given", () => {
    const fromTree = parseBenchOptions([]);
    const fromCommit = parseBenchOptions(["--server-ref", "HEAD"]);
    if (fromTree === "help" || fromCommit === "help") throw new Error("expected options");
    expect(fromTree.serverRef).toBeUndefined();
    expect(fromCommit.serverRef).toBe("HEAD");
  });

  it("rejects a thread count that is not a positive integer", () => {
    expect(() => parseBenchOptions(["--threads", "0"])).toThrow(/--threads/);
    expect(() => parseBenchOptions(["--threads", "two"])).toThrow(/--threads/);
  });

  it("rejects an unknown option", () => {
    expect(() => parseBenchOptions(["--fast"])).toThrow(/fast/);
  });

  it("returns help for --help", () => {
    expect(parseBenchOptions(["--help"])).toBe("help");
  });
});
