// One transcription from uploaded file to transcript: find the model, wait for a slot, decode
// the audio, run whisper.cpp.
import type { FastifyBaseLogger } from "fastify";
import { decodeAudio, type DecodedAudio } from "../audio/decode.js";
import type { ModelLease, ModelPool } from "../engine/model-pool.js";
import type { JobScheduler } from "../engine/scheduler.js";
import type { InstalledModel, ModelStore } from "../models/store.js";
import type { UploadedFile } from "../upload/form.js";
import type { AudioRequest } from "./request.js";
import type { Segment, Transcript } from "./types.js";

export interface TranscriptionService {
  store: ModelStore;
  pool: ModelPool;
  scheduler: JobScheduler;
  ffmpegPath: string;
  maxAudioSeconds: number;
}

export interface JobContext {
  log: FastifyBaseLogger;
  /** Aborts when the client goes away: ffmpeg is killed and a queued job is dropped. */
  signal: AbortSignal;
  onSegment?: (segment: Segment) => void;
  /** Called once the upload is decoded and no longer needed, so it can be deleted early. */
  onDecoded?: () => Promise<void>;
}

/**
 * Returns the requested model, downloading it first when it is missing and MODEL_DOWNLOAD allows
 * it. Throws 404 for an unknown or forbidden model before any other work.
 */
export async function findRequestedModel(
  service: TranscriptionService,
  requested: string,
  signal?: AbortSignal,
): Promise<InstalledModel> {
  return service.store.ensure(service.store.resolve(requested), { signal });
}

/**
 * Rough audio length of an upload before decoding, for ordering waiting jobs: the upload's size
 * at 128 kbit/s, a common rate for compressed speech. Uncompressed WAV counts as longer than it
 * is, which only delays it behind compressed files of similar length.
 */
export function estimateAudioSeconds(sizeBytes: number): number {
  const bytesPerSecond = 128_000 / 8;
  return sizeBytes / bytesPerSecond;
}

export async function transcribeFile(
  service: TranscriptionService,
  request: AudioRequest,
  file: UploadedFile,
  context: JobContext,
): Promise<Transcript> {
  const model = await findRequestedModel(service, request.model, context.signal);
  // Leased at once, with no await in between, so that a DELETE cannot remove the file first.
  const lease = service.pool.lease(model.id, model.filePath);
  try {
    // Decoding runs inside the job's slot: a waiting job holds only its upload on disk, never
    // its decoded samples (0.46 GB for 2 hours of audio), and at most one ffmpeg runs per slot.
    const estimatedSeconds = estimateAudioSeconds(file.sizeBytes);
    return await service.scheduler.run(estimatedSeconds, context.signal, async () => {
      const audio = await decodeAudio(file.path, {
        ffmpegPath: service.ffmpegPath,
        signal: context.signal,
        maxDurationSeconds: service.maxAudioSeconds,
        log: context.log,
      });
      await context.onDecoded?.();
      return runWhisper(audio, lease, model.id, request, context);
    });
  } finally {
    lease.release();
  }
}

async function runWhisper(
  audio: DecodedAudio,
  lease: ModelLease,
  modelId: string,
  request: AudioRequest,
  context: JobContext,
): Promise<Transcript> {
  const whisper = await lease.load();
  const startedAt = performance.now();
  const transcript = await whisper.transcribe(audio.samples, {
    task: request.task,
    language: request.language,
    prompt: request.prompt,
    temperature: request.temperature,
    wordTimestamps: request.wordTimestamps,
    logprobs: request.logprobs,
    onSegment: context.onSegment,
  });
  context.log.info(
    {
      model: modelId,
      audioSeconds: Number(audio.durationSeconds.toFixed(2)),
      inferenceSeconds: Number(((performance.now() - startedAt) / 1000).toFixed(2)),
      segments: transcript.segments.length,
      clientConnected: !context.signal.aborted,
    },
    "transcription finished",
  );
  return transcript;
}
