// Errors that happen before a request reaches a route, and so before `setErrorHandler`: Node's
// `clientError` (unparsable HTTP, headers over the size limit, timeouts) and Fastify's
// `frameworkErrors` (a URL the router cannot decode). Both respond with OpenAI's error body.
import { maxHeaderSize, STATUS_CODES, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type {
  ConnectionError,
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
} from "fastify";
import { ApiError, toErrorBody } from "../errors.js";
import { verifyApiKey } from "./auth.js";
import { handleError, type ErrorHandlerOptions } from "./errors.js";

/** `ConnectionError` as Node raises it: llhttp parse errors carry a `reason`. */
type ClientError = ConnectionError & { reason?: string };

function fromClientError(error: ClientError): ApiError {
  switch (error.code) {
    // Node raises it for both headersTimeout and requestTimeout.
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return new ApiError(
        "request_timeout",
        "The server timed out waiting for the request. Send the headers and the body without " +
          "long pauses.",
      );
    case "HPE_HEADER_OVERFLOW":
      return new ApiError(
        "headers_too_large",
        `The request headers are larger than the limit of ${maxHeaderSize} bytes.`,
      );
    default:
      return new ApiError(
        "invalid_request",
        `The request is not valid HTTP/1.1: ${error.reason ?? error.message}.`,
      );
  }
}

/**
 * Writes the error response straight to the socket, since Node raises these errors with no
 * request or response object, then closes the connection, because the HTTP parser cannot
 * continue after a parse error or a timeout. Fastify's `clientErrorHandler`.
 */
export function handleClientError(
  this: FastifyInstance,
  error: ClientError,
  socket: Socket,
): void {
  // After a reset the client is gone, so there is no one to respond to.
  if (error.code === "ECONNRESET" || socket.destroyed) return;

  const apiError = fromClientError(error);
  this.log.info(
    { code: error.code, status: apiError.status, remoteAddress: socket.remoteAddress },
    apiError.message,
  );
  if (socket.writable && !isResponseStarted(socket)) {
    socket.write(serializeResponse(apiError));
  }
  socket.destroy();
}

/**
 * Checks whether the socket already carries a response's headers, after which a second response
 * would corrupt the stream. Node's own `clientError` default checks the same internal field.
 */
function isResponseStarted(socket: Socket): boolean {
  const response = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  return response?.headersSent === true;
}

function serializeResponse(error: ApiError): string {
  const body = JSON.stringify(toErrorBody(error));
  const lines = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ""}`,
    "Content-Type: application/json; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(body)}`,
    "Connection: close",
  ];
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

/**
 * A `frameworkErrors` handler for Fastify. The router raises these errors before any hook runs,
 * so the API key is checked here: without a valid key the client gets the same 401 as on any
 * other route and learns nothing about the URL.
 */
export function frameworkErrorHandler(options: ErrorHandlerOptions) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    verifyApiKey(request, reply, (authError) => {
      handleError(authError ?? error, request, reply, options);
    });
  };
}
