// `stream=true`: Server-Sent Events as OpenAI sends them, one `transcript.text.delta` frame per
// segment and a final `transcript.text.done`. Errors before the first segment are ordinary HTTP
// errors; once the stream has started, an error becomes a `data: {"error":...}` frame.
import type { FastifyReply } from "fastify";
import { ApiError, toErrorBody } from "../errors.js";
import type { AudioRequest } from "../transcription/request.js";
import { transcribeFile, type JobContext, type TranscriptionService } from "../transcription/service.js";
import type { Segment } from "../transcription/types.js";
import type { UploadedFile } from "../upload/form.js";

export async function streamTranscription(
  reply: FastifyReply,
  service: TranscriptionService,
  audioRequest: AudioRequest,
  file: UploadedFile,
  context: JobContext & { cleanUp: () => Promise<void> },
): Promise<FastifyReply> {
  const stream = new EventStream(reply);
  let isFirstDelta = true;
  const onSegment = (segment: Segment) => {
    // Whisper's segments start with a space; the first delta drops it, as the text does.
    const delta = isFirstDelta ? segment.text.trimStart() : segment.text;
    isFirstDelta = false;
    stream.send({ type: "transcript.text.delta", delta });
  };

  try {
    const transcript = await transcribeFile(service, audioRequest, file, { ...context, onSegment });
    await context.cleanUp();
    stream.send({ type: "transcript.text.done", text: transcript.text });
  } catch (error) {
    if (!stream.started) throw error;
    context.log.error({ err: error }, "transcription failed after the stream started");
    const apiError =
      error instanceof ApiError
        ? error
        : new ApiError("internal", "The server had an error while processing your request.");
    stream.send(toErrorBody(apiError));
  }
  await context.cleanUp();
  stream.end();
  // A hijacked reply skips Fastify's "request completed" line.
  context.log.info({ responseTime: reply.elapsedTime }, "stream completed");
  return reply;
}

/** Writes `data: <json>` frames, sending the headers with the first frame. */
class EventStream {
  started = false;

  constructor(private readonly reply: FastifyReply) {}

  send(event: unknown): void {
    if (!this.started) this.start();
    if (!this.reply.raw.destroyed) this.reply.raw.write(`data: ${JSON.stringify(event)}\n\n`);
  }

  end(): void {
    if (!this.started) this.start();
    this.reply.raw.end();
  }

  private start(): void {
    this.started = true;
    this.reply.hijack();
    // No Connection header: Node sets it from the request, so a client that sent
    // `Connection: close` gets its socket closed after the stream.
    this.reply.raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      // Tells nginx-style proxies not to buffer the stream.
      "x-accel-buffering": "no",
    });
  }
}
