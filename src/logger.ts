// pino settings for the server. Authorization headers are redacted wherever a log object carries
// them. The request serializer logs no headers and no query string, and keys never appear in
// messages.
import { destination as pinoDestination, type DestinationStream, type LoggerOptions } from "pino";

export type LogDestination = DestinationStream;

const redactedPaths = [
  // Any object one level down that carries headers, such as the busboy options that
  // @fastify/multipart logs at trace level.
  "*.headers.authorization",
  "req.headers.authorization",
  "request.headers.authorization",
  "headers.authorization",
  "authorization",
  "apiKey",
  "apiKeys",
  "config.apiKeys",
];

/** The request fields Fastify logs by default, either from a Fastify or a Node request. */
interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number } | null;
}

/**
 * Fastify's default `req` serializer without the query string in `url`, since a query string
 * can carry a secret such as `?api_key=`. No route reads the query.
 */
function serializeRequest(request: LoggedRequest) {
  return {
    method: request.method,
    url: request.url?.split("?")[0],
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

export function loggerOptions(
  level: string,
  destination?: LogDestination,
): LoggerOptions & { stream?: DestinationStream } {
  return {
    level,
    redact: { paths: redactedPaths, censor: "[redacted]" },
    serializers: { req: serializeRequest },
    // Synchronous writes, so that no line is lost when the server must kill itself after its
    // shutdown grace period. A server logs a few lines per request, too few for this to cost.
    stream: destination ?? pinoDestination({ dest: 1, sync: true }),
  };
}
