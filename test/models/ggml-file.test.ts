import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
  expectedTensors,
  ggmlTypes,
  inspectModelFile,
  InvalidModelFileError,
  tensorDataBytes,
  type TensorSpec,
  type WhisperHyperparameters,
} from "../../src/models/ggml-file.js";
import {
  ensureTestModels,
  testModelPath,
  testModels,
  verifyTestModel,
  writeModelFile,
} from "../../scripts/generate-test-models.js";
import { TEST_MODEL_DIR } from "../setup/test-models.js";

const REPOSITORY_ROOT = path.resolve(import.meta.dirname, "../..");
const HEADER_BYTES = 4 + 11 * 4;
const MEL_FILTER_BYTES = 8 + 80 * 201 * 4;
const VOCABULARY_OFFSET = HEADER_BYTES + MEL_FILTER_BYTES;

const largeV3: WhisperHyperparameters = {
  nVocab: 51866,
  nAudioCtx: 1500,
  nAudioState: 1280,
  nAudioHead: 20,
  nAudioLayer: 32,
  nTextCtx: 448,
  nTextState: 1280,
  nTextHead: 20,
  nTextLayer: 32,
  nMels: 128,
  ftype: 1,
};

let scratchDir: string;
let microEn: Buffer;

beforeAll(async () => {
  scratchDir = await mkdtemp(path.join(tmpdir(), "earshot-ggml-"));
  microEn = await readFile(testModelPath(TEST_MODEL_DIR, "micro.en"));
});

afterAll(async () => {
  await rm(scratchDir, { recursive: true, force: true });
});

async function writeScratch(name: string, bytes: Buffer): Promise<string> {
  const filePath = path.join(scratchDir, name);
  await writeFile(filePath, bytes);
  return filePath;
}

async function rejectionOf(filePath: string): Promise<InvalidModelFileError> {
  const error = await inspectModelFile(filePath).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(InvalidModelFileError);
  return error as InvalidModelFileError;
}

interface TensorLocation {
  spec: TensorSpec;
  headerOffset: number;
  nameOffset: number;
  dataOffset: number;
}

// The generator writes tensors in expectedTensors order after the vocabulary, so their
// offsets follow from the file size.
function locateTensors(hyperparameters: WhisperHyperparameters, fileBytes: number) {
  const specs = expectedTensors(hyperparameters);
  const headerBytes = (spec: TensorSpec) => 12 + spec.shape.length * 4 + spec.name.length;
  const tensorBytes = specs.reduce(
    (sum, spec) => sum + headerBytes(spec) + tensorDataBytes(spec),
    0,
  );

  const locations = new Map<string, TensorLocation>();
  let offset = fileBytes - tensorBytes;
  for (const spec of specs) {
    const nameOffset = offset + 12 + spec.shape.length * 4;
    const dataOffset = nameOffset + spec.name.length;
    locations.set(spec.name, { spec, headerOffset: offset, nameOffset, dataOffset });
    offset = dataOffset + tensorDataBytes(spec);
  }
  return locations;
}

function tensorAt(name: string): TensorLocation {
  const location = locateTensors(testModels["micro.en"], microEn.length).get(name);
  if (!location) throw new Error(`no tensor ${name} in micro.en`);
  return location;
}

/** Returns a copy of micro.en with `edit` applied. */
function editedMicroEn(edit: (bytes: Buffer) => void): Buffer {
  const bytes = Buffer.from(microEn);
  edit(bytes);
  return bytes;
}

function withHyperparameter(index: number, value: number): Buffer {
  return editedMicroEn((bytes) => bytes.writeInt32LE(value, 4 + index * 4));
}

function renamed(from: string, to: string): Buffer {
  expect(to.length).toBe(from.length);
  return editedMicroEn((bytes) => bytes.write(to, tensorAt(from).nameOffset, "utf8"));
}

// Byte offsets of the int32 fields that start every tensor header.
const tensorHeaderField = { dimensionCount: 0, nameLength: 4, type: 8 } as const;

function withTensorField(
  name: string,
  field: keyof typeof tensorHeaderField,
  value: number,
): Buffer {
  const offset = tensorAt(name).headerOffset + tensorHeaderField[field];
  return editedMicroEn((bytes) => bytes.writeInt32LE(value, offset));
}

