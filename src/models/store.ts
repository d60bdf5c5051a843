// The model folder (MODEL_DIR): which models are installed, which may be downloaded, and the
// download of a missing model on first use. How ids map to file names is in model-ids.ts.
import { readdir, rm, stat } from "node:fs/promises";
import path from "node:path";

import type { Config } from "../config.js";
import { ApiError } from "../errors.js";
import { DEFAULT_HUB_ENDPOINT, WHISPER_REPOSITORY } from "./download.js";
import {
  ModelDownloads,
  type FetchOptions,
  type HubSettings,
  type ModelLog,
} from "./model-downloads.js";
import {
  modelFromFileName,
  parseModelId,
  PUBLISHED_MODELS,
  type HubFile,
  type ModelRef,
} from "./model-ids.js";

/** OpenAI model names that clients hard-code; each means the default model. */
export const OPENAI_MODEL_NAMES: ReadonlySet<string> = new Set([
  "whisper-1",
  "gpt-4o-transcribe",
  "gpt-4o-mini-transcribe",
  "gpt-4o-transcribe-diarize",
]);

/** Download policy for missing models: none, whisper.cpp's published ones, or any. */
export type DownloadPolicy = "off" | "known" | "any";

export interface InstalledModel {
  id: string;
  filePath: string;
  sizeBytes: number;
  /** Unix seconds. */
  createdAt: number;
}

export interface ModelStoreOptions {
  /** Download policy of `ensure` and `download`; "off" unless given. */
  downloadPolicy?: DownloadPolicy;
  hubEndpoint?: string;
  connectTimeoutMs?: number;
  stallTimeoutMs?: number;
  /** Wait before resuming an interrupted transfer, in ms. */
  resumeDelayMs?: number;
  /** Receives download starts, progress, retries and failures. */
  log?: ModelLog;
}

const ignore = () => undefined;
const silentLog: ModelLog = { info: ignore, warn: ignore, error: ignore };

/** Creates the store that the server and the CLI use, from the configuration. */
export function createModelStore(config: Config, log: ModelLog): ModelStore {
  return new ModelStore(config.modelDir, config.defaultModel, {
    downloadPolicy: config.downloadPolicy,
    hubEndpoint: config.hubEndpoint,
    connectTimeoutMs: config.downloadConnectTimeoutMs,
    stallTimeoutMs: config.downloadStallTimeoutMs,
    log,
  });
}

export class ModelStore {
  readonly downloadPolicy: DownloadPolicy;
  private readonly downloads: ModelDownloads;
  /** Ids whose file is being deleted: `find` reports them missing and downloads wait. */
  private readonly deleting = new Set<string>();

  constructor(
    readonly modelDir: string,
    readonly defaultModel: string,
    options: ModelStoreOptions = {},
  ) {
    this.downloadPolicy = options.downloadPolicy ?? "off";
    const hub: HubSettings = {
      endpoint: options.hubEndpoint ?? DEFAULT_HUB_ENDPOINT,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
      resumeDelayMs: options.resumeDelayMs,
      log: options.log ?? silentLog,
    };
    this.downloads = new ModelDownloads(hub);
  }

  /** Maps a requested name to a model, OpenAI's names to the default one; 404 if invalid. */
  resolve(requested: string): ModelRef {
    const id = OPENAI_MODEL_NAMES.has(requested) ? this.defaultModel : requested;
    const model = parseModelId(id);
    if (!model) {
      throw new ApiError(
        "model_not_found",
        `The model '${truncate(requested)}' does not exist. A model id is a name such as ` +
          "'base.en', a file name such as 'custom.bin', or 'owner/repository/file.bin'.",
        { param: "model" },
      );
    }
    return model;
  }

  filePathOf(model: ModelRef): string {
    return path.join(this.modelDir, model.fileName);
  }

  /** Returns whether the download policy lets a request download the model. */
  mayDownload(model: ModelRef): model is ModelRef & { hubFile: HubFile } {
    if (!model.hubFile || this.downloadPolicy === "off") return false;
    return this.downloadPolicy === "any" || model.published;
  }

  isDownloading(model: ModelRef): boolean {
    return this.downloads.isRunning(this.filePathOf(model));
  }

  /** Returns the installed model, or undefined when its file is missing or being deleted. */
  async find(model: ModelRef): Promise<InstalledModel | undefined> {
    const installed = await this.statModel(model);
    return this.deleting.has(model.id) ? undefined : installed;
  }

