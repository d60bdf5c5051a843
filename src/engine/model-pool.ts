// Loaded models, shared by every job that uses them. A model loads once however many requests
// ask for it at the same time, and a file is proven loadable before it reaches the addon, which
// crashes the process on a missing or malformed file.
import type { FastifyBaseLogger } from "fastify";
import { ApiError } from "../errors.js";
import { InvalidModelFileError, inspectModelFile, type ModelFileInfo } from "../models/ggml-file.js";
import { loadAddon } from "./binding.js";
import { WhisperModel, type EngineSettings } from "./whisper-model.js";

interface PoolEntry {
  filePath: string;
  loading: Promise<WhisperModel>;
  /** Jobs currently using the model. */
  users: number;
  lastUsedAt: number;
}

export interface ModelLease {
  model: WhisperModel;
  release(): void;
}

export class ModelPool {
  private readonly entries = new Map<string, PoolEntry>();

  constructor(
    private readonly settings: EngineSettings & { gpu: boolean },
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Loads the model if needed and holds it until `release()` is called. */
  async acquire(name: string, filePath: string): Promise<ModelLease> {
    let entry = this.entries.get(name);
    if (!entry || entry.filePath !== filePath) {
      entry = { filePath, loading: this.load(name, filePath), users: 0, lastUsedAt: Date.now() };
      this.entries.set(name, entry);
    }
    entry.users++;
    try {
      const model = await entry.loading;
      let released = false;
      const held = entry;
      return {
        model,
        release: () => {
          if (released) return;
          released = true;
          held.users--;
          held.lastUsedAt = Date.now();
        },
      };
    } catch (error) {
      entry.users--;
      if (this.entries.get(name) === entry) this.entries.delete(name);
      throw error;
    }
  }

  isLoaded(name: string): boolean {
    return this.entries.has(name);
  }

  usersOf(name: string): number {
    return this.entries.get(name)?.users ?? 0;
  }

  /** Frees every model that no job is using. */
  async close(): Promise<void> {
    const idle = [...this.entries].filter(([, entry]) => entry.users === 0);
    for (const [name] of idle) this.entries.delete(name);
    await Promise.allSettled(idle.map(async ([, entry]) => (await entry.loading).free()));
  }

  private async load(name: string, filePath: string): Promise<WhisperModel> {
    const startedAt = performance.now();
    let info: ModelFileInfo;
    try {
      info = await inspectModelFile(filePath);
    } catch (error) {
      if (error instanceof InvalidModelFileError) {
        this.log.error({ err: error, model: name }, "model file is invalid");
        throw new ApiError(
          "model_unavailable",
          `The file for model '${name}' is not a valid whisper.cpp model (${error.reason}). ` +
            "Replace it with a ggml model file.",
          { retryable: false, cause: error },
        );
      }
      throw error;
    }

    const native = await loadAddon().WhisperModel.load(filePath, this.settings.gpu);
    const loadSeconds = ((performance.now() - startedAt) / 1000).toFixed(2);
    this.log.info(
      { model: name, sizeClass: info.sizeClass, multilingual: info.multilingual, loadSeconds },
      "model loaded",
    );
    return new WhisperModel(name, info, native, this.settings);
  }
}
