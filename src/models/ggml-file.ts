// Structural check of whisper.cpp's ggml model files, so that earshot never hands the native
// binding a file it would fail to load: smart-whisper 0.8.1 dereferences a null context after a
// failed load and the whole process dies with SIGSEGV.
//
// The rules follow `whisper_model_load` in whisper.cpp at commit 2ef717b2, the copy that
// smart-whisper 0.8.1 bundles. They are stricter than that loader, which also accepts a file
// with no tensors at all, a tensor of another type with the same byte size, a file cut inside
// its last tensor, and up to 11 stray bytes at the end. An accepted file has the layout that
// whisper.cpp's converters and quantizer write.
import { open, type FileHandle } from "node:fs/promises";

export const GGML_FILE_MAGIC = 0x67676d6c;

/** `1 + WHISPER_N_FFT / 2`: the frequency bins of a 400-sample FFT, one mel filter row. */
export const MEL_FILTER_FFT_BINS = 201;

// The loader copies a tensor's dimensions into a 4-element array (GGML_MAX_DIMS), so a header
// declaring more than 4 would overrun it.
const MAX_TENSOR_DIMS = 4;
// The longest real name is 41 bytes ("decoder.blocks.31.cross_attn.value.weight").
const MAX_TENSOR_NAME_BYTES = 256;
const READ_WINDOW_BYTES = 64 * 1024;

/** The tensor types of published whisper.cpp models, with ggml's id and block layout. */
export const ggmlTypes = {
  f32: { id: 0, blockSize: 1, blockBytes: 4 },
  f16: { id: 1, blockSize: 1, blockBytes: 2 },
  q4_0: { id: 2, blockSize: 32, blockBytes: 18 },
  q4_1: { id: 3, blockSize: 32, blockBytes: 20 },
  q5_0: { id: 6, blockSize: 32, blockBytes: 22 },
  q5_1: { id: 7, blockSize: 32, blockBytes: 24 },
  q8_0: { id: 8, blockSize: 32, blockBytes: 34 },
} as const;

export type GgmlType = keyof typeof ggmlTypes;

// ggml's `enum ggml_ftype` values for these types. whisper.cpp also maps k-quants, bf16 and
// others, but no published whisper model uses them, and k-quant blocks of 256 values do not
// divide tiny's width of 384 as ggml's row layout requires.
const weightTypeByFtype = new Map<number, GgmlType>([
  [0, "f32"],
  [1, "f16"],
  [2, "q4_0"],
  [3, "q4_1"],
  [7, "q8_0"],
  [8, "q5_0"],
  [9, "q5_1"],
]);

// Quantizers store `GGML_QNT_VERSION * 1000 + ftype`, and the bundled ggml is at version 2.
const QUANTIZATION_VERSION_FACTOR = 1000;
const MAX_QUANTIZATION_VERSION = 2;

/** The 11 header fields of a model file, in file order, named after whisper.cpp's fields. */
export interface WhisperHyperparameters {
  nVocab: number;
  nAudioCtx: number;
  nAudioState: number;
  nAudioHead: number;
  nAudioLayer: number;
  nTextCtx: number;
  nTextState: number;
  nTextHead: number;
  nTextLayer: number;
  nMels: number;
  /** File type: the weight type's `ggml_ftype`, plus 1000 times the quantization version. */
  ftype: number;
}

/** A tensor as the loader expects it, with `shape` in ggml order (the reverse of PyTorch's). */
export interface TensorSpec {
  name: string;
  shape: number[];
  type: GgmlType;
}

// Token ids are fixed by the tokenizer: 50256 text tokens (50257 in multilingual vocabularies),
// then end-of-text, start, one token per language, task tokens and 1501 timestamps. That leaves
// 51864 for English-only models and 51865 or 51866 (99 or 100 languages) for multilingual ones;
// whisper.cpp names only 100 languages and crashes looking up a 101st.
const ENGLISH_ONLY_N_VOCAB = 51864;
const MULTILINGUAL_N_VOCAB = [51865, 51866];