const hyperparameterIndex = {
  nVocab: 0,
  nAudioCtx: 1,
  nAudioState: 2,
  nAudioHead: 3,
  nAudioLayer: 4,
  nTextCtx: 5,
  nTextState: 6,
  nTextHead: 7,
  nTextLayer: 8,
  nMels: 9,
  ftype: 10,
} as const;

// Each case: the file's bytes, and a pattern the rejection's reason must match.
const corruptions: Record<string, () => { bytes: Buffer; reason: RegExp }> = {
  "an empty file": () => ({ bytes: Buffer.alloc(0), reason: /^the file is empty$/ }),
  "a GGUF magic number": () => ({
    bytes: editedMicroEn((bytes) => bytes.write("GGUF", 0, "latin1")),
    reason: /^unexpected magic 0x46554747/,
  }),
  "a cut inside the magic number": () => ({
    bytes: microEn.subarray(0, 3),
    reason: /^ends inside the magic number$/,
  }),
  "a cut inside the hyperparameters": () => ({
    bytes: microEn.subarray(0, 30),
    reason: /^ends inside the hyperparameters$/,
  }),
  "a cut inside the mel filters": () => ({
    bytes: microEn.subarray(0, HEADER_BYTES + 1000),
    reason: /^ends inside the mel filters$/,
  }),
  "a cut inside the vocabulary": () => ({
    bytes: microEn.subarray(0, VOCABULARY_OFFSET + 200_000),
    reason: /^ends inside token \d+ of the vocabulary$/,
  }),
  "a cut inside a tensor header": () => ({
    bytes: microEn.subarray(0, tensorAt("encoder.conv1.weight").headerOffset + 6),
    reason: /^ends inside the header of tensor 1$/,
  }),
  "a cut inside a tensor name": () => ({
    bytes: microEn.subarray(0, tensorAt("encoder.conv1.weight").nameOffset + 4),
    reason: /^ends inside the header of tensor 1$/,
  }),
  "a cut inside tensor data": () => ({
    bytes: microEn.subarray(0, tensorAt("decoder.token_embedding.weight").dataOffset + 1000),
    reason: /^ends inside tensor decoder\.token_embedding\.weight$/,
  }),
  "a file one byte short": () => ({
    bytes: microEn.subarray(0, microEn.length - 1),
    reason: /^ends inside tensor decoder\.ln\.bias$/,
  }),
  "a missing last tensor": () => ({
    bytes: microEn.subarray(0, tensorAt("decoder.ln.bias").headerOffset),
    reason: /^missing tensors: decoder\.ln\.bias$/,
  }),
  "one trailing byte": () => ({
    bytes: Buffer.concat([microEn, Buffer.alloc(1)]),
    reason: /^unexpected data after the last tensor \(1 bytes\)$/,
  }),
  "40 trailing bytes": () => ({
    bytes: Buffer.concat([microEn, Buffer.alloc(40)]),
    reason: /^unexpected data after the last tensor \(40 bytes\)$/,
  }),
  "a renamed tensor": () => ({
    bytes: renamed("encoder.conv1.weight", "encoder.conv9.weight"),
    reason: /^tensor "encoder\.conv9\.weight" is not a whisper tensor$/,
  }),
  "a tensor stored twice": () => ({
    bytes: renamed("encoder.blocks.0.attn.value.weight", "encoder.blocks.0.attn.query.weight"),
    reason: /^tensor "encoder\.blocks\.0\.attn\.query\.weight" appears twice$/,
  }),
  "a transposed shape": () => ({
    // ne[0] and ne[1] swapped: same element count, wrong layout.
    bytes: editedMicroEn((bytes) => {
      const { headerOffset } = tensorAt("encoder.positional_embedding");
      bytes.writeInt32LE(1500, headerOffset + 12);
      bytes.writeInt32LE(64, headerOffset + 16);
    }),
    reason: /^tensor encoder\.positional_embedding has shape \[1500,64\] \(expected \[64,1500]\)$/,
  }),
  "five dimensions": () => ({
    bytes: withTensorField("encoder.conv1.bias", "dimensionCount", 5),
    reason: /^tensor 2 has 5 dimensions \(expected 1 to 4\)$/,
  }),
  "an empty tensor name": () => ({
    bytes: withTensorField("encoder.conv1.bias", "nameLength", 0),
    reason: /^tensor 2 has a name of 0 bytes$/,
  }),
  "a quantized type in an f16 file": () => ({
    bytes: withTensorField("decoder.token_embedding.weight", "type", ggmlTypes.q8_0.id),
    reason: /^tensor decoder\.token_embedding\.weight has type q8_0 \(expected f16\)$/,
  }),
  "an unknown tensor type": () => ({
    bytes: withTensorField("encoder.ln_post.weight", "type", 99),
    reason: /^tensor encoder\.ln_post\.weight has type unknown type id 99 \(expected f32\)$/,
  }),
  "mel filters for another FFT size": () => ({
    bytes: editedMicroEn((bytes) => bytes.writeInt32LE(200, HEADER_BYTES + 4)),
    reason: /^mel filters have 200 FFT bins \(expected 201\)$/,
  }),
  "a vocabulary larger than n_vocab": () => ({
    bytes: editedMicroEn((bytes) => bytes.writeInt32LE(60_000, VOCABULARY_OFFSET)),
    reason: /^vocabulary count 60000 is out of range 0\.\.51864 \(n_vocab\)$/,
  }),
  "a token longer than the file": () => ({
    bytes: editedMicroEn((bytes) => bytes.writeUInt32LE(0xfffffff0, VOCABULARY_OFFSET + 4)),
    reason: /^ends inside token 0 of the vocabulary$/,
  }),
  "a vocabulary without a space token": () => ({
    bytes: editedMicroEn((bytes) => {
      const space = bytes.indexOf(Buffer.from([1, 0, 0, 0, 0x20]), VOCABULARY_OFFSET);
      bytes.write("~", space + 4, "latin1");
    }),
    reason: /^the vocabulary has no single-space token/,
  }),
};

