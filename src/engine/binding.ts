// Typed access to smart-whisper's native addon.
//
// The addon is loaded directly instead of through the package's entry point, because importing
// the package creates ~/.smart-whisper for its model downloader (which fails on a read-only home)
// and brings an offload timer that keeps the process alive. earshot manages models itself.
import { createRequire } from "node:module";
import path from "node:path";

/** Parameters passed through to whisper.cpp's `whisper_full_params`. Unset fields keep defaults. */
export interface NativeParams {
  strategy: 0 | 1;
  n_threads: number;
  translate: boolean;
  no_context: boolean;
  no_timestamps: boolean;
  single_segment: boolean;
  print_special: boolean;
  print_progress: boolean;
  print_realtime: boolean;
  print_timestamps: boolean;
  token_timestamps: boolean;
  max_tokens: number;
  initial_prompt: string;
  language: string;
  suppress_blank: boolean;
  temperature: number;
  temperature_inc: number;
  best_of: number;
  beam_size: number;
  format: "simple" | "detail";
}

export interface NativeToken {
  text: string;
  id: number;
  /** Probability of the token, 0 to 1. */
  p: number;
  /** Token start in milliseconds; present with `token_timestamps`. */
  from?: number;
  to?: number;
}

export interface NativeSegment {
  /** Milliseconds from the start of the audio. */
  from: number;
  to: number;
  text: string;
  lang: string;
  confidence: number;
  tokens: NativeToken[];
}

export interface NativeModel {
  readonly handle: unknown;
  readonly freed: boolean;
  free(): Promise<void>;
}

interface NativeAddon {
  WhisperModel: { load(file: string, gpu: boolean): Promise<NativeModel> };
  transcribe(
    handle: unknown,
    samples: Float32Array,
    params: Partial<NativeParams>,
    finish: (result: NativeSegment[] | Error) => void,
    progress: (segment: NativeSegment) => void,
  ): void;
}

let addon: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (!addon) {
    const require = createRequire(import.meta.url);
    const packageDir = path.dirname(require.resolve("smart-whisper/package.json"));
    addon = require(path.join(packageDir, "build/Release/smart-whisper.node")) as NativeAddon;
  }
  return addon;
}
