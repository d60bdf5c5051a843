// POST /v1/audio/transcriptions and POST /v1/audio/translations.
// Reference: https://platform.openai.com/docs/api-reference/audio
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "../errors.js";
import { renderTranscript, type RenderedTranscript } from "../transcription/formats.js";
import { parseAudioRequest, type AudioRequest } from "../transcription/request.js";
import {
  transcribeFile,
  type TranscriptionService,
} from "../transcription/service.js";
import type { Task } from "../transcription/types.js";
import { readForm, UploadFolder, type UploadedFile } from "../upload/form.js";
import { streamTranscription } from "./audio-stream.js";

const audioRoutesByTask: [string, Task][] = [
  ["/v1/audio/transcriptions", "transcribe"],
  ["/v1/audio/translations", "translate"],
];

export async function audioRoutes(
  app: FastifyInstance,
  service: TranscriptionService,
): Promise<void> {
  for (const [url, task] of audioRoutesByTask) {
    app.post(url, (request, reply) => handleAudioRequest(request, reply, task, service));
  }
}

async function handleAudioRequest(
  request: FastifyRequest,
  reply: FastifyReply,
  task: Task,
  service: TranscriptionService,
): Promise<FastifyReply> {
  const folder = new UploadFolder();
  const disconnect = abortOnDisconnect(reply);
  // The upload is removed before the response goes out, so no client ever sees it linger.
  const cleanUp = async () => {
    disconnect.dispose();
    await folder.remove();
  };
  let rendered: RenderedTranscript;
  try {
    // With the queue full, the request gets its 429 before the upload is read.
    service.scheduler.assertCapacity();
    const { audioRequest, file } = await readAudioRequest(request, folder, task);
    // The upload goes as soon as it is decoded, not when a long transcription ends.
    // The disconnect listener stays until the response, so a client that leaves later is seen.
    const onDecoded = () => folder.remove();
    const context = { log: request.log, signal: disconnect.signal, onDecoded };

    if (audioRequest.stream) {
      return await streamTranscription(reply, service, audioRequest, file, { ...context, cleanUp });
    }

    const transcript = await transcribeFile(service, audioRequest, file, context);
    rendered = renderTranscript(transcript, audioRequest.responseFormat, {
      wordTimestamps: audioRequest.wordTimestamps,
    });
  } finally {
    await cleanUp();
  }
  return reply.type(rendered.contentType).send(rendered.body);
}

async function readAudioRequest(
  request: FastifyRequest,
  folder: UploadFolder,
  task: Task,
): Promise<{ audioRequest: AudioRequest; file: UploadedFile }> {
  const form = await readForm(request, folder);
  const audioRequest = parseAudioRequest(form.fields, task);
  if (!form.file) {
    throw new ApiError("invalid_request", "file is required: send the audio in a field named 'file'.", {
      param: "file",
    });
  }
  if (form.file.sizeBytes === 0) {
    throw new ApiError("invalid_audio", "The uploaded file is empty.", { param: "file" });
  }
  return { audioRequest, file: form.file };
}

/** Creates an AbortSignal that fires when the client leaves before the response ends. */
function abortOnDisconnect(reply: FastifyReply) {
  const controller = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) {
      controller.abort(new Error("the client closed the connection"));
    }
  };
  reply.raw.once("close", onClose);
  return {
    signal: controller.signal,
    dispose: () => reply.raw.off("close", onClose),
  };
}