const absurdHyperparameters: [keyof typeof hyperparameterIndex, number, RegExp][] = [
  ["nVocab", -1, /^n_vocab -1 is not one of 51864, 51865, 51866$/],
  ["nVocab", 51867, /^n_vocab 51867 is not one of/],
  ["nAudioCtx", 3000, /^n_audio_ctx 3000 is not 1500$/],
  ["nTextCtx", 0, /^n_text_ctx 0 is not 448$/],
  ["nMels", 81, /^n_mels 81 is not one of 80, 128$/],
  ["nTextState", 96, /^n_text_state 96 differs from n_audio_state 64$/],
  ["nAudioHead", 0, /^n_audio_head 0 is out of range 1\.\.64$/],
  ["nAudioHead", 3, /^n_audio_state 64 is not a multiple of n_audio_head 3$/],
  ["nAudioLayer", 1_000_000, /^n_audio_layer 1000000 is out of range 1\.\.64$/],
  ["nTextLayer", 0, /^n_text_layer 0 is out of range 1\.\.64$/],
  ["ftype", 4, /^ftype 4 is not supported/],
  ["ftype", -1, /^ftype -1 is not supported/],
  ["ftype", 3008, /^ftype 3008 is not supported/],
];

describe("inspectModelFile", () => {
  it("accepts micro with its facts", async () => {
    const modelPath = testModelPath(TEST_MODEL_DIR, "micro");
    const info = await inspectModelFile(modelPath);

    expect(info.path).toBe(modelPath);
    expect(info.fileSizeBytes).toBe((await stat(modelPath)).size);
    expect(info.hyperparameters).toEqual(testModels.micro);
    expect(info.multilingual).toBe(true);
    expect(info.languageCount).toBe(99);
    expect(info.weightType).toBe("f16");
    expect(info.quantizationVersion).toBe(0);
    expect(info.sizeClass).toBe("custom");
    expect(info.tensorCount).toBe(11 + 15 + 24);
  });

  it("accepts micro.en as English-only", async () => {
    const info = await inspectModelFile(testModelPath(TEST_MODEL_DIR, "micro.en"));

    expect(info.hyperparameters).toEqual(testModels["micro.en"]);
    expect(info.multilingual).toBe(false);
    expect(info.languageCount).toBe(1);
    expect(info.fileSizeBytes).toBe(microEn.length);
  });

  it("walks a 3 GB large-v3 file without reading its weights", async () => {
    const modelPath = path.join(scratchDir, "ggml-large-v3-shape.bin");
    await writeModelFile(modelPath, largeV3, { zeroWeights: true });

    const started = performance.now();
    const info = await inspectModelFile(modelPath);
    const elapsedMs = performance.now() - started;

    expect(info.fileSizeBytes).toBeGreaterThan(3e9);
    expect(info.sizeClass).toBe("large");
    expect(info.multilingual).toBe(true);
    expect(info.languageCount).toBe(100);
    expect(info.tensorCount).toBe(11 + 32 * 15 + 32 * 24);
    // Reading this sparse file through, in 64 KiB blocks, took 10 s with dd on a 2-core machine.
    expect(elapsedMs).toBeLessThan(1000);
  });

  it.each([
    ["q4_0", 2002],
    ["q4_1", 2003],
    ["q5_0", 2008],
    ["q5_1", 2009],
    ["q8_0", 2007],
    ["f32", 0],
  ] as const)("accepts a %s file (ftype %i)", async (weightType, ftype) => {
    const modelPath = path.join(scratchDir, `ggml-micro-${weightType}.bin`);
    await writeModelFile(modelPath, { ...testModels.micro, ftype }, { zeroWeights: true });

    const info = await inspectModelFile(modelPath);

    expect(info.weightType).toBe(weightType);
    expect(info.quantizationVersion).toBe(Math.floor(ftype / 1000));
  });

  it("rejects a quantized width that splits blocks", async () => {
    const hyperparameters = { ...testModels.micro, ftype: 2007, nAudioState: 80, nTextState: 80 };
    const modelPath = path.join(scratchDir, "ggml-micro-q8_0-width-80.bin");
    await writeModelFile(modelPath, { ...hyperparameters, ftype: 0 }, { zeroWeights: true });
    const bytes = await readFile(modelPath);
    bytes.writeInt32LE(hyperparameters.ftype, 4 + hyperparameterIndex.ftype * 4);
    await writeFile(modelPath, bytes);

    const error = await rejectionOf(modelPath);

    expect(error.reason).toBe("n_audio_state 80 is not a multiple of the q8_0 block size 32");
  });

  it("rejects a missing file", async () => {
    const error = await rejectionOf(path.join(scratchDir, "no-such-model.bin"));

    expect(error.reason).toBe("file not found");
  });

  it("rejects a directory", async () => {
    const error = await rejectionOf(scratchDir);

    expect(error.reason).toBe("not a regular file");
  });

  it.each(Object.keys(corruptions))("rejects %s", async (name) => {
    const { bytes, reason } = corruptions[name]!();
    const filePath = await writeScratch(`corrupt-${name.replaceAll(/\W+/g, "-")}.bin`, bytes);

    const error = await rejectionOf(filePath);

    expect(error.reason).toMatch(reason);
    expect(error.path).toBe(filePath);
    expect(error.message).toBe(`Invalid whisper model file ${filePath}: ${error.reason}`);
  });

  it.each(absurdHyperparameters)("rejects %s = %i", async (field, value, reason) => {
    const filePath = await writeScratch(
      `hyperparameter-${field}-${value}.bin`,
      withHyperparameter(hyperparameterIndex[field], value),
    );

    const error = await rejectionOf(filePath);

    expect(error.reason).toMatch(reason);
  });
});

