// The Fastify application, apart from the process that listens, so tests can `inject` into it.
import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance } from "fastify";
import { findFfmpeg } from "./audio/ffmpeg-binary.js";
import { readBuildInfo, type BuildInfo } from "./build-info.js";
import type { Config } from "./config.js";
import { ApiError } from "./errors.js";
import { ModelPool } from "./engine/model-pool.js";
import { JobScheduler } from "./engine/scheduler.js";
import { preloadModels, reportDefaultModel } from "./models/preload.js";
import { createModelStore } from "./models/store.js";
import authPlugin from "./plugins/auth.js";
import { frameworkErrorHandler, handleClientError } from "./plugins/client-errors.js";
import errorsPlugin from "./plugins/errors.js";
import { audioRoutes } from "./routes/audio.js";
import { healthRoutes } from "./routes/health.js";
import { modelRoutes } from "./routes/models.js";
import { multipartLimits, rejectOversizedRequest } from "./upload/form.js";
import { loggerOptions, type LogDestination } from "./logger.js";

export interface AppOptions {
  /** Log destination, stdout by default. Tests pass a stream to read the lines. */
  logDestination?: LogDestination;
  build?: BuildInfo;
  /** The ffmpeg executable; found as the server would find it when not given. */
  ffmpegPath?: string;
}

/** Fields of the form other than the file: the request may exceed the file limit by this much. */
const FORM_OVERHEAD_BYTES = 1024 * 1024;

export async function buildApp(config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const errorOptions = { maxUploadBytes: config.maxUploadBytes };
  const app = Fastify({
    logger: loggerOptions(config.logLevel, options.logDestination),
    // Node's own limit on receiving a whole request; a slow upload of 25 MB fits comfortably.
    requestTimeout: 300_000,
    // Applied to multipart bodies by `readForm`, which counts their bytes as they arrive.
    bodyLimit: config.maxUploadBytes + FORM_OVERHEAD_BYTES,
    // While stopping, new requests get a 503 in OpenAI's shape from the hook below instead.
    return503OnClosing: false,
    clientErrorHandler: handleClientError,
    frameworkErrors: frameworkErrorHandler(errorOptions),
  });
  // No route reads JSON or text. Fastify's built-in parsers would parse such a body up to
  // bodyLimit before a handler could reject it, which blocks the event loop for seconds on
  // deeply nested JSON. Without them, every body but multipart/form-data gets a 415 unread.
  app.removeAllContentTypeParsers();

  const build = options.build ?? readBuildInfo();
  const ffmpegPath =
    options.ffmpegPath ?? (await findFfmpeg({ configuredPath: config.ffmpegPath })).path;
  const store = createModelStore(config, app.log);
  const pool = new ModelPool(config, app.log);
  const scheduler = new JobScheduler(config.maxConcurrentJobs, config.maxQueuedJobs);
  closeConnectionsWhileStopping(app);
  // Requests waiting for a download get a 503 instead of holding up the shutdown, and the
  // partial file is resumed by the next start.
  app.addHook("preClose", async () => store.close());
  // After listening, so that health checks pass while a large model downloads.
  app.addHook("onListen", async () => {
    await reportDefaultModel(store, app.log);
    void preloadModels(config.preloadModels, store, pool, app.log);
  });
  app.addHook("onClose", async () => {
    await scheduler.whenIdle();
    await pool.close();
  });

  await app.register(errorsPlugin, errorOptions);
  await app.register(authPlugin, { apiKeys: config.apiKeys });
  await app.register(multipart, {
    limits: multipartLimits(config.maxUploadBytes),
    throwFileSizeLimit: true,
  });
  app.addHook("onRequest", rejectOversizedRequest(config.maxUploadBytes, FORM_OVERHEAD_BYTES));

  await app.register(healthRoutes, { build, authEnabled: config.apiKeys.length > 0 });
  await app.register(modelRoutes, { store, pool });
  await app.register(audioRoutes, {
    store,
    pool,
    scheduler,
    ffmpegPath,
    maxAudioSeconds: config.maxAudioSeconds,
  });
  return app;
}

/**
 * Once `close()` has begun, new requests get 503 `shutting_down`, which the SDK retries against
 * another instance. Responses carry `Connection: close`, so no keep-alive client keeps its
 * socket open, and the server stops as soon as running requests end.
 */
function closeConnectionsWhileStopping(app: FastifyInstance): void {
  let stopping = false;
  let idleSweep: NodeJS.Timeout | undefined;
  app.addHook("preClose", async () => {
    stopping = true;
    // A streamed response bypasses onSend, so its keep-alive socket turns idle without the
    // header; closing idle sockets as they appear lets the stop finish anyway.
    idleSweep = setInterval(() => app.server.closeIdleConnections(), 250).unref();
  });
  app.addHook("onClose", async () => clearInterval(idleSweep));
  app.addHook("onRequest", async () => {
    if (stopping) {
      throw new ApiError("shutting_down", "The server is shutting down. Retry the request.", {
        retryAfterSeconds: 1,
      });
    }
  });
  app.addHook("onSend", async (_request, reply) => {
    if (stopping) reply.header("connection", "close");
  });
}
