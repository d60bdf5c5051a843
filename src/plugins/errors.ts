// One error handler for the whole API: every failure, validation and parser errors included,
// becomes OpenAI's `{"error":{message,type,param,code}}`. 4xx are logged at info, 5xx at error,
// and the text of a 5xx never reaches the client.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { ApiError, toErrorBody } from "../errors.js";

export interface ErrorHandlerOptions {
  maxUploadBytes: number;
}

function fromFastifyError(
  error: FastifyError,
  request: FastifyRequest,
  options: ErrorHandlerOptions,
): ApiError | undefined {
  switch (error.code) {
    case "FST_BEARER_AUTH_MISSING_AUTHORIZATION_HEADER":
      return new ApiError(
        "missing_api_key",
        "You didn't provide an API key. Send it in the Authorization header: 'Bearer YOUR_KEY'.",
      );
    case "FST_BEARER_AUTH_INVALID_AUTHORIZATION_HEADER":
      // The key is never echoed, not even in part.
      return new ApiError("invalid_api_key", "Incorrect API key provided.");
    case "FST_REQ_FILE_TOO_LARGE":
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return uploadTooLarge(options.maxUploadBytes);
    case "FST_PARTS_LIMIT":
    case "FST_FILES_LIMIT":
    case "FST_FIELDS_LIMIT":
      return new ApiError("upload_too_large", "The form has too many fields or files.");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return unsupportedMediaType(request.headers["content-type"]);
    case "FST_ERR_BAD_URL":
      return new ApiError(
        "invalid_request",
        `The URL path '${routePath(request.url)}' is not valid: every '%' must start a ` +
          "percent-encoded UTF-8 byte such as %20.",
      );
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    return new ApiError("invalid_request", `The request could not be read: ${error.message}`);
  }
  return undefined;
}

/**
 * Builds the 415 error. Fastify raises it for every body but multipart/form-data, because the app
 * removes Fastify's JSON and text parsers.
 */
function unsupportedMediaType(contentType: string | undefined): ApiError {
  if (contentType === undefined) {
    return new ApiError(
      "unsupported_media_type",
      "The request has a body but no Content-Type header: send it as multipart/form-data.",
    );
  }
  return new ApiError(
    "unsupported_media_type",
    `Unsupported Content-Type '${shorten(contentType)}': the API reads request bodies only ` +
      "as multipart/form-data.",
  );
}

export function uploadTooLarge(maxUploadBytes: number): ApiError {
  return new ApiError(
    "upload_too_large",
    `The upload is larger than the limit of ${maxUploadBytes} bytes (MAX_UPLOAD_BYTES).`,
    { param: "file" },
  );
}

function toApiError(
  error: unknown,
  request: FastifyRequest,
  options: ErrorHandlerOptions,
): ApiError | undefined {
  if (error instanceof ApiError) return error;
  if (error instanceof Error && ("code" in error || "statusCode" in error)) {
    return fromFastifyError(error as FastifyError, request, options);
  }
  return undefined;
}

export function sendApiError(reply: FastifyReply, error: ApiError): FastifyReply {
  if (error.retryAfterSeconds !== undefined) {
    reply.header("retry-after", String(error.retryAfterSeconds));
  }
  if (!error.retryable) reply.header("x-should-retry", "false");
  if (error.status === 401) reply.header("www-authenticate", 'Bearer realm="earshot"');
  return reply.code(error.status).type("application/json; charset=utf-8").send(toErrorBody(error));
}

/** Sends `error` as OpenAI's error body and logs it: 4xx at info, anything else at error. */
export function handleError(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  options: ErrorHandlerOptions,
): FastifyReply {
  if (reply.raw.destroyed) {
    // The client went away, so its queued job was dropped, ffmpeg stopped, and no reply is sent.
    request.log.info({ err: error }, "client closed the connection before the response");
    return reply;
  }
  const apiError = toApiError(error, request, options);
  if (apiError && apiError.status < 500) {
    request.log.info({ status: apiError.status, code: apiError.code }, apiError.message);
    return sendApiError(reply, apiError);
  }
  if (apiError) {
    request.log.error({ err: error, status: apiError.status }, "request failed");
    return sendApiError(reply, apiError);
  }
  request.log.error({ err: error }, "request failed with an unexpected error");
  return sendApiError(
    reply,
    new ApiError("internal", "The server had an error while processing your request."),
  );
}

async function errorsPlugin(app: FastifyInstance, options: ErrorHandlerOptions): Promise<void> {
  app.setErrorHandler((error, request, reply) => handleError(error, request, reply, options));
  app.setNotFoundHandler((request, reply) =>
    sendApiError(
      reply,
      new ApiError("not_found", `Unknown route: ${request.method} ${routePath(request.url)}.`),
    ),
  );
}

export default fp(errorsPlugin, { name: "earshot-errors" });

/** Returns the path without its query string, cut to 100 characters for the message. */
function routePath(url: string): string {
  return shorten(url.split("?")[0] ?? "");
}

/** Cuts a client-supplied value to 100 characters for an error message. */
function shorten(value: string): string {
  return value.length > 100 ? `${value.slice(0, 100)}...` : value;
}