describe("expectedTensors", () => {
  it("lists each tensor of tiny.en once", () => {
    const tensors = expectedTensors(testModels["tiny.en-shape"]);
    const names = new Set(tensors.map((tensor) => tensor.name));

    expect(tensors).toHaveLength(11 + 4 * 15 + 4 * 24);
    expect(names.size).toBe(tensors.length);
  });

  it("keeps norms, biases and embeddings f32 in a quantized model", () => {
    const tensors = expectedTensors({ ...testModels.micro, ftype: 2009 });
    const typeOf = (name: string) => tensors.find((tensor) => tensor.name === name)?.type;

    expect(typeOf("decoder.token_embedding.weight")).toBe("q5_1");
    expect(typeOf("encoder.blocks.0.mlp.0.weight")).toBe("q5_1");
    expect(typeOf("encoder.conv1.weight")).toBe("f16");
    expect(typeOf("encoder.conv1.bias")).toBe("f32");
    expect(typeOf("encoder.positional_embedding")).toBe("f32");
    expect(typeOf("decoder.blocks.0.cross_attn_ln.weight")).toBe("f32");
  });
});

describe("ensureTestModels", () => {
  it("writes identical bytes on every run", async () => {
    const [first] = await ensureTestModels(path.join(scratchDir, "first"), ["micro"]);
    const [second] = await ensureTestModels(path.join(scratchDir, "second"), ["micro"]);

    expect(sha256(await readFile(first!))).toBe(sha256(await readFile(second!)));
  });

  it("keeps a complete file and replaces a cut one", async () => {
    const dir = path.join(scratchDir, "reuse");
    const [modelPath] = await ensureTestModels(dir, ["micro.en"]);
    const written = await stat(modelPath!);

    await ensureTestModels(dir, ["micro.en"]);
    expect((await stat(modelPath!)).mtimeMs).toBe(written.mtimeMs);

    await truncate(modelPath!, 1000);
    await ensureTestModels(dir, ["micro.en"]);
    expect((await stat(modelPath!)).size).toBe(written.size);
  });
});

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

