// Model ids and the files behind them. An id takes one of three forms:
//
// - `NAME`, such as `tiny.en` or `large-v3-turbo-q5_0`: the file `MODEL_DIR/ggml-NAME.bin`, the
//   name whisper.cpp's repository on the hub gives its published models;
// - `FILE.bin`: any other `.bin` file placed in MODEL_DIR, by its file name;
// - `owner/repo/FILE.bin`: a ggml file in another hub repository, stored flattened as
//   `MODEL_DIR/hf--owner--repo--FILE.bin`.
//
// Every part of an id must match a strict pattern (letters, digits, '.', '_', '-', no '..')
// before it becomes a file name, so no id can name a path outside MODEL_DIR.
import { WHISPER_REPOSITORY } from "./download.js";

/**
 * The ggml models in whisper.cpp's hub repository. whisper.cpp's models/download-ggml-model.sh
 * lists all of them except the English-only q8_0 files, which the repository also publishes.
 */
export const PUBLISHED_MODELS: readonly string[] = [
  ...["tiny", "base", "small"].flatMap((size) => [
    size,
    `${size}.en`,
    `${size}-q5_1`,
    `${size}.en-q5_1`,
    `${size}-q8_0`,
    `${size}.en-q8_0`,
  ]),
  ...["medium", "medium.en", "medium-q5_0", "medium.en-q5_0", "medium-q8_0", "medium.en-q8_0"],
  ...["large-v1", "large-v2", "large-v2-q5_0", "large-v2-q8_0", "large-v3", "large-v3-q5_0"],
  ...["large-v3-turbo", "large-v3-turbo-q5_0", "large-v3-turbo-q8_0"],
];

const publishedNames: ReadonlySet<string> = new Set(PUBLISHED_MODELS);

/** A file in a hub repository, downloaded from `resolve/main`. */
export interface HubFile {
  /** `owner/name`, such as `ggerganov/whisper.cpp`. */
  repository: string;
  fileName: string;
}

/** A valid model id and the file that contains the model. */
export interface ModelRef {
  /** The canonical id: `ggml-base.bin` and `ggerganov/whisper.cpp/ggml-base.bin` become `base`. */
  id: string;
  /** The file's name inside MODEL_DIR, with no path separators. */
  fileName: string;
  /** The hub file the model can be downloaded from; undefined for local `FILE.bin` models. */
  hubFile: HubFile | undefined;
  /** Whether the id is one of whisper.cpp's published models. */
  published: boolean;
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** The usual file-name limit of Linux, macOS and Windows file systems, in bytes. */
const MAX_FILE_NAME_BYTES = 255;
/** Owner and repository names as huggingface_hub's validate_repo_id accepts them. */
const HUB_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$/;
const MAX_HUB_NAME_LENGTH = 96;
const FLATTENED_PREFIX = "hf--";
const FLATTENED_SEPARATOR = "--";

/** Parses a requested id; returns undefined for anything that is not a valid model id. */
export function parseModelId(id: string): ModelRef | undefined {
  const parts = id.split("/");
  if (parts.length === 3) {
    const [owner, repository, fileName] = parts as [string, string, string];
    return hubModel(owner, repository, fileName);
  }
  if (parts.length !== 1) return undefined;
  return id.endsWith(".bin") ? modelFromFileName(id) : whisperModel(id);
}

/**
 * Returns the model that a file in MODEL_DIR contains, or undefined when the name is not one that
 * an id maps to, such as a `.part` file or a name with unsafe characters.
 */
export function modelFromFileName(fileName: string): ModelRef | undefined {
  if (!isSafeFileName(fileName) || !fileName.endsWith(".bin")) return undefined;

  const whisperName = /^ggml-(.+)\.bin$/.exec(fileName)?.[1];
  const whisper = whisperName === undefined ? undefined : whisperModel(whisperName);
  if (whisper?.fileName === fileName) return whisper;

  const flattened = fileName.startsWith(FLATTENED_PREFIX) ? unflatten(fileName) : undefined;
  if (flattened?.fileName === fileName) return flattened;

  return { id: fileName, fileName, hubFile: undefined, published: false };
}

function whisperModel(name: string): ModelRef | undefined {
  const fileName = `ggml-${name}.bin`;
  if (name.endsWith(".bin") || !isSafeFileName(name) || !isSafeFileName(fileName)) {
    return undefined;
  }
  return {
    id: name,
    fileName,
    hubFile: { repository: WHISPER_REPOSITORY, fileName },
    published: publishedNames.has(name),
  };
}

function hubModel(owner: string, repository: string, fileName: string): ModelRef | undefined {
  if (!isHubName(owner) || !isHubName(repository)) return undefined;
  if (!isSafeFileName(fileName) || !fileName.endsWith(".bin")) return undefined;

  const repositoryId = `${owner}/${repository}`;
  if (repositoryId === WHISPER_REPOSITORY) {
    const whisper = modelFromFileName(fileName);
    if (whisper?.hubFile) return whisper;
  }

  const storedName = FLATTENED_PREFIX + [owner, repository, fileName].join(FLATTENED_SEPARATOR);
  if (!isSafeFileName(storedName)) return undefined;
  return {
    id: `${repositoryId}/${fileName}`,
    fileName: storedName,
    hubFile: { repository: repositoryId, fileName },
    published: false,
  };
}

/** Splits `hf--owner--repo--FILE.bin`; owner and repository names cannot contain `--`. */
function unflatten(storedName: string): ModelRef | undefined {
  const rest = storedName.slice(FLATTENED_PREFIX.length);
  const ownerEnd = rest.indexOf(FLATTENED_SEPARATOR);
  const repositoryEnd = rest.indexOf(FLATTENED_SEPARATOR, ownerEnd + FLATTENED_SEPARATOR.length);
  if (ownerEnd < 0 || repositoryEnd < 0) return undefined;

  const owner = rest.slice(0, ownerEnd);
  const repository = rest.slice(ownerEnd + FLATTENED_SEPARATOR.length, repositoryEnd);
  const fileName = rest.slice(repositoryEnd + FLATTENED_SEPARATOR.length);
  return hubModel(owner, repository, fileName);
}

function isSafeFileName(name: string): boolean {
  return (
    SAFE_NAME.test(name) &&
    !name.includes("..") &&
    Buffer.byteLength(name) <= MAX_FILE_NAME_BYTES
  );
}

function isHubName(name: string): boolean {
  return (
    HUB_NAME.test(name) &&
    name.length <= MAX_HUB_NAME_LENGTH &&
    !name.includes("--") &&
    !name.includes("..")
  );
}
