import { availableParallelism } from "node:os";
import path from "node:path";
import { z } from "zod";

const booleanFromString = z
  .enum(["true", "false", "1", "0", "yes", "no", "on", "off"])
  .transform((value) => ["true", "1", "yes", "on"].includes(value));

const apiKeys = z
  .string()
  .transform((value) => value.split(",").map((key) => key.trim()))
  .refine((keys) => keys.every((key) => key.length > 0), {
    message:
      "contains an empty key: set one key or several separated by commas, " +
      "or remove the variable to run without authentication",
  });

const positiveInteger = z.coerce.number().int().positive();

const modelNameList = z
  .string()
  .transform((value) => value.split(",").map((name) => name.trim()))
  .refine((names) => names.every((name) => name.length > 0), {
    message: "contains an empty name: separate model names with single commas",
  });

/** Every environment variable earshot reads, with its default. Units are in the names. */
const environmentSchema = z.object({
  API_KEY: apiKeys.optional(),
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  MODEL_DIR: z.string().min(1).default("./models"),
  DEFAULT_MODEL: z.string().min(1).default("base"),
  MODEL_DOWNLOAD: z.enum(["off", "known", "any"]).default("known"),
  HF_ENDPOINT: z.url({ protocol: /^https?$/ }).default("https://huggingface.co"),
  PRELOAD_MODELS: modelNameList.optional(),
  MODEL_IDLE_SECONDS: z.coerce.number().min(0).default(600),
  MAX_LOADED_MODELS: positiveInteger.default(2),
  DOWNLOAD_CONNECT_TIMEOUT_MS: positiveInteger.default(5_000),
  DOWNLOAD_STALL_TIMEOUT_MS: positiveInteger.default(30_000),
  MAX_UPLOAD_BYTES: positiveInteger.default(26_214_400),
  MAX_AUDIO_SECONDS: positiveInteger.default(2 * 60 * 60),
  WHISPER_THREADS: positiveInteger.optional(),
  MAX_CONCURRENT_JOBS: positiveInteger.optional(),
  MAX_QUEUED_JOBS: z.coerce.number().int().min(0).default(32),
  WHISPER_BEAM_SIZE: z.coerce.number().int().min(1).max(16).default(1),
  WHISPER_TEMPERATURE_FALLBACK: booleanFromString.default(true),
  WHISPER_MAX_SEGMENT_TOKENS: z.coerce.number().int().min(0).default(0),
  WHISPER_GPU: booleanFromString.default(false),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  FFMPEG_PATH: z.string().min(1).optional(),
  SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().min(0).default(30),
});

export type Environment = z.input<typeof environmentSchema>;

export interface Config {
  /** Accepted bearer keys; empty when authentication is off. */
  apiKeys: string[];
  host: string;
  port: number;
  /** Absolute path of the folder that contains the `ggml-NAME.bin` model files. */
  modelDir: string;
  defaultModel: string;
  /** Download policy for missing models: none, whisper.cpp's published ones, or any. */
  downloadPolicy: "off" | "known" | "any";
  /** Base URL of the Hugging Face hub or a mirror of it. */
  hubEndpoint: string;
  /** Models to download and load at start. */
  preloadModels: string[];
  /** Time after a model's last job ends before it is unloaded; 0 keeps models loaded. */
  modelIdleSeconds: number;
  /** Loaded models kept at most; past this, the least recently used idle model is unloaded. */
  maxLoadedModels: number;
  downloadConnectTimeoutMs: number;
  /** Maximum pause in a download's body before the transfer is resumed or abandoned. */
  downloadStallTimeoutMs: number;
  maxUploadBytes: number;
  /** Longest decoded audio accepted, so a small file cannot expand to days of samples. */
  maxAudioSeconds: number;
  threadsPerJob: number;
  maxConcurrentJobs: number;
  /** Jobs allowed to wait for a free slot; past this, requests get 429. */
  maxQueuedJobs: number;
  beamSize: number;
  temperatureFallback: boolean;
  /** Cap on tokens per segment; 0 means no cap. */
  maxSegmentTokens: number;
  gpu: boolean;
  logLevel: string;
  ffmpegPath: string | undefined;
  shutdownGraceSeconds: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Parses the environment into a Config. Throws ConfigError naming each invalid variable.
 *
 * Empty variables count as unset, except API_KEY: an empty API_KEY is rejected, because
 * `-e API_KEY=$KEY` with KEY unset would otherwise start a server open to anyone.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const relevant = Object.fromEntries(
    Object.keys(environmentSchema.shape).map((name) => [name, env[name]]),
  );
  for (const [name, value] of Object.entries(relevant)) {
    if (value === "" && name !== "API_KEY") relevant[name] = undefined;
  }

  const parsed = environmentSchema.safeParse(relevant);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = issue.path.join(".");
      return `${name}=${JSON.stringify(name === "API_KEY" ? "<hidden>" : relevant[name])}: ${issue.message}`;
    });
    throw new ConfigError(`Invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  return toConfig(parsed.data);
}

function toConfig(env: z.output<typeof environmentSchema>): Config {
  const cores = availableParallelism();
  // Two jobs at once keep a short clip from waiting behind a long one; large machines run up to
  // four. ggml threads spin while they wait, so jobs x threads stays within the core count.
  const defaultJobs = Math.min(4, Math.max(cores >= 2 ? 2 : 1, Math.floor(cores / 4)));
  const maxConcurrentJobs = env.MAX_CONCURRENT_JOBS ?? defaultJobs;
  const threadsPerJob = env.WHISPER_THREADS ?? Math.max(1, Math.floor(cores / maxConcurrentJobs));

  return {
    apiKeys: env.API_KEY ?? [],
    host: env.HOST,
    port: env.PORT,
    modelDir: path.resolve(env.MODEL_DIR),
    defaultModel: env.DEFAULT_MODEL,
    downloadPolicy: env.MODEL_DOWNLOAD,
    hubEndpoint: env.HF_ENDPOINT,
    preloadModels: env.PRELOAD_MODELS ?? [],
    modelIdleSeconds: env.MODEL_IDLE_SECONDS,
    maxLoadedModels: env.MAX_LOADED_MODELS,
    downloadConnectTimeoutMs: env.DOWNLOAD_CONNECT_TIMEOUT_MS,
    downloadStallTimeoutMs: env.DOWNLOAD_STALL_TIMEOUT_MS,
    maxUploadBytes: env.MAX_UPLOAD_BYTES,
    maxAudioSeconds: env.MAX_AUDIO_SECONDS,
    threadsPerJob,
    maxConcurrentJobs,
    maxQueuedJobs: env.MAX_QUEUED_JOBS,
    beamSize: env.WHISPER_BEAM_SIZE,
    temperatureFallback: env.WHISPER_TEMPERATURE_FALLBACK,
    maxSegmentTokens: env.WHISPER_MAX_SEGMENT_TOKENS,
    gpu: env.WHISPER_GPU,
    logLevel: env.LOG_LEVEL,
    ffmpegPath: env.FFMPEG_PATH,
    shutdownGraceSeconds: env.SHUTDOWN_GRACE_SECONDS,
  };
}
