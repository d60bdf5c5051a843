import { describe, expect, it } from "vitest";

import { runCommand } from "../lib/process.js";

describe("runCommand", () => {
  it("captures stdout and the wall time", async () => {
    const result = await runCommand("sh", ["-c", "echo hello"], { timeoutMs: 5000 });
    expect(result.stdout.toString("utf8")).toBe("hello\n");
    expect(result.wallMs).toBeGreaterThan(0);
  });

  it("rejects a non-zero exit with the stderr tail", async () => {
    const failing = runCommand("sh", ["-c", "echo broken >&2; exit 3"], { timeoutMs: 5000 });
    await expect(failing).rejects.toThrow(/exited with 3:\nbroken/);
  });

  it("kills a command that runs past its limit", async () => {
    const started = Date.now();
    await expect(runCommand("sleep", ["10"], { timeoutMs: 200 })).rejects.toThrow(/timed out/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("rejects a command that does not exist", async () => {
    const missing = runCommand("no-such-command-here", [], { timeoutMs: 5000 });
    await expect(missing).rejects.toThrow(/failed to start/);
  });
});