// The 1501 timestamp tokens cover a 30 s window at 20 ms steps, so the audio context must be
// 1500 positions. 448 is the text context of every published model.
const N_AUDIO_CTX = 1500;
const N_TEXT_CTX = 448;
// Large models have 32 layers of width 1280 with 20 heads, well inside these bounds.
const MAX_LAYERS = 64;
const MAX_HEADS = 64;
const MAX_STATE = 4096;
const N_MELS = [80, 128];

/** Returns the weight type that a header's ftype selects, or undefined when unsupported. */
export function weightTypeOf(ftype: number): GgmlType | undefined {
  if (ftype < 0) return undefined;
  const version = Math.floor(ftype / QUANTIZATION_VERSION_FACTOR);
  if (version > MAX_QUANTIZATION_VERSION) return undefined;
  return weightTypeByFtype.get(ftype % QUANTIZATION_VERSION_FACTOR);
}

export function ggmlTypeById(id: number): GgmlType | undefined {
  return (Object.keys(ggmlTypes) as GgmlType[]).find((type) => ggmlTypes[type].id === id);
}

/** Returns why whisper.cpp cannot run a model with these hyperparameters, or undefined. */
export function validateHyperparameters(h: WhisperHyperparameters): string | undefined {
  const nVocabValues = [ENGLISH_ONLY_N_VOCAB, ...MULTILINGUAL_N_VOCAB];
  if (!nVocabValues.includes(h.nVocab)) {
    return `n_vocab ${h.nVocab} is not one of ${nVocabValues.join(", ")}`;
  }
  if (h.nAudioCtx !== N_AUDIO_CTX) return `n_audio_ctx ${h.nAudioCtx} is not ${N_AUDIO_CTX}`;
  if (h.nTextCtx !== N_TEXT_CTX) return `n_text_ctx ${h.nTextCtx} is not ${N_TEXT_CTX}`;
  if (!N_MELS.includes(h.nMels)) return `n_mels ${h.nMels} is not one of ${N_MELS.join(", ")}`;
  // The encoder's output feeds the decoder's cross-attention, so both sides share one width.
  if (h.nTextState !== h.nAudioState) {
    return `n_text_state ${h.nTextState} differs from n_audio_state ${h.nAudioState}`;
  }
  return (
    validateStack("audio", h.nAudioState, h.nAudioHead, h.nAudioLayer) ??
    validateStack("text", h.nTextState, h.nTextHead, h.nTextLayer) ??
    validateWeightType(h.ftype, h.nAudioState)
  );
}

function validateStack(side: string, state: number, heads: number, layers: number) {
  const field = (suffix: string) => `n_${side}_${suffix}`;
  if (!inRange(state, 1, MAX_STATE)) {
    return `${field("state")} ${state} is out of range 1..${MAX_STATE}`;
  }
  if (!inRange(heads, 1, MAX_HEADS)) {
    return `${field("head")} ${heads} is out of range 1..${MAX_HEADS}`;
  }
  if (!inRange(layers, 1, MAX_LAYERS)) {
    return `${field("layer")} ${layers} is out of range 1..${MAX_LAYERS}`;
  }
  if (state % heads !== 0) {
    return `${field("state")} ${state} is not a multiple of ${field("head")} ${heads}`;
  }
  return undefined;
}

function validateWeightType(ftype: number, state: number): string | undefined {
  const weightType = weightTypeOf(ftype);
  if (!weightType) return `ftype ${ftype} is not supported (${describeSupportedFtypes()})`;

  // A quantized matrix row must hold whole blocks, and the shortest rows are one state wide.
  const { blockSize } = ggmlTypes[weightType];
  if (state % blockSize !== 0) {
    return `n_audio_state ${state} is not a multiple of the ${weightType} block size ${blockSize}`;
  }
  return undefined;
}

