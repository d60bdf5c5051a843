// The form fields of the transcription and translation endpoints, checked with zod. Fields
// arrive as strings; unknown fields are ignored, as OpenAI's API ignores them.
import { z } from "zod";
import { ApiError } from "../errors.js";
import { parseLanguage } from "./languages.js";
import type { ResponseFormat, Task } from "./types.js";

/** OpenAI accepts prompts of up to 224 tokens; this bounds the characters at about 4 per token. */
const MAX_PROMPT_CHARACTERS = 2000;

const responseFormats = ["json", "text", "srt", "verbose_json", "vtt"] as const;
const temperatureRange = "temperature must be a number from 0 to 1";

const fieldsSchema = z.object({
  model: z.string({ error: "model is required" }).trim().min(1, "model is required"),
  language: z.string().optional(),
  prompt: z
    .string()
    .max(MAX_PROMPT_CHARACTERS, `prompt must be at most ${MAX_PROMPT_CHARACTERS} characters`)
    .optional(),
  response_format: z
    .enum(responseFormats, { error: `response_format must be one of ${responseFormats.join(", ")}` })
    .default("json"),
  temperature: z
    .string()
    .trim()
    .regex(/^\d*\.?\d+(e-?\d+)?$/i, temperatureRange)
    .transform(Number)
    .pipe(z.number().min(0, temperatureRange).max(1, temperatureRange))
    .default(0),
  timestamp_granularities: z
    .array(z.enum(["segment", "word"], { error: "timestamp_granularities must be segment or word" }))
    .default(["segment"]),
  include: z.array(z.enum(["logprobs"], { error: "include accepts only logprobs" })).default([]),
  stream: z
    .enum(["true", "false"], { error: "stream must be true or false" })
    .transform((value) => value === "true")
    .default(false),
  chunking_strategy: z.string().optional(),
});

export interface AudioRequest {
  task: Task;
  model: string;
  /** ISO-639-1 code, or undefined to detect. */
  language: string | undefined;
  prompt: string | undefined;
  responseFormat: ResponseFormat;
  temperature: number;
  wordTimestamps: boolean;
  logprobs: boolean;
  stream: boolean;
}

const arrayFields = new Set(["timestamp_granularities", "include"]);

/** Checks the form's fields; a bad value is a 400 naming the field. */
export function parseAudioRequest(fields: Map<string, string[]>, task: Task): AudioRequest {
  const raw: Record<string, string | string[]> = {};
  for (const key of Object.keys(fieldsSchema.shape)) {
    const values = fields.get(key);
    if (values === undefined) continue;
    const present = values.filter((value) => value !== "");
    if (present.length === 0) continue;
    raw[key] = arrayFields.has(key) ? present : present.at(-1)!;
  }

  const parsed = fieldsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const param = String(issue.path[0] ?? "");
    const message = issue.message.startsWith(param) ? issue.message : `${param}: ${issue.message}`;
    throw new ApiError("invalid_request", message, { param });
  }
  const fieldsValue = parsed.data;
  const wordTimestamps = fieldsValue.timestamp_granularities.includes("word");

  if (wordTimestamps && fieldsValue.response_format !== "verbose_json") {
    throw new ApiError(
      "invalid_request",
      "timestamp_granularities requires response_format verbose_json.",
      { param: "timestamp_granularities" },
    );
  }
  // Translations take no stream field, so it is ignored there like any unknown field.
  const stream = task === "transcribe" && fieldsValue.stream;
  // Stream events carry plain text deltas, which only the json and text formats are.
  if (stream && !["json", "text"].includes(fieldsValue.response_format)) {
    throw new ApiError(
      "invalid_request",
      "stream=true requires response_format json or text.",
      { param: "response_format" },
    );
  }
  if (stream && fieldsValue.include.length > 0) {
    throw new ApiError("invalid_request", "include[]=logprobs is not available with stream=true.", {
      param: "include",
    });
  }
  if (fieldsValue.include.length > 0 && fieldsValue.response_format !== "json") {
    throw new ApiError("invalid_request", "include[]=logprobs requires response_format json.", {
      param: "include",
    });
  }

  return {
    task,
    model: fieldsValue.model,
    language: task === "transcribe" ? parseLanguage(fieldsValue.language) : undefined,
    prompt: fieldsValue.prompt,
    responseFormat: fieldsValue.response_format,
    temperature: fieldsValue.temperature,
    wordTimestamps,
    logprobs: fieldsValue.include.includes("logprobs"),
    stream,
  };
}
