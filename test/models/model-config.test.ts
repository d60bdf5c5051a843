import { describe, expect, it } from "vitest";

import { ConfigError, loadConfig } from "../../src/config.js";

describe("loadConfig model settings", () => {
  it("has download and memory defaults", () => {
    const config = loadConfig({});

    expect(config.downloadPolicy).toBe("known");
    expect(config.hubEndpoint).toBe("https://huggingface.co");
    expect(config.preloadModels).toEqual([]);
    expect(config.modelIdleSeconds).toBe(600);
    expect(config.maxLoadedModels).toBe(2);
    expect(config.downloadConnectTimeoutMs).toBe(5_000);
    expect(config.downloadStallTimeoutMs).toBe(30_000);
  });

  it("reads every model variable", () => {
    const config = loadConfig({
      MODEL_DOWNLOAD: "any",
      HF_ENDPOINT: "http://127.0.0.1:8080/mirror",
      PRELOAD_MODELS: "tiny.en, owner/repo/model.bin",
      MODEL_IDLE_SECONDS: "0.5",
      MAX_LOADED_MODELS: "3",
      DOWNLOAD_CONNECT_TIMEOUT_MS: "250",
      DOWNLOAD_STALL_TIMEOUT_MS: "900",
    });

    expect(config.downloadPolicy).toBe("any");
    expect(config.hubEndpoint).toBe("http://127.0.0.1:8080/mirror");
    expect(config.preloadModels).toEqual(["tiny.en", "owner/repo/model.bin"]);
    expect(config.modelIdleSeconds).toBe(0.5);
    expect(config.maxLoadedModels).toBe(3);
    expect(config.downloadConnectTimeoutMs).toBe(250);
    expect(config.downloadStallTimeoutMs).toBe(900);
  });

  it.each([
    ["MODEL_DOWNLOAD", "sometimes"],
    ["HF_ENDPOINT", "ftp://127.0.0.1/"],
    ["HF_ENDPOINT", "not a url"],
    ["PRELOAD_MODELS", "tiny,,base"],
    ["MODEL_IDLE_SECONDS", "-1"],
    ["MAX_LOADED_MODELS", "0"],
    ["DOWNLOAD_CONNECT_TIMEOUT_MS", "1.5"],
  ])("rejects %s=%s naming the variable", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(`${name}=`);
  });
});