function describeSupportedFtypes(): string {
  const types = [...weightTypeByFtype].map(([ftype, type]) => `${ftype} ${type}`);
  return `supported: ${types.join(", ")}, plus 1000 per quantization version up to 2`;
}

function inRange(value: number, min: number, max: number): boolean {
  return value >= min && value <= max;
}

/**
 * Lists the tensors whisper.cpp's loader requires for these hyperparameters, each exactly once.
 * Matrices use the ftype's weight type, convolution kernels f16 (f32 in f32 files), and
 * everything else f32.
 */
export function expectedTensors(h: WhisperHyperparameters): TensorSpec[] {
  const weightType = weightTypeOf(h.ftype);
  if (!weightType) throw new RangeError(`ftype ${h.ftype} is not supported`);
  const kernelType: GgmlType = weightType === "f32" ? "f32" : "f16";
  const state = h.nAudioState;

  const tensors: TensorSpec[] = [
    { name: "encoder.positional_embedding", shape: [state, h.nAudioCtx], type: "f32" },
    { name: "encoder.conv1.weight", shape: [3, h.nMels, state], type: kernelType },
    { name: "encoder.conv1.bias", shape: [1, state], type: "f32" },
    { name: "encoder.conv2.weight", shape: [3, state, state], type: kernelType },
    { name: "encoder.conv2.bias", shape: [1, state], type: "f32" },
  ];
  for (let layer = 0; layer < h.nAudioLayer; layer++) {
    const prefix = `encoder.blocks.${layer}.`;
    tensors.push(...attentionTensors(`${prefix}attn`, state, weightType));
    tensors.push(...mlpTensors(prefix, state, weightType));
  }
  tensors.push(...normTensors("encoder.ln_post", state));

  tensors.push(
    { name: "decoder.positional_embedding", shape: [state, h.nTextCtx], type: "f32" },
    { name: "decoder.token_embedding.weight", shape: [state, h.nVocab], type: weightType },
  );
  for (let layer = 0; layer < h.nTextLayer; layer++) {
    const prefix = `decoder.blocks.${layer}.`;
    tensors.push(...attentionTensors(`${prefix}attn`, state, weightType));
    tensors.push(...attentionTensors(`${prefix}cross_attn`, state, weightType));
    tensors.push(...mlpTensors(prefix, state, weightType));
  }
  tensors.push(...normTensors("decoder.ln", state));
  return tensors;
}

// Attention has no key bias, as in OpenAI's Whisper.
function attentionTensors(prefix: string, state: number, weightType: GgmlType): TensorSpec[] {
  const matrix = (name: string): TensorSpec => ({
    name: `${prefix}.${name}.weight`,
    shape: [state, state],
    type: weightType,
  });
  const bias = (name: string): TensorSpec => ({
    name: `${prefix}.${name}.bias`,
    shape: [state],
    type: "f32",
  });
  return [
    ...normTensors(`${prefix}_ln`, state),
    matrix("query"),
    bias("query"),
    matrix("key"),
    matrix("value"),
    bias("value"),
    matrix("out"),
    bias("out"),
  ];
}

function mlpTensors(prefix: string, state: number, weightType: GgmlType): TensorSpec[] {
  return [
    ...normTensors(`${prefix}mlp_ln`, state),
    { name: `${prefix}mlp.0.weight`, shape: [state, 4 * state], type: weightType },
    { name: `${prefix}mlp.0.bias`, shape: [4 * state], type: "f32" },
    { name: `${prefix}mlp.2.weight`, shape: [4 * state, state], type: weightType },
    { name: `${prefix}mlp.2.bias`, shape: [state], type: "f32" },
  ];
}

function normTensors(prefix: string, state: number): TensorSpec[] {
  return [
    { name: `${prefix}.weight`, shape: [state], type: "f32" },
    { name: `${prefix}.bias`, shape: [state], type: "f32" },
  ];
}

