// Writes whisper.cpp models in the real ggml format with random weights, so that tests and
// benchmarks run the real engine without downloading a model. The same seed gives the same bytes.
//
// Usage: npx tsx scripts/generate-test-models.ts --out DIR [--only NAME...] [--verify]
//   --out DIR    folder for DIR/ggml-NAME.bin; files that exist with the right size are kept
//   --only NAME  models to write (repeatable, or names after it); default: every model
//   --verify     load each model with smart-whisper and time one transcription of 11 s
//   --threads N  threads for --verify (default: whisper.cpp's min(4, hardware threads))
import { mkdir, open, rename, rm, stat, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

import {
  expectedTensors,
  GGML_FILE_MAGIC,
  ggmlTypes,
  MEL_FILTER_FFT_BINS,
  tensorDataBytes,
  type TensorSpec,
  type WhisperHyperparameters,
} from "../src/models/ggml-file.js";

const SEED = 0x5eed_2024;

const tinyShape = {
  nAudioCtx: 1500,
  nAudioState: 384,
  nAudioHead: 6,
  nAudioLayer: 4,
  nTextCtx: 448,
  nTextState: 384,
  nTextHead: 6,
  nTextLayer: 4,
  nMels: 80,
  ftype: 1,
};
const microShape = {
  ...tinyShape,
  nAudioState: 64,
  nAudioHead: 1,
  nAudioLayer: 1,
  nTextState: 64,
  nTextHead: 1,
  nTextLayer: 1,
};

/** Shapes of the generated models. n_vocab 51864 makes a model English-only. */
export const testModels = {
  micro: { ...microShape, nVocab: 51865 },
  "micro.en": { ...microShape, nVocab: 51864 },
  "tiny.en-shape": { ...tinyShape, nVocab: 51864 },
} satisfies Record<string, WhisperHyperparameters>;

export type TestModelName = keyof typeof testModels;

export function testModelPath(dir: string, name: TestModelName): string {
  return path.join(dir, `ggml-${name}.bin`);
}

/**
 * Writes each named model into `dir` unless a file of the expected size is already there, and
 * returns their paths in the order of `names`.
 */
export async function ensureTestModels(
  dir: string,
  names: readonly TestModelName[],
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (const name of names) {
    const modelPath = testModelPath(dir, name);
    const hyperparameters = testModels[name];
    if ((await fileSize(modelPath)) !== modelFileBytes(hyperparameters)) {
      await writeModelFile(modelPath, hyperparameters);
    }
    paths.push(modelPath);
  }
  return paths;
}

async function fileSize(filePath: string): Promise<number | undefined> {
  try {
    return (await stat(filePath)).size;
  } catch {
    return undefined;
  }
}

/** Returns the byte size of the file writeModelFile produces for these hyperparameters. */
function modelFileBytes(hyperparameters: WhisperHyperparameters): number {
  const header = 4 + 11 * 4;
  const melFilters = 8 + hyperparameters.nMels * MEL_FILTER_FFT_BINS * 4;
  const vocabulary = encodeVocabulary(textTokenCount(hyperparameters)).length;
  const tensors = expectedTensors(hyperparameters).reduce(
    (total, spec) => total + encodeTensorHeader(spec).length + tensorDataBytes(spec),
    0,
  );
  return header + melFilters + vocabulary + tensors;
}

export interface ModelWriteOptions {
  /** Seed of the random weights. ensureTestModels and the command line use the default. */
  seed?: number;
  /**
   * Leaves every tensor's data as a hole in a sparse file, which reads as zeros. It writes a
   * full-size large model in milliseconds, for tests that only read the structure.
   */
  zeroWeights?: boolean;
}

/**
 * Writes a model with random weights. The file appears under its name only when complete, so a
 * reader never sees half a model.
 */
export async function writeModelFile(
  modelPath: string,
  hyperparameters: WhisperHyperparameters,
  options: ModelWriteOptions = {},
): Promise<void> {
  const partialPath = `${modelPath}.${process.pid}.partial`;
  const file = await open(partialPath, "w");
  try {
    await writeModel(file, hyperparameters, options);
  } catch (error) {
    await file.close();
    await rm(partialPath, { force: true });
    throw error;
  }
  await file.close();
  await rename(partialPath, modelPath);
}

async function writeModel(
  file: FileHandle,
  hyperparameters: WhisperHyperparameters,
  { seed = SEED, zeroWeights = false }: ModelWriteOptions,
): Promise<void> {
  let position = 0;
  const append = async (bytes: Buffer) => {
    await file.write(bytes, 0, bytes.length, position);
    position += bytes.length;
  };

  await append(encodeHeader(hyperparameters));
  await append(encodeMelFilters(hyperparameters.nMels));
  await append(encodeVocabulary(textTokenCount(hyperparameters)));
  for (const [index, spec] of expectedTensors(hyperparameters).entries()) {
    await append(encodeTensorHeader(spec));
    if (zeroWeights) position += tensorDataBytes(spec);
    else await append(randomTensorData(spec, seed + index));
  }
  await file.truncate(position);
}

function encodeHeader(h: WhisperHyperparameters): Buffer {
  const fields = [h.nVocab, h.nAudioCtx, h.nAudioState, h.nAudioHead, h.nAudioLayer];
  fields.push(h.nTextCtx, h.nTextState, h.nTextHead, h.nTextLayer, h.nMels, h.ftype);
  const buffer = Buffer.alloc(4 + fields.length * 4);
  buffer.writeUInt32LE(GGML_FILE_MAGIC, 0);
  fields.forEach((value, index) => buffer.writeInt32LE(value, 4 + index * 4));
  return buffer;
}

// Whisper's mel filters for 16 kHz audio and a 400-sample FFT: triangles spaced on the Slaney
// mel scale (linear below 1 kHz, logarithmic above), each scaled to unit area.
function encodeMelFilters(nMels: number): Buffer {
  const sampleRate = 16_000;
  const binHz = sampleRate / ((MEL_FILTER_FFT_BINS - 1) * 2);
  const edges = Array.from({ length: nMels + 2 }, (_, index) =>
    melToHz((index * hzToMel(sampleRate / 2)) / (nMels + 1)),
  );

  const buffer = Buffer.alloc(8 + nMels * MEL_FILTER_FFT_BINS * 4);
  buffer.writeInt32LE(nMels, 0);
  buffer.writeInt32LE(MEL_FILTER_FFT_BINS, 4);
  for (let mel = 0; mel < nMels; mel++) {
    const [low, centre, high] = [edges[mel]!, edges[mel + 1]!, edges[mel + 2]!];
    for (let bin = 0; bin < MEL_FILTER_FFT_BINS; bin++) {
      const hz = bin * binHz;
      const rise = (hz - low) / (centre - low);
      const fall = (high - hz) / (high - centre);
      const weight = Math.max(0, Math.min(rise, fall)) * (2 / (high - low));
      buffer.writeFloatLE(weight, 8 + (mel * MEL_FILTER_FFT_BINS + bin) * 4);
    }
  }
  return buffer;
}

const SLANEY_HZ_PER_MEL = 200 / 3;
const SLANEY_LOG_STEP = Math.log(6.4) / 27;

function hzToMel(hz: number): number {
  if (hz < 1000) return hz / SLANEY_HZ_PER_MEL;
  return 1000 / SLANEY_HZ_PER_MEL + Math.log(hz / 1000) / SLANEY_LOG_STEP;
}

function melToHz(mel: number): number {
  const linearMels = 1000 / SLANEY_HZ_PER_MEL;
  if (mel < linearMels) return mel * SLANEY_HZ_PER_MEL;
  return 1000 * Math.exp((mel - linearMels) * SLANEY_LOG_STEP);
}

// Files store only the text tokens; whisper.cpp names the special tokens that follow itself.
function textTokenCount(hyperparameters: WhisperHyperparameters): number {
  return hyperparameters.nVocab === 51864 ? 50256 : 50257;
}

const vocabularyCache = new Map<number, Buffer>();

function encodeVocabulary(count: number): Buffer {
  const cached = vocabularyCache.get(count);
  if (cached) return cached;

  const tokens = textTokens(count).map((token) => Buffer.from(token, "utf8"));
  const buffer = Buffer.alloc(4 + tokens.reduce((total, token) => total + 4 + token.length, 0));
  buffer.writeInt32LE(count, 0);
  let offset = 4;
  for (const token of tokens) {
    offset = buffer.writeUInt32LE(token.length, offset);
    offset += token.copy(buffer, offset);
  }
  vocabularyCache.set(count, buffer);
  return buffer;
}

const CONSONANTS = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v"];
const CLUSTERS = ["br", "ch", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr", "w"];
const VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "ou", "oo"];
const CODAS = ["", "", "", "n", "r", "s", "t", "l", "ng", "nd", "st", "ck"];

/**
 * Returns text pieces shaped like GPT-2's byte-level BPE tokens, all printable ASCII. Ids 0-93
 * are the characters "!" to "~" as in GPT-2, and id 220 is a single space, which whisper.cpp
 * requires. The rest are distinct word pieces, most with a leading space.
 */
function textTokens(count: number): string[] {
  const random = createRandom(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const syllable = () => pick(random() < 0.7 ? CONSONANTS : CLUSTERS) + pick(VOWELS) + pick(CODAS);

  const tokens = Array.from({ length: 94 }, (_, index) => String.fromCharCode(33 + index));
  const used = new Set(tokens);
  while (tokens.length < count) {
    if (tokens.length === 220) {
      tokens.push(" ");
      continue;
    }
    let piece = syllable();
    if (random() < 0.4) piece += syllable();
    if (random() < 0.1) piece = piece[0]!.toUpperCase() + piece.slice(1);
    if (random() < 0.6) piece = ` ${piece}`;
    if (used.has(piece)) continue;
    used.add(piece);
    tokens.push(piece);
  }
  return tokens;
}

function encodeTensorHeader(spec: TensorSpec): Buffer {
  const name = Buffer.from(spec.name, "utf8");
  const buffer = Buffer.alloc(12 + spec.shape.length * 4 + name.length);
  buffer.writeInt32LE(spec.shape.length, 0);
  buffer.writeInt32LE(name.length, 4);
  buffer.writeInt32LE(ggmlTypes[spec.type].id, 8);
  spec.shape.forEach((dimension, index) => buffer.writeInt32LE(dimension, 12 + index * 4));
  name.copy(buffer, 12 + spec.shape.length * 4);
  return buffer;
}

// Norm gains start at 1 and other values are uniform in ±limit, with matrices scaled by
// 1/sqrt(inputs) so activations keep their size through the layers and decoding stays finite.
function randomTensorData(spec: TensorSpec, seed: number): Buffer {
  const random = createRandom(seed);
  const elements = spec.shape.reduce((product, dimension) => product * dimension, 1);
  const isNormGain = /(_ln|ln_post|decoder\.ln)\.weight$/.test(spec.name);
  const inputs = spec.name.includes("conv") ? spec.shape[0]! * spec.shape[1]! : spec.shape[0]!;
  const isMatrix = spec.shape.length >= 2 && !spec.name.endsWith(".bias");
  const limit = isMatrix ? 1 / Math.sqrt(inputs) : 0.02;
  const value = () => (isNormGain ? 1 : 0) + (random() * 2 - 1) * limit;

  if (spec.type === "f32") {
    const values = Float32Array.from({ length: elements }, value);
    return Buffer.from(values.buffer);
  }
  if (spec.type === "f16") {
    const values = new Uint16Array(elements);
    for (let index = 0; index < elements; index++) values[index] = toFloat16Bits(value());
    return Buffer.from(values.buffer);
  }
  return randomQuantizedBlocks(spec, random);
}

// Each ggml block of these types starts with one f16 scale (two for the _1 types: scale and
// minimum), and every bit pattern of the remaining quant bytes is valid.
function randomQuantizedBlocks(spec: TensorSpec, random: () => number): Buffer {
  const { blockBytes } = ggmlTypes[spec.type];
  const scaleCount = spec.type.endsWith("_1") ? 2 : 1;
  const buffer = Buffer.alloc(tensorDataBytes(spec));
  for (let offset = 0; offset < buffer.length; offset += blockBytes) {
    for (let scale = 0; scale < scaleCount; scale++) {
      buffer.writeUInt16LE(toFloat16Bits((random() * 2 - 1) * 0.01), offset + scale * 2);
    }
    for (let byte = offset + scaleCount * 2; byte < offset + blockBytes; byte++) {
      buffer[byte] = Math.floor(random() * 256);
    }
  }
  return buffer;
}

const float32 = new Float32Array(1);
const float32Bits = new Uint32Array(float32.buffer);

/** Converts to IEEE 754 half precision, rounding to nearest. Magnitudes must stay below 65504. */
function toFloat16Bits(value: number): number {
  float32[0] = value;
  const bits = float32Bits[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  if (exponent <= 0) return sign; // Below half's normal range: flush to zero.
  const mantissa = bits & 0x7fffff;
  const rounded = (exponent << 10) + (mantissa >>> 13) + ((mantissa >>> 12) & 1);
  return sign | rounded;
}

/** Marsaglia's xorshift32, returning uniform values in [0, 1). A zero seed becomes 1. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4294967296;
  };
}

const SAMPLE_RATE = 16_000;

// Greedy decoding with a token cap: random weights may never emit end-of-text, and temperature
// fallback would rerun every window at higher temperatures.
const verificationParams = {
  strategy: 0, // WHISPER_SAMPLING_GREEDY
  language: "en",
  max_tokens: 32,
  temperature_inc: 0,
  format: "simple",
} as const;

/**
 * Loads a model with smart-whisper, transcribes `seconds` of synthetic audio once, and returns
 * the load and transcription times in milliseconds with the segments. `threads` defaults to
 * whisper.cpp's min(4, hardware threads).
 */
export async function verifyTestModel(modelPath: string, seconds: number, threads?: number) {
  const { WhisperModel, binding } = await import("smart-whisper");
  const loadStart = performance.now();
  const model = await WhisperModel.load(modelPath, false);
  const loadMs = performance.now() - loadStart;
  try {
    const samples = syntheticAudio(seconds);
    const params = threads ? { ...verificationParams, n_threads: threads } : verificationParams;
    const transcribeStart = performance.now();
    const segments = await new Promise<{ from: number; to: number; text: string }[]>(
      (resolve, reject) => {
        const finish = (results: unknown) =>
          results instanceof Error ? reject(results) : resolve(results as never);
        binding.transcribe(model.handle!, samples, params, finish, () => {});
      },
    );
    return { loadMs, transcribeMs: performance.now() - transcribeStart, segments };
  } finally {
    await model.free();
  }
}

// A vowel-like 140 Hz tone with harmonics, switched on and off four times a second.
function syntheticAudio(seconds: number): Float32Array {
  const samples = new Float32Array(Math.round(seconds * SAMPLE_RATE));
  for (let index = 0; index < samples.length; index++) {
    const time = index / SAMPLE_RATE;
    const envelope = Math.sin(Math.PI * 4 * time) ** 2;
    const tone = [1, 2, 3, 5].reduce(
      (sum, harmonic) => sum + Math.sin(2 * Math.PI * 140 * harmonic * time) / harmonic,
      0,
    );
    samples[index] = 0.2 * envelope * tone;
  }
  return samples;
}

interface CommandLine {
  outDir: string;
  names: TestModelName[];
  verify: boolean;
  threads: number | undefined;
}

function parseCommandLine(): CommandLine {
  const { values, positionals } = parseArgs({
    options: {
      out: { type: "string" },
      only: { type: "string", multiple: true },
      verify: { type: "boolean", default: false },
      threads: { type: "string" },
    },
    allowPositionals: true,
  });
  if (!values.out) throw new Error("--out DIR is required: the folder to write models into");

  const requested = [...(values.only ?? []), ...positionals];
  const names = requested.length > 0 ? requested : Object.keys(testModels);
  const unknown = names.filter((name) => !(name in testModels));
  if (unknown.length > 0) {
    const known = Object.keys(testModels).join(", ");
    throw new Error(`unknown model ${unknown.join(", ")}: choose from ${known}`);
  }

  const threads = values.threads === undefined ? undefined : Number(values.threads);
  if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) {
    throw new Error(`--threads must be a positive integer, got ${values.threads}`);
  }
  return { outDir: values.out, names: names as TestModelName[], verify: values.verify, threads };
}

async function main(): Promise<void> {
  const commandLine = parseCommandLine();
  const paths = await ensureTestModels(commandLine.outDir, commandLine.names);
  for (const modelPath of paths) {
    console.log(modelPath);
    if (!commandLine.verify) continue;

    const result = await verifyTestModel(modelPath, 11, commandLine.threads);
    const text = result.segments.map((segment) => segment.text).join("");
    console.log(
      `  loaded in ${result.loadMs.toFixed(0)} ms, transcribed 11 s in ` +
        `${result.transcribeMs.toFixed(0)} ms: ${result.segments.length} segments, ` +
        `${JSON.stringify(text.slice(0, 60))}`,
    );
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
