// Entry point: reads the configuration, starts the server and stops it gracefully on SIGTERM.
import { envFileLoaded, envFilePath } from "./env-file.js";
import "./threadpool.js";
import { buildApp } from "./app.js";
import { findFfmpeg } from "./audio/ffmpeg-binary.js";
import { readBuildInfo } from "./build-info.js";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { removeOpenUploadFoldersSync, removeStaleUploadFolders } from "./upload/form.js";

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }

  const build = readBuildInfo();
  const ffmpeg = await findFfmpeg({ configuredPath: config.ffmpegPath });
  const app = await buildApp(config, { build, ffmpegPath: ffmpeg.path });

  app.log.info(
    {
      version: build.version,
      revision: build.revision,
      auth: config.apiKeys.length > 0,
      ffmpeg: { path: ffmpeg.path, source: ffmpeg.source, version: ffmpeg.version },
      modelDir: config.modelDir,
      defaultModel: config.defaultModel,
      maxConcurrentJobs: config.maxConcurrentJobs,
      threadsPerJob: config.threadsPerJob,
      gpu: config.gpu,
      envFile: envFileLoaded ? envFilePath : null,
    },
    "earshot starting",
  );
  const staleUploads = await removeStaleUploadFolders();
  if (staleUploads > 0) {
    app.log.info({ folders: staleUploads }, "removed uploads left by a server that was killed");
  }
  if (config.apiKeys.length === 0) {
    app.log.warn(
      "API_KEY is not set: authentication is off and anyone who can reach this port can use it",
    );
  }

  stopOnSignals(app, config.shutdownGraceSeconds);
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    console.error(`Failed to listen on HOST=${config.host} PORT=${config.port}: ${reason}`);
    process.exit(1);
  }
}

/** Stops taking requests on SIGTERM or SIGINT and lets running jobs end within the grace period. */
function stopOnSignals(app: Awaited<ReturnType<typeof buildApp>>, graceSeconds: number): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal, graceSeconds }, "stopping: finishing running requests");
    const deadline = setTimeout(() => {
      app.log.warn({ graceSeconds }, "grace period over: exiting with requests still running");
      removeOpenUploadFoldersSync();
      // process.exit() would wait for whisper.cpp jobs still running on libuv's thread pool,
      // which cannot be interrupted, so the process ends itself the way a supervisor would.
      process.kill(process.pid, "SIGKILL");
    }, graceSeconds * 1000);
    deadline.unref();
    app.close().then(
      () => {
        app.log.info("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        app.log.error({ err: error }, "failed to stop cleanly");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