/** Returns the byte size of a tensor's data; its first dimension holds whole blocks. */
export function tensorDataBytes(spec: TensorSpec): number {
  const { blockSize, blockBytes } = ggmlTypes[spec.type];
  const elements = spec.shape.reduce((product, dimension) => product * dimension, 1);
  return (elements / blockSize) * blockBytes;
}

export type ModelSizeClass = "tiny" | "base" | "small" | "medium" | "large" | "custom";

/** Facts about a model file that whisper.cpp at commit 2ef717b2 loads. */
export interface ModelFileInfo {
  path: string;
  fileSizeBytes: number;
  hyperparameters: WhisperHyperparameters;
  /** Type of the weight matrices; norms, biases and positional embeddings stay f32. */
  weightType: GgmlType;
  /** Quantization format version stored in ftype's thousands; 0 in unquantized files. */
  quantizationVersion: number;
  /** False for English-only (`.en`) models. */
  multilingual: boolean;
  /** Languages the model can transcribe; 1 for English-only models. */
  languageCount: number;
  /** Published Whisper size with the same layer count and width, or "custom". */
  sizeClass: ModelSizeClass;
  tensorCount: number;
}

export class InvalidModelFileError extends Error {
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super(`Invalid whisper model file ${path}: ${reason}`, options);
    this.name = "InvalidModelFileError";
    this.path = path;
    this.reason = reason;
  }
}

/**
 * Reads a ggml whisper model's header, vocabulary and every tensor header, seeking past tensor
 * data, and throws InvalidModelFileError unless whisper.cpp would load the file.
 */
export async function inspectModelFile(path: string): Promise<ModelFileInfo> {
  const { handle, size } = await openModelFile(path);
  try {
    if (size === 0) throw new InvalidModelFileError(path, "the file is empty");

    const reader = new ModelFileReader(handle, size, path);
    const hyperparameters = await readHeader(reader);
    await skipMelFilters(reader, hyperparameters.nMels);
    await readVocabulary(reader, hyperparameters.nVocab);
    const tensorCount = await readTensors(reader, expectedTensors(hyperparameters));
    return describeModel(path, size, hyperparameters, tensorCount);
  } finally {
    await handle.close();
  }
}

async function openModelFile(path: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    throw new InvalidModelFileError(path, describeOpenError(error), { cause: error });
  }
  const stats = await handle.stat();
  if (!stats.isFile()) {
    await handle.close();
    throw new InvalidModelFileError(path, "not a regular file");
  }
  return { handle, size: stats.size };
}

function describeOpenError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "file not found";
  if (code === "EACCES" || code === "EPERM") return `permission denied (${code})`;
  return `cannot be opened: ${(error as Error).message}`;
}

async function readHeader(reader: ModelFileReader): Promise<WhisperHyperparameters> {
  await reader.require(4, "the magic number");
  const magic = reader.uint32();
  if (magic !== GGML_FILE_MAGIC) {
    const expected = hex(GGML_FILE_MAGIC);
    reader.reject(`unexpected magic 0x${hex(magic)} (a ggml model starts with 0x${expected})`);
  }

  await reader.require(11 * 4, "the hyperparameters");
  const hyperparameters: WhisperHyperparameters = {
    nVocab: reader.int32(),
    nAudioCtx: reader.int32(),
    nAudioState: reader.int32(),
    nAudioHead: reader.int32(),
    nAudioLayer: reader.int32(),
    nTextCtx: reader.int32(),
    nTextState: reader.int32(),
    nTextHead: reader.int32(),
    nTextLayer: reader.int32(),
    nMels: reader.int32(),
    ftype: reader.int32(),
  };
  const problem = validateHyperparameters(hyperparameters);
  if (problem) reader.reject(problem);
  return hyperparameters;
}

