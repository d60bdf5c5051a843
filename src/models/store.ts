// Model names and the files behind them: a model named NAME is MODEL_DIR/ggml-NAME.bin, as
// whisper.cpp names its published models (tiny.en, base, large-v3-turbo...).
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.js";

/** OpenAI model names that clients hard-code; each means the default model. */
export const OPENAI_MODEL_NAMES: ReadonlySet<string> = new Set([
  "whisper-1",
  "gpt-4o-transcribe",
  "gpt-4o-mini-transcribe",
  "gpt-4o-transcribe-diarize",
]);

/** Letters, digits, '.', '_' and '-': no separators, so a name cannot leave MODEL_DIR. */
const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface InstalledModel {
  name: string;
  filePath: string;
  sizeBytes: number;
  /** Unix seconds. */
  createdAt: number;
}

export class ModelStore {
  constructor(
    readonly modelDir: string,
    readonly defaultModel: string,
  ) {}

  /** Maps a requested name to a model name: OpenAI's names mean the default model. */
  resolveName(requested: string): string {
    const name = OPENAI_MODEL_NAMES.has(requested) ? this.defaultModel : requested;
    if (!MODEL_NAME_PATTERN.test(name) || name.includes("..")) {
      throw new ApiError("model_not_found", `The model '${truncate(requested)}' does not exist.`, {
        param: "model",
      });
    }
    return name;
  }

  filePathOf(name: string): string {
    return path.join(this.modelDir, `ggml-${name}.bin`);
  }

  /** Returns the installed model with this name, or throws 404 `model_not_found`. */
  async find(name: string): Promise<InstalledModel> {
    const filePath = this.filePathOf(name);
    const info = await stat(filePath).catch(() => undefined);
    if (!info?.isFile()) {
      throw new ApiError(
        "model_not_found",
        `The model '${name}' does not exist. Place its ggml file in the model folder as ` +
          `ggml-${name}.bin.`,
        { param: "model" },
      );
    }
    return { name, filePath, sizeBytes: info.size, createdAt: Math.floor(info.mtimeMs / 1000) };
  }

  async list(): Promise<InstalledModel[]> {
    const entries = await readdir(this.modelDir).catch(() => []);
    const names = entries
      .map((entry) => /^ggml-(.+)\.bin$/.exec(entry)?.[1])
      .filter((name): name is string => name !== undefined && MODEL_NAME_PATTERN.test(name));
    const found = await Promise.all(names.map((name) => this.find(name).catch(() => undefined)));
    return found.filter((model): model is InstalledModel => model !== undefined);
  }
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}...` : text;
}
