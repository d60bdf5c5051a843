import { availableParallelism } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";

describe("loadConfig", () => {
  it("applies the defaults", () => {
    const config = loadConfig({});

    expect(config.apiKeys).toEqual([]);
    expect(config.host).toBe("127.0.0.1");
    expect(config.port).toBe(8000);
    expect(config.modelDir).toBe(path.resolve("models"));
    expect(config.defaultModel).toBe("base");
    expect(config.maxUploadBytes).toBe(26_214_400);
    expect(config.maxConcurrentJobs).toBeGreaterThanOrEqual(1);
    expect(config.threadsPerJob).toBeGreaterThanOrEqual(1);
  });

  it("splits API_KEY on commas and trims each key", () => {
    expect(loadConfig({ API_KEY: "one, two ,three" }).apiKeys).toEqual(["one", "two", "three"]);
  });

  it.each([
    ["an empty API_KEY", { API_KEY: "" }, "API_KEY"],
    ["an empty key in the list", { API_KEY: "one,,two" }, "API_KEY"],
    ["a port out of range", { PORT: "70000" }, "PORT"],
    ["a port that is not a number", { PORT: "http" }, "PORT"],
    ["a zero upload limit", { MAX_UPLOAD_BYTES: "0" }, "MAX_UPLOAD_BYTES"],
    ["a fractional thread count", { WHISPER_THREADS: "1.5" }, "WHISPER_THREADS"],
    ["an unknown log level", { LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    ["a boolean that is not one", { WHISPER_GPU: "maybe" }, "WHISPER_GPU"],
  ])("rejects %s, naming the variable", (_case, env, variable) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(variable);
  });

  it("never shows the API key in its error", () => {
    expect(() => loadConfig({ API_KEY: "secret-value,", PORT: "x" })).toThrow(ConfigError);
    try {
      loadConfig({ API_KEY: "secret-value,", PORT: "x" });
    } catch (error) {
      expect(String(error)).not.toContain("secret-value");
    }
  });

  it("treats other empty variables as unset", () => {
    expect(loadConfig({ PORT: "", HOST: "" }).port).toBe(8000);
  });

  it("keeps jobs times threads within the core count by default", () => {
    const config = loadConfig({});

    const cores = availableParallelism();
    expect(config.maxConcurrentJobs * config.threadsPerJob).toBeLessThanOrEqual(
      Math.max(cores, config.maxConcurrentJobs),
    );
  });
});
