// Loaded models, shared by every job that uses them. A model loads once however many requests
// ask for it at the same time, and a file is proven loadable before it reaches the addon, which
// crashes the process on a missing or malformed file.
//
// A model unloads MODEL_IDLE_SECONDS after its last job ends, and past MAX_LOADED_MODELS the least
// recently used idle model unloads. A model that a job uses is never unloaded. smart-whisper's
// own offload timer and model manager are not used: the timer keeps the process alive and counts
// from the start of a job instead of its end.
import { existsSync } from "node:fs";
import type { FastifyBaseLogger } from "fastify";
import { ApiError } from "../errors.js";
import { InvalidModelFileError, inspectModelFile, type ModelFileInfo } from "../models/ggml-file.js";
import { loadAddon } from "./binding.js";
import { WhisperModel, type EngineSettings } from "./whisper-model.js";

export interface PoolSettings extends EngineSettings {
  gpu: boolean;
  /** Time after a model's last job ends before it unloads; 0 keeps models loaded. */
  modelIdleSeconds: number;
  /** Loaded models kept at most while idle; models in use may exceed it for a while. */
  maxLoadedModels: number;
}

interface LoadedModel {
  id: string;
  loading: Promise<WhisperModel>;
  /** When the last job using the model ended (or it started loading), as a use sequence number. */
  lastUse: number;
  idleTimer: NodeJS.Timeout | undefined;
}

/** A job's hold on a model: from `lease()` to `release()` it is neither unloaded nor deleted. */
export interface ModelLease {
  /** Loads the model unless it is loaded, and returns it. */
  load(): Promise<WhisperModel>;
  release(): void;
}

type UnloadReason = "idle" | "least recently used" | "removed" | "closing";

export class ModelPool {
  private readonly loaded = new Map<string, LoadedModel>();
  /** Jobs holding a lease, by model id, whether or not the model has loaded yet. */
  private readonly users = new Map<string, number>();
  /** Counts job ends and loads, to order models by last use; two may end in one millisecond. */
  private useCount = 0;