// One thread: ggml's threads spin while they wait for each other. On 2 cores busy with other
// work, micro transcribed 11 s in 0.4-1 s with one thread and in 14-27 s with two.
const TRANSCRIBE_THREADS = 1;

describe("generated models with smart-whisper", () => {
  it.each(["micro", "micro.en"] as const)("%s transcribes printable text", async (name) => {
    const modelPath = testModelPath(TEST_MODEL_DIR, name);
    const result = await verifyTestModel(modelPath, 3, TRANSCRIBE_THREADS);

    expect(result.segments.length).toBeGreaterThan(0);
    for (const segment of result.segments) {
      expect(segment.text).not.toContain("\uFFFD");
      expect(segment.text).toMatch(/^[\x20-\x7e]*$/);
      expect(segment.to).toBeGreaterThanOrEqual(segment.from);
    }
  });

  it("gives the same output twice", async () => {
    const modelPath = testModelPath(TEST_MODEL_DIR, "micro.en");
    const first = await verifyTestModel(modelPath, 3, TRANSCRIBE_THREADS);
    const second = await verifyTestModel(modelPath, 3, TRANSCRIBE_THREADS);

    expect(second.segments).toEqual(first.segments);
  });
});

// Loads a model file with smart-whisper in a child process, which the binding may kill.
function loadInChild(modelPath: string) {
  const script = `
    const { WhisperModel } = await import("smart-whisper");
    const model = await WhisperModel.load(process.argv[1], false);
    await model.free();
    console.log("loaded");
  `;
  return spawnSync(process.execPath, ["--input-type=module", "-e", script, modelPath], {
    cwd: REPOSITORY_ROOT,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, HOME: scratchDir },
  });
}

describe("smart-whisper without the inspector", () => {
  it("loads the valid micro.en file", () => {
    const child = loadInChild(testModelPath(TEST_MODEL_DIR, "micro.en"));

    expect(child.signal).toBeNull();
    expect(child.status).toBe(0);
    expect(child.stdout.trim()).toBe("loaded");
  });

  it("loads a quantized q5_1 file", async () => {
    const modelPath = path.join(scratchDir, "ggml-micro-q5_1-random.bin");
    await writeModelFile(modelPath, { ...testModels.micro, ftype: 2009 });

    const child = loadInChild(modelPath);

    expect(child.signal).toBeNull();
    expect(child.stdout.trim()).toBe("loaded");
  });

  // Files the inspector rejects: each one kills the process that loads it.
  const fatalFiles: Record<string, () => Buffer> = {
    "an empty file": () => corruptions["an empty file"]!().bytes,
    "a GGUF magic number": () => corruptions["a GGUF magic number"]!().bytes,
    "a cut inside tensor data": () => corruptions["a cut inside tensor data"]!().bytes,
    "a renamed tensor": () => corruptions["a renamed tensor"]!().bytes,
    "an unsupported ftype": () => withHyperparameter(hyperparameterIndex.ftype, 4),
  };

  it.each(Object.keys(fatalFiles))("crashes on %s", async (name) => {
    const fileName = `child-${name.replaceAll(/\W+/g, "-")}.bin`;
    const filePath = await writeScratch(fileName, fatalFiles[name]!());
    await expect(inspectModelFile(filePath)).rejects.toThrow(InvalidModelFileError);

    const child = loadInChild(filePath);

    expect(child.stdout).not.toContain("loaded");
    expect(child.signal).toMatch(/^SIG(SEGV|ABRT)$/);
  });
});
