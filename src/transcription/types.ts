// The engine's output in OpenAI's terms. Times are in seconds.

export type Task = "transcribe" | "translate";

export interface Word {
  word: string;
  start: number;
  end: number;
}

/** One segment with the ten fields OpenAI's `verbose_json` gives every segment. */
export interface Segment {
  id: number;
  seek: number;
  start: number;
  end: number;
  /** The segment's text with its leading space, as Whisper produces it. */
  text: string;
  tokens: number[];
  /** The decoding temperature actually used for this segment. */
  temperature: number;
  avg_logprob: number;
  compression_ratio: number;
  no_speech_prob: number;
}

/** One token's log probability, as `include[]=logprobs` returns it. */
export interface TokenLogprob {
  token: string;
  /** Natural log of the token's probability. */
  logprob: number;
  /** The token's UTF-8 bytes. */
  bytes: number[];
}

export interface Transcript {
  task: Task;
  /** ISO-639-1 code of the spoken language (detected or requested), such as `en`. */
  language: string;
  /** Length of the decoded audio in seconds. */
  duration: number;
  text: string;
  segments: Segment[];
  /** Present when word timestamps were requested. */
  words?: Word[];
  /** Present when `include[]=logprobs` was requested. */
  logprobs?: TokenLogprob[];
}

export type ResponseFormat = "json" | "text" | "srt" | "verbose_json" | "vtt";
