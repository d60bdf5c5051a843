// Every error the API returns, defined once: its HTTP status, OpenAI error `type` and `code`.
// The global error handler turns an ApiError into `{"error":{message,type,param,code}}`.

export const errorKinds = {
  invalid_request: { status: 400, type: "invalid_request_error", code: null },
  invalid_audio: { status: 400, type: "invalid_request_error", code: "invalid_audio" },
  missing_api_key: { status: 401, type: "invalid_request_error", code: null },
  invalid_api_key: { status: 401, type: "invalid_request_error", code: "invalid_api_key" },
  not_found: { status: 404, type: "invalid_request_error", code: "not_found" },
  model_not_found: { status: 404, type: "invalid_request_error", code: "model_not_found" },
  request_timeout: { status: 408, type: "invalid_request_error", code: "request_timeout" },
  model_in_use: { status: 409, type: "invalid_request_error", code: "model_in_use" },
  upload_too_large: { status: 413, type: "invalid_request_error", code: "upload_too_large" },
  unsupported_media_type: {
    status: 415,
    type: "invalid_request_error",
    code: "unsupported_media_type",
  },
  headers_too_large: {
    status: 431,
    type: "invalid_request_error",
    code: "request_header_fields_too_large",
  },
  queue_full: { status: 429, type: "server_busy_error", code: "queue_full" },
  internal: { status: 500, type: "server_error", code: "internal_error" },
  model_unavailable: { status: 503, type: "server_error", code: "model_unavailable" },
  shutting_down: { status: 503, type: "server_error", code: "shutting_down" },
} as const;

export type ErrorKind = keyof typeof errorKinds;

export interface ApiErrorOptions {
  /** The request field the error is about, such as `file` or `language`. */
  param?: string;
  /** Seconds the client should wait before retrying; sent as `Retry-After`. */
  retryAfterSeconds?: number;
  /** False for a server-side error that will recur: sent as `x-should-retry: false`. */
  retryable?: boolean;
  cause?: unknown;
}

export class ApiError extends Error {
  readonly kind: ErrorKind;
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;
  readonly retryAfterSeconds: number | undefined;
  readonly retryable: boolean;

  constructor(kind: ErrorKind, message: string, options: ApiErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "ApiError";
    this.kind = kind;
    this.status = errorKinds[kind].status;
    this.type = errorKinds[kind].type;
    this.code = errorKinds[kind].code;
    this.param = options.param ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.retryable = options.retryable ?? true;
  }
}

/** OpenAI's error body, the shape of every error response. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export function toErrorBody(error: ApiError): ErrorBody {
  return {
    error: { message: error.message, type: error.type, param: error.param, code: error.code },
  };
}