async function skipMelFilters(reader: ModelFileReader, nMels: number): Promise<void> {
  await reader.require(8, "the mel filter header");
  const filterMels = reader.int32();
  const fftBins = reader.int32();
  if (filterMels !== nMels) {
    reader.reject(`mel filters have ${filterMels} rows (n_mels is ${nMels})`);
  }
  if (fftBins !== MEL_FILTER_FFT_BINS) {
    reader.reject(`mel filters have ${fftBins} FFT bins (expected ${MEL_FILTER_FFT_BINS})`);
  }
  reader.skip(filterMels * fftBins * 4, "the mel filters");
}

// With `suppress_blank` (on by default), whisper.cpp's decoder looks up the token " " at the
// start of every segment and aborts the process (std::out_of_range) when there is none.
async function readVocabulary(reader: ModelFileReader, nVocab: number): Promise<void> {
  await reader.require(4, "the vocabulary count");
  const count = reader.int32();
  if (count < 0 || count > nVocab) {
    reader.reject(`vocabulary count ${count} is out of range 0..${nVocab} (n_vocab)`);
  }

  let hasSpaceToken = false;
  for (let id = 0; id < count; id++) {
    const where = `token ${id} of the vocabulary`;
    // Awaiting only to refill the window keeps 50,000 tokens to a few milliseconds.
    if (!reader.isBuffered(4)) await reader.require(4, where);
    const length = reader.uint32();
    if (length !== 1) {
      reader.skip(length, where);
      continue;
    }
    if (!reader.isBuffered(1)) await reader.require(1, where);
    if (reader.bytes(1)[0] === 0x20) hasSpaceToken = true;
  }
  if (!hasSpaceToken) reader.reject('the vocabulary has no single-space token (" ")');
}

async function readTensors(reader: ModelFileReader, expected: TensorSpec[]): Promise<number> {
  const remaining = new Map(expected.map((spec) => [spec.name, spec]));
  const seen = new Set<string>();

  while (reader.position < reader.size) {
    if (remaining.size === 0) {
      const extraBytes = reader.size - reader.position;
      reader.reject(`unexpected data after the last tensor (${extraBytes} bytes)`);
    }
    const header = await readTensorHeader(reader, seen.size);
    const spec = remaining.get(header.name);
    if (!spec) {
      const why = seen.has(header.name) ? "appears twice" : "is not a whisper tensor";
      reader.reject(`tensor ${JSON.stringify(header.name)} ${why}`);
    }
    checkTensorHeader(reader, header, spec);
    reader.skip(tensorDataBytes(spec), `tensor ${spec.name}`);
    remaining.delete(spec.name);
    seen.add(spec.name);
  }

  if (remaining.size > 0) reader.reject(`missing tensors: ${listNames([...remaining.keys()])}`);
  return seen.size;
}

interface TensorHeader {
  name: string;
  shape: number[];
  typeId: number;
}

async function readTensorHeader(reader: ModelFileReader, index: number): Promise<TensorHeader> {
  const where = `the header of tensor ${index}`;
  await reader.require(12, where);
  const dimensionCount = reader.int32();
  const nameLength = reader.int32();
  const typeId = reader.int32();
  if (dimensionCount < 1 || dimensionCount > MAX_TENSOR_DIMS) {
    reader.reject(`tensor ${index} has ${dimensionCount} dimensions (expected 1 to 4)`);
  }
  if (nameLength < 1 || nameLength > MAX_TENSOR_NAME_BYTES) {
    reader.reject(`tensor ${index} has a name of ${nameLength} bytes`);
  }

  await reader.require(dimensionCount * 4 + nameLength, where);
  const shape = Array.from({ length: dimensionCount }, () => reader.int32());
  const name = reader.bytes(nameLength).toString("utf8");
  return { name, shape, typeId };
}

function checkTensorHeader(reader: ModelFileReader, header: TensorHeader, spec: TensorSpec): void {
  const shape = JSON.stringify(header.shape);
  const expectedShape = JSON.stringify(spec.shape);
  if (shape !== expectedShape) {
    reader.reject(`tensor ${spec.name} has shape ${shape} (expected ${expectedShape})`);
  }

  const type = ggmlTypeById(header.typeId);
  if (type !== spec.type) {
    const found = type ?? `unknown type id ${header.typeId}`;
    reader.reject(`tensor ${spec.name} has type ${found} (expected ${spec.type})`);
  }
}

