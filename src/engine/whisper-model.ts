// One loaded whisper.cpp model. Each transcription gets its own whisper state inside the addon,
// so one loaded model serves concurrent jobs.
import { SAMPLE_RATE } from "../audio/decode.js";
import { ApiError } from "../errors.js";
import type { Segment, Task, Transcript, Word } from "../transcription/types.js";
import type { ModelFileInfo } from "../models/ggml-file.js";
import { languageId } from "../transcription/languages.js";
import { loadAddon, type NativeModel, type NativeParams, type NativeSegment } from "./binding.js";
import { toSegment, toTokenLogprobs, toWords } from "./segments.js";

export interface EngineSettings {
  threadsPerJob: number;
  beamSize: number;
  /** Retry a window at higher temperatures when decoding fails whisper's thresholds. */
  temperatureFallback: boolean;
  /** Cap on tokens per segment; 0 means no cap. */
  maxSegmentTokens: number;
}

export interface TranscribeOptions {
  task: Task;
  /** ISO-639-1 code; undefined means detect. */
  language?: string;
  prompt?: string;
  /** 0 to 1. */
  temperature: number;
  wordTimestamps: boolean;
  logprobs?: boolean;
  /** Called with each segment as whisper.cpp produces it. */
  onSegment?: (segment: Segment) => void;
}

export class WhisperModel {
  constructor(
    readonly name: string,
    readonly info: ModelFileInfo,
    private readonly native: NativeModel,
    private readonly settings: EngineSettings,
  ) {}

  get freed(): boolean {
    return this.native.freed;
  }

  free(): Promise<void> {
    return this.native.free();
  }

  async transcribe(samples: Float32Array, options: TranscribeOptions): Promise<Transcript> {
    assertPlayableSamples(samples);
    const durationSeconds = samples.length / SAMPLE_RATE;
    const language = this.chooseLanguage(options.language);
    const params = this.nativeParams(options, language);

    let nextId = 0;
    const nativeSegments = await this.run(samples, params, (native) => {
      options.onSegment?.(toSegment(native, nextId++, durationSeconds, options.temperature));
    });

    const segments = nativeSegments.map((native, index) =>
      toSegment(native, index, durationSeconds, options.temperature),
    );
    const transcript: Transcript = {
      task: options.task,
      language: language === "auto" ? (nativeSegments[0]?.lang ?? "en") : language,
      duration: durationSeconds,
      text: segments.map((segment) => segment.text).join("").trim(),
      segments,
    };
    if (options.wordTimestamps) {
      transcript.words = nativeSegments.flatMap((native): Word[] => toWords(native, durationSeconds));
    }
    if (options.logprobs) transcript.logprobs = nativeSegments.flatMap(toTokenLogprobs);
    return transcript;
  }

  private chooseLanguage(requested: string | undefined): string {
    if (!this.info.multilingual) {
      if (requested !== undefined && requested !== "en") {
        throw new ApiError(
          "invalid_request",
          `Model ${this.name} is English-only and cannot transcribe language '${requested}'. ` +
            "Use a multilingual model or omit language.",
          { param: "language" },
        );
      }
      // An English-only model still runs language detection when asked for "auto".
      return "en";
    }
    // Newer languages (Cantonese, from large-v3 on) have no token in older models, and
    // whisper.cpp would silently pick whatever token sits at that id.
    if (requested !== undefined && (languageId(requested) ?? 0) >= this.info.languageCount) {
      throw new ApiError(
        "invalid_request",
        `Model ${this.name} does not support language '${requested}'.`,
        { param: "language" },
      );
    }
    return requested ?? "auto";
  }

  private nativeParams(options: TranscribeOptions, language: string): Partial<NativeParams> {
    const { beamSize, threadsPerJob, temperatureFallback, maxSegmentTokens } = this.settings;
    // OpenAI's API raises the temperature only when the requested temperature is 0.
    const fallback = temperatureFallback && options.temperature === 0;
    const params: Partial<NativeParams> = {
      strategy: beamSize > 1 ? 1 : 0,
      beam_size: beamSize,
      best_of: 5,
      n_threads: threadsPerJob,
      translate: options.task === "translate",
      language,
      temperature: options.temperature,
      temperature_inc: fallback ? 0.2 : 0,
      token_timestamps: options.wordTimestamps,
      max_tokens: maxSegmentTokens,
      no_timestamps: false,
      print_progress: false,
      print_realtime: false,
      print_timestamps: false,
      print_special: false,
      format: "detail",
    };
    if (options.prompt) params.initial_prompt = options.prompt;
    return params;
  }

  private run(
    samples: Float32Array,
    params: Partial<NativeParams>,
    onSegment: (segment: NativeSegment) => void,
  ): Promise<NativeSegment[]> {
    if (this.native.freed) throw new Error(`model ${this.name} was unloaded before the job ran`);
    return new Promise((resolve, reject) => {
      // The addon reports a failed whisper_full by passing an Error to the finish callback.
      // Segments reach onSegment as copies made on the worker thread: the install edits the
      // binding so (scripts/engine/segment-snapshots.mjs), since as published it reads the
      // whisper state on the main thread while whisper_full may still be writing it.
      loadAddon().transcribe(
        this.native.handle,
        samples,
        params,
        (result) => (result instanceof Error ? reject(result) : resolve(result)),
        onSegment,
      );
    });
  }
}

/** Rejects sample arrays the addon cannot take: empty arrays invent text, NaN aborts the process. */
export function assertPlayableSamples(samples: Float32Array): void {
  if (samples.length === 0) {
    throw new ApiError("invalid_audio", "The audio file contains no audio samples.", {
      param: "file",
    });
  }
  for (let i = 0; i < samples.length; i++) {
    if (!Number.isFinite(samples[i])) {
      throw new ApiError("invalid_audio", "The audio contains invalid (non-finite) samples.", {
        param: "file",
      });
    }
  }
}
