import { describe, expect, it } from "vitest";

import {
  modelFromFileName,
  parseModelId,
  PUBLISHED_MODELS,
} from "../../src/models/model-ids.js";

describe("parseModelId", () => {
  it("maps a published name to ggml-NAME.bin", () => {
    const model = parseModelId("large-v3-turbo-q5_0");

    expect(model?.id).toBe("large-v3-turbo-q5_0");
    expect(model?.fileName).toBe("ggml-large-v3-turbo-q5_0.bin");
    expect(model?.published).toBe(true);
    expect(model?.hubFile).toEqual({
      repository: "ggerganov/whisper.cpp",
      fileName: "ggml-large-v3-turbo-q5_0.bin",
    });
  });

  it("marks other names as unpublished", () => {
    const model = parseModelId("micro");

    expect(model?.fileName).toBe("ggml-micro.bin");
    expect(model?.published).toBe(false);
    expect(model?.hubFile?.repository).toBe("ggerganov/whisper.cpp");
  });

  it("maps a .bin name to that file, with no hub source", () => {
    const model = parseModelId("my-finetune.q5.bin");

    expect(model?.id).toBe("my-finetune.q5.bin");
    expect(model?.fileName).toBe("my-finetune.q5.bin");
    expect(model?.hubFile).toBeUndefined();
  });

  it("flattens owner/repo/file.bin into one file name", () => {
    const model = parseModelId("some-owner/whisper-ggml_2/ggml-model--q5.bin");

    expect(model?.id).toBe("some-owner/whisper-ggml_2/ggml-model--q5.bin");
    expect(model?.fileName).toBe("hf--some-owner--whisper-ggml_2--ggml-model--q5.bin");
    expect(model?.hubFile).toEqual({
      repository: "some-owner/whisper-ggml_2",
      fileName: "ggml-model--q5.bin",
    });
    expect(model?.published).toBe(false);
  });

  it.each([
    ["ggml-base.bin", "base"],
    ["ggerganov/whisper.cpp/ggml-base.bin", "base"],
    ["hf--owner--repo--model.bin", "owner/repo/model.bin"],
  ])("gives %s the canonical id %s", (requested, id) => {
    expect(parseModelId(requested)?.id).toBe(id);
  });

  it.each([
    ["a parent folder", "../base"],
    ["a parent folder inside a name", "base..en"],
    ["an absolute path", "/etc/passwd"],
    ["a nested escape", "base/../../../etc/passwd"],
    ["an encoded slash", "..%2F..%2Fbase"],
    ["a backslash", "..\\base"],
    ["a NUL byte", "base\u0000"],
    ["a leading dot", ".hidden"],
    ["an empty id", ""],
    ["a space", "base en"],
    ["a hub id with a parent folder as repo", "owner/../model.bin"],
    ["a hub id with a parent folder as file", "owner/repo/..bin"],
    ["a hub id with '--' in the owner", "own--er/repo/model.bin"],
    ["a hub id whose file is not .bin", "owner/repo/model.gguf"],
    ["a hub id with four parts", "owner/repo/sub/model.bin"],
    ["a hub id with an empty owner", "/repo/model.bin"],
    ["a name too long for a file system", "a".repeat(251)],
  ])("rejects %s", (_case, id) => {
    expect(parseModelId(id)).toBeUndefined();
  });
});

describe("modelFromFileName", () => {
  it.each([
    ["ggml-base.en.bin", "base.en"],
    ["custom.bin", "custom.bin"],
    ["hf--owner--repo--model.bin", "owner/repo/model.bin"],
    ["ggml-model.bin.bin", "ggml-model.bin.bin"],
    ["hf--ggerganov--whisper.cpp--ggml-base.bin", "hf--ggerganov--whisper.cpp--ggml-base.bin"],
  ])("reads %s as %s, and the id maps back to the file", (fileName, id) => {
    const model = modelFromFileName(fileName);

    expect(model?.id).toBe(id);
    expect(model?.fileName).toBe(fileName);
    expect(parseModelId(id)?.fileName).toBe(fileName);
  });

  it.each(["ggml-base.bin.part", "notes.txt", ".ggml-base.bin", "a b.bin"])(
    "ignores %s",
    (fileName) => {
      expect(modelFromFileName(fileName)).toBeUndefined();
    },
  );
});

describe("PUBLISHED_MODELS", () => {
  it("contains every size and its quantized files", () => {
    for (const name of [
      "tiny",
      "tiny.en",
      "base",
      "base.en",
      "small",
      "small.en",
      "medium",
      "medium.en",
      "large-v1",
      "large-v2",
      "large-v3",
      "large-v3-turbo",
      "large-v3-turbo-q5_0",
      "tiny.en-q5_1",
      "medium-q8_0",
    ]) {
      expect(PUBLISHED_MODELS).toContain(name);
    }
    expect(new Set(PUBLISHED_MODELS).size).toBe(PUBLISHED_MODELS.length);
  });
});
