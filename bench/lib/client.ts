// An HTTP client for earshot's OpenAI-style transcription endpoint, with a time limit on every
// request.
import { readFileSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";

export interface ServerSegment {
  /** Seconds from the start of the audio. */
  start: number;
  end: number;
  text: string;
}

export interface ServerTranscript {
  text: string;
  duration: number;
  segments: ServerSegment[];
}

export interface ServerRun {
  transcript: ServerTranscript;
  /** From sending the request to reading the last byte of the response, in milliseconds. */
  latencyMs: number;
}

/** An audio file read once, so that disk reads stay out of the measured time. */
export interface Upload {
  filename: string;
  audio: Blob;
}

export function readUpload(clipPath: string): Upload {
  const bytes = readFileSync(clipPath);
  return { filename: path.basename(clipPath), audio: new Blob([bytes], { type: "audio/wav" }) };
}

export interface TranscriptionRequest {
  baseUrl: string;
  model: string;
  language: string;
  timeoutMs: number;
  /** Aborts the request early, on top of the time limit. */
  signal?: AbortSignal;
}

/**
 * Sends one upload to `POST /v1/audio/transcriptions` with temperature 0 and
 * `response_format=verbose_json`, which carries the segment times.
 */
export async function transcribeOverHttp(
  request: TranscriptionRequest,
  upload: Upload,
): Promise<ServerRun> {
  const form = new FormData();
  form.append("file", upload.audio, upload.filename);
  form.append("model", request.model);
  form.append("language", request.language);
  form.append("temperature", "0");
  form.append("response_format", "verbose_json");

  const started = performance.now();
  const response = await fetch(`${request.baseUrl}/v1/audio/transcriptions`, {
    method: "POST",
    body: form,
    signal: request.signal
      ? AbortSignal.any([request.signal, AbortSignal.timeout(request.timeoutMs)])
      : AbortSignal.timeout(request.timeoutMs),
  });
  const body = await response.text();
  const latencyMs = performance.now() - started;
  if (!response.ok) {
    throw new Error(`earshot returned HTTP ${response.status} for ${upload.filename}: ${body}`);
  }
  return { transcript: JSON.parse(body) as ServerTranscript, latencyMs };
}