  /** Returns the installed model, or throws 404 `model_not_found` saying how to install it. */
  async get(model: ModelRef): Promise<InstalledModel> {
    const installed = await this.find(model);
    if (!installed) throw this.notInstalledError(model);
    return installed;
  }

  /** Returns the installed model, downloading it first when it is missing and allowed. */
  async ensure(model: ModelRef, options: FetchOptions = {}): Promise<InstalledModel> {
    return (await this.download(model, options)).model;
  }

  /**
   * Downloads the model unless it is installed, and reports whether it did. Throws 404 when the
   * policy forbids the download or the hub has no such file, 409 while the model is being
   * deleted, and 503 when the hub cannot be reached or the file fails verification.
   */
  async download(
    model: ModelRef,
    options: FetchOptions = {},
  ): Promise<{ model: InstalledModel; downloaded: boolean }> {
    const installed = await this.find(model);
    if (installed) return { model: installed, downloaded: false };
    if (this.deleting.has(model.id)) {
      throw new ApiError("model_in_use", `Model '${model.id}' is being deleted. Retry later.`);
    }
    if (!this.mayDownload(model)) throw this.notInstalledError(model);

    await this.downloads.fetch(model, this.filePathOf(model), options);
    return { model: await this.get(model), downloaded: true };
  }

  /** Lists the installed models by id. Files whose names map to no id are left out. */
  async list(): Promise<InstalledModel[]> {
    const entries = await readdir(this.modelDir).catch(() => []);
    const models = entries
      .map((entry) => modelFromFileName(entry))
      .filter((model): model is ModelRef => model !== undefined);
    const found = await Promise.all(models.map((model) => this.find(model)));
    return found
      .filter((model): model is InstalledModel => model !== undefined)
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Returns the published models that the download policy lets a request download. */
  catalog(): ModelRef[] {
    return PUBLISHED_MODELS.map((name) => parseModelId(name))
      .filter((model): model is ModelRef => model !== undefined)
      .filter((model) => this.mayDownload(model));
  }

  /**
   * Deletes the model's file, calling `beforeDelete` first (to unload it). Throws 404 when the
   * model is not installed. The caller checks that no job uses the model before calling, and
   * this method marks the model as deleting before its first `await`, so no job can start
   * using it in between.
   */
  async remove(model: ModelRef, beforeDelete?: () => Promise<void>): Promise<void> {
    if (this.deleting.has(model.id)) {
      throw new ApiError("model_in_use", `Model '${model.id}' is already being deleted.`);
    }
    this.deleting.add(model.id);
    try {
      const installed = await this.statModel(model);
      if (!installed) {
        const message = `The model '${model.id}' is not installed, so there is nothing to delete.`;
        throw new ApiError("model_not_found", message, { param: "model" });
      }
      await beforeDelete?.();
      await rm(installed.filePath, { force: true });
    } finally {
      this.deleting.delete(model.id);
    }
  }

  /** Stops running downloads, keeping their partial files for the next try. */
  close(): void {
    this.downloads.close();
  }

  private async statModel(model: ModelRef): Promise<InstalledModel | undefined> {
    const filePath = this.filePathOf(model);
    const info = await stat(filePath).catch(() => undefined);
    if (!info?.isFile()) return undefined;

    return {
      id: model.id,
      filePath,
      sizeBytes: info.size,
      createdAt: Math.floor(info.mtimeMs / 1000),
    };
  }

  private notInstalledError(model: ModelRef): ApiError {
    const placeByHand = `place its ggml file in the model folder (MODEL_DIR) as ${model.fileName}`;
    const reason = this.whyNotDownloadable(model);
    return new ApiError(
      "model_not_found",
      `The model '${model.id}' does not exist: it is not installed${reason}. To use it, ` +
        `${placeByHand}.`,
      { param: "model" },
    );
  }

  private whyNotDownloadable(model: ModelRef): string {
    if (!model.hubFile) return "";
    if (this.downloadPolicy === "off") return ", and downloads are off (MODEL_DOWNLOAD=off)";
    if (this.downloadPolicy === "any") return "";
    if (model.hubFile.repository === WHISPER_REPOSITORY) {
      return " and is not one of whisper.cpp's published models (GET /v1/models lists them)";
    }
    return (
      `, and MODEL_DOWNLOAD=known allows downloads from ${WHISPER_REPOSITORY} only ` +
      "(MODEL_DOWNLOAD=any allows other repositories)"
    );
  }
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}...` : text;
}
