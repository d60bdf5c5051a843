// One transcription from uploaded file to transcript: find the model, decode the audio, wait for
// a slot, run whisper.cpp.
import type { FastifyBaseLogger } from "fastify";
import { decodeAudio } from "../audio/decode.js";
import type { ModelPool } from "../engine/model-pool.js";
import type { JobScheduler } from "../engine/scheduler.js";
import type { ModelStore } from "../models/store.js";
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

/** Resolves the requested model to an installed one; throws 404 before any other work. */
export async function findRequestedModel(service: TranscriptionService, requested: string) {
  return service.store.find(service.store.resolveName(requested));
}

export async function transcribeFile(
  service: TranscriptionService,
  request: AudioRequest,
  file: UploadedFile,
  context: JobContext,
): Promise<Transcript> {
  const model = await findRequestedModel(service, request.model);
  service.scheduler.assertCapacity();

  const audio = await decodeAudio(file.path, {
    ffmpegPath: service.ffmpegPath,
    signal: context.signal,
    maxDurationSeconds: service.maxAudioSeconds,
    log: context.log,
  });

  return service.scheduler.run(audio.durationSeconds, context.signal, async () => {
    const lease = await service.pool.acquire(model.name, model.filePath);
    try {
      const startedAt = performance.now();
      const transcript = await lease.model.transcribe(audio.samples, {
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
          model: model.name,
          audioSeconds: Number(audio.durationSeconds.toFixed(2)),
          inferenceSeconds: Number(((performance.now() - startedAt) / 1000).toFixed(2)),
          segments: transcript.segments.length,
        },
        "transcription finished",
      );
      return transcript;
    } finally {
      lease.release();
    }
  });
}
