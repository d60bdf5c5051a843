// pino settings for the server. Authorization headers are redacted wherever a log object carries
// them; Fastify's default request serializer logs no headers at all, and keys never appear in
// messages.
import type { DestinationStream, LoggerOptions } from "pino";

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

export function loggerOptions(
  level: string,
  destination?: LogDestination,
): LoggerOptions & { stream?: DestinationStream } {
  return {
    level,
    redact: { paths: redactedPaths, censor: "[redacted]" },
    ...(destination ? { stream: destination } : {}),
  };
}