  constructor(
    private readonly settings: PoolSettings,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Counts a job as a user of the model until `release()`; loading waits for `load()`. */
  lease(id: string, filePath: string): ModelLease {
    this.users.set(id, this.usersOf(id) + 1);
    const entry = this.loaded.get(id);
    if (entry) clearTimeout(entry.idleTimer);

    let released = false;
    return {
      load: () => {
        if (released) throw new Error(`Internal error: model ${id} loaded after its release`);
        return this.load(id, filePath);
      },
      release: () => {
        if (released) return;
        released = true;
        this.releaseUser(id);
      },
    };
  }

  isLoaded(id: string): boolean {
    return this.loaded.has(id);
  }

  usersOf(id: string): number {
    return this.users.get(id) ?? 0;
  }

  /** Unloads the model unless a job uses it; returns false when one does. */
  async unload(id: string): Promise<boolean> {
    if (this.usersOf(id) > 0) return false;
    const entry = this.loaded.get(id);
    if (entry) await this.free(entry, "removed");
    return true;
  }

  /** Frees every model that no job is using and stops the idle timers. */
  async close(): Promise<void> {
    const entries = [...this.loaded.values()];
    for (const entry of entries) clearTimeout(entry.idleTimer);
    const idle = entries.filter((entry) => this.usersOf(entry.id) === 0);
    await Promise.all(idle.map((entry) => this.free(entry, "closing")));
  }

  private load(id: string, filePath: string): Promise<WhisperModel> {
    const existing = this.loaded.get(id);
    if (existing) return existing.loading;

    const excess = this.loaded.size + 1 - this.settings.maxLoadedModels;
    const evicted = this.takeLeastRecentlyUsed(excess);
    const entry: LoadedModel = {
      id,
      loading: this.loadAfterFreeing(evicted, id, filePath),
      lastUse: ++this.useCount,
      idleTimer: undefined,
    };
    this.loaded.set(id, entry);
    entry.loading.catch(() => {
      if (this.loaded.get(id) === entry) this.loaded.delete(id);
    });
    return entry.loading;
  }

  private releaseUser(id: string): void {
    const remaining = this.usersOf(id) - 1;
    if (remaining > 0) this.users.set(id, remaining);
    else this.users.delete(id);

    const entry = this.loaded.get(id);
    if (!entry) return;
    entry.lastUse = ++this.useCount;
    if (remaining > 0) return;

    this.startIdleTimer(entry);
    // Models loaded past the limit while every other model was busy unload once they are idle.
    const excess = this.loaded.size - this.settings.maxLoadedModels;
    for (const old of this.takeLeastRecentlyUsed(excess)) {
      void this.free(old, "least recently used");
    }
  }

  private startIdleTimer(entry: LoadedModel): void {
    if (this.settings.modelIdleSeconds <= 0) return;
    clearTimeout(entry.idleTimer);
    entry.idleTimer = setTimeout(() => {
      if (this.loaded.get(entry.id) === entry && this.usersOf(entry.id) === 0) {
        void this.free(entry, "idle");
      }
    }, this.settings.modelIdleSeconds * 1000);
    // An idle model must not keep the process running.
    entry.idleTimer.unref();
  }

  /**
   * Removes up to `count` idle models from the pool, least recently used first, and returns
   * them for freeing. Logs when too few are idle, because the pool then exceeds its limit.
   */
  private takeLeastRecentlyUsed(count: number): LoadedModel[] {
    if (count <= 0) return [];
    const idle = [...this.loaded.values()]
      .filter((entry) => this.usersOf(entry.id) === 0)
      .sort((a, b) => a.lastUse - b.lastUse)
      .slice(0, count);
    if (idle.length < count) {
      this.log.warn(
        { loaded: [...this.loaded.keys()], maxLoadedModels: this.settings.maxLoadedModels },
        "more models loaded than MAX_LOADED_MODELS, because jobs are using all of them",
      );
    }
    for (const entry of idle) this.loaded.delete(entry.id);
    return idle;
  }

  private async free(entry: LoadedModel, reason: UnloadReason): Promise<void> {
    clearTimeout(entry.idleTimer);
    if (this.loaded.get(entry.id) === entry) this.loaded.delete(entry.id);

    // A model that failed to load has nothing to free, and its job already got the error.
    const model = await entry.loading.catch(() => undefined);
    if (!model || model.freed) return;
    try {
      await model.free();
      this.log.info({ model: entry.id, reason }, "model unloaded");
    } catch (error) {
      this.log.error({ err: error, model: entry.id, reason }, "failed to unload model");
    }
  }

  /** Frees the evicted models first, so that old and new models are not in memory at once. */
  private async loadAfterFreeing(
    evicted: LoadedModel[],
    id: string,
    filePath: string,
  ): Promise<WhisperModel> {
    await Promise.all(evicted.map((old) => this.free(old, "least recently used")));
    return this.loadFile(id, filePath);
  }

  private async loadFile(id: string, filePath: string): Promise<WhisperModel> {
    const startedAt = performance.now();
    let info: ModelFileInfo;
    try {
      info = await inspectModelFile(filePath);
    } catch (error) {
      if (error instanceof InvalidModelFileError && !existsSync(filePath)) {
        // Deleted between the request's lookup and the load, e.g. by `earshot models rm`.
        this.log.info({ model: id }, "model file was deleted before it could load");
        throw new ApiError(
          "model_not_found",
          `The model '${id}' was deleted while the request waited. Install it again.`,
          { param: "model", cause: error },
        );
      }
      if (error instanceof InvalidModelFileError) {
        this.log.error({ err: error, model: id }, "model file is invalid");
        throw new ApiError(
          "model_unavailable",
          `The file for model '${id}' is not a valid whisper.cpp model (${error.reason}). ` +
            "Replace it with a ggml model file.",
          { retryable: false, cause: error },
        );
      }
      throw error;
    }

    const native = await loadAddon().WhisperModel.load(filePath, this.settings.gpu);
    const loadSeconds = ((performance.now() - startedAt) / 1000).toFixed(2);
    this.log.info(
      { model: id, sizeClass: info.sizeClass, multilingual: info.multilingual, loadSeconds },
      "model loaded",
    );
    return new WhisperModel(id, info, native, this.settings);
  }
}
