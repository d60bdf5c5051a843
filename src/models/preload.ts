// PRELOAD_MODELS: models downloaded and loaded at start, so that the first request for them
// does not wait.
import type { ModelPool } from "../engine/model-pool.js";
import type { ModelLog } from "./model-downloads.js";
import type { ModelStore } from "./store.js";

/**
 * Downloads (as MODEL_DOWNLOAD allows) and loads each model in turn, and returns the ids that
 * loaded. A failure is logged and the next model is tried, because the server still serves the
 * other models and loads this one on first use. Preloaded models unload after MODEL_IDLE_SECONDS
 * without jobs like any other.
 */
export async function preloadModels(
  requested: readonly string[],
  store: ModelStore,
  pool: ModelPool,
  log: ModelLog,
): Promise<string[]> {
  const loaded: string[] = [];
  for (const name of requested) {
    try {
      const model = await store.ensure(store.resolve(name));
      const lease = pool.lease(model.id, model.filePath);
      try {
        await lease.load();
      } finally {
        lease.release();
      }
      loaded.push(model.id);
      log.info({ model: model.id }, "model preloaded");
    } catch (error) {
      log.error({ err: error, model: name }, "failed to preload model, so it loads on first use");
    }
  }
  return loaded;
}

/**
 * Logs at start whether DEFAULT_MODEL, which `whisper-1` requests use, is installed. When it is
 * not, the line tells whether the first request will download it or fail, so an operator learns
 * it before a client does.
 */
export async function reportDefaultModel(store: ModelStore, log: ModelLog): Promise<void> {
  try {
    const model = store.resolve(store.defaultModel);
    if (await store.find(model)) return;
    if (store.mayDownload(model)) {
      log.info(
        { model: model.id },
        "the default model is not installed: the first request for it downloads it",
      );
    } else {
      log.warn(
        { model: model.id, file: model.fileName },
        "the default model is not installed and MODEL_DOWNLOAD does not allow downloading it: " +
          "whisper-1 requests fail with 404 until its file is in MODEL_DIR",
      );
    }
  } catch (error) {
    log.warn({ err: error, model: store.defaultModel }, "DEFAULT_MODEL is not a valid model id");
  }
}
