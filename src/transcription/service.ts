// One transcription from uploaded file to transcript: find the model, decode the audio, wait for
// a slot, run whisper.cpp.
import type { FastifyBaseLogger } from "fastify";
import { decodeAudio } from "../audio/decode.js";
import type { ModelPool } from "../engine/model-pool.js";
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
    service.scheduler.assertCapacity();
    const audio = await decodeAudio(file.path, {
      ffmpegPath: service.ffmpegPath,
      signal: context.signal,
      maxDurationSeconds: service.maxAudioSeconds,
      log: context.log,
    });

    return await service.scheduler.run(audio.durationSeconds, context.signal, async () => {
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
          model: model.id,
          audioSeconds: Number(audio.durationSeconds.toFixed(2)),
          inferenceSeconds: Number(((performance.now() - startedAt) / 1000).toFixed(2)),
          segments: transcript.segments.length,
        },
        "transcription finished",
      );
      return transcript;
    });
  } finally {
    lease.release();
  }
}