function describeModel(
  path: string,
  fileSizeBytes: number,
  hyperparameters: WhisperHyperparameters,
  tensorCount: number,
): ModelFileInfo {
  const multilingual = hyperparameters.nVocab !== ENGLISH_ONLY_N_VOCAB;
  return {
    path,
    fileSizeBytes,
    hyperparameters,
    // validateHyperparameters has accepted the ftype, so it names a supported type.
    weightType: weightTypeOf(hyperparameters.ftype)!,
    quantizationVersion: Math.floor(hyperparameters.ftype / QUANTIZATION_VERSION_FACTOR),
    multilingual,
    // whisper.cpp's `num_languages` for multilingual models: n_vocab - 51765 - 1.
    languageCount: multilingual ? hyperparameters.nVocab - 51766 : 1,
    sizeClass: sizeClassOf(hyperparameters),
    tensorCount,
  };
}

const publishedSizes: { sizeClass: ModelSizeClass; layers: number; state: number }[] = [
  { sizeClass: "tiny", layers: 4, state: 384 },
  { sizeClass: "base", layers: 6, state: 512 },
  { sizeClass: "small", layers: 12, state: 768 },
  { sizeClass: "medium", layers: 24, state: 1024 },
  { sizeClass: "large", layers: 32, state: 1280 },
];

// The encoder decides the class: distilled and turbo models keep the full encoder of their
// size but have fewer decoder layers.
function sizeClassOf(hyperparameters: WhisperHyperparameters): ModelSizeClass {
  const match = publishedSizes.find(
    (size) =>
      size.layers === hyperparameters.nAudioLayer && size.state === hyperparameters.nAudioState,
  );
  return match?.sizeClass ?? "custom";
}

function listNames(names: string[]): string {
  const shown = names.slice(0, 3).join(", ");
  return names.length > 3 ? `${shown} and ${names.length - 3} more` : shown;
}

function hex(value: number): string {
  return value.toString(16).padStart(8, "0");
}

/** Little-endian reads through a window of the file, with every read bounded by its size. */
class ModelFileReader {
  position = 0;
  private window = Buffer.alloc(0);
  private windowStart = 0;

  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    private readonly path: string,
  ) {}

  reject(reason: string): never {
    throw new InvalidModelFileError(this.path, reason);
  }

  isBuffered(length: number): boolean {
    const windowEnd = this.windowStart + this.window.length;
    return this.position >= this.windowStart && this.position + length <= windowEnd;
  }

  /** Makes the next `length` bytes readable, or rejects the file as ending inside `what`. */
  async require(length: number, what: string): Promise<void> {
    if (length > this.size - this.position) this.reject(`ends inside ${what}`);
    if (this.isBuffered(length)) return;

    const windowLength = Math.min(Math.max(length, READ_WINDOW_BYTES), this.size - this.position);
    const window = Buffer.alloc(windowLength);
    const { bytesRead } = await this.handle.read(window, 0, windowLength, this.position);
    if (bytesRead < length) this.reject(`ends inside ${what} (the file shrank while being read)`);
    this.window = window.subarray(0, bytesRead);
    this.windowStart = this.position;
  }

  skip(length: number, what: string): void {
    if (length > this.size - this.position) this.reject(`ends inside ${what}`);
    this.position += length;
  }

  int32(): number {
    const value = this.window.readInt32LE(this.position - this.windowStart);
    this.position += 4;
    return value;
  }

  uint32(): number {
    const value = this.window.readUInt32LE(this.position - this.windowStart);
    this.position += 4;
    return value;
  }

  bytes(length: number): Buffer {
    const offset = this.position - this.windowStart;
    this.position += length;
    return this.window.subarray(offset, offset + length);
  }
}
