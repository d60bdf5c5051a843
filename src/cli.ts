#!/usr/bin/env node
// earshot's command line: `earshot models pull|list|rm`, on the same model folder and
// environment variables as the server.
import { constants } from "node:fs";
import { access, mkdir, stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";

import { ConfigError, loadConfig, type Config } from "./config.js";
import type { ModelLog } from "./models/model-downloads.js";
import type { DownloadProgress } from "./models/progress.js";
import { createModelStore, type ModelStore } from "./models/store.js";

const USAGE = `Usage:
  earshot models pull NAME...  Download models into MODEL_DIR and verify them.
  earshot models list          List installed models and those that can be downloaded.
  earshot models rm NAME...    Delete installed models.

NAME is a model id: a published whisper.cpp name such as base.en or large-v3-turbo-q5_0, a
file in MODEL_DIR such as custom.bin, or a ggml file on the hub as owner/repository/file.bin.
pull downloads any of them: MODEL_DOWNLOAD limits only what API requests download. rm deletes
the file even while a running server has the model loaded; the server keeps using its copy in
memory until it unloads it.

Settings come from the server's environment variables: MODEL_DIR, HF_ENDPOINT,
DOWNLOAD_CONNECT_TIMEOUT_MS, DOWNLOAD_STALL_TIMEOUT_MS. EARSHOT_DEBUG=1 adds stack traces
to error messages.

Exit status: 0 on success, 1 when a model command fails, 2 for usage or configuration errors,
such as a MODEL_DIR that is not a usable folder.`;

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

type Command = (store: ModelStore, names: string[]) => Promise<number>;

const commands: Record<string, Command> = { pull, list, rm };

/** Runs the command line and returns the exit status. */
async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { help: { type: "boolean", short: "h" } },
    strict: false,
  });
  const [group, commandName, ...names] = positionals;
  const command = commandName === undefined ? undefined : commands[commandName];
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (group !== "models" || !command) {
    console.error(USAGE);
    return EXIT_USAGE;
  }
  if (commandName !== "list" && names.length === 0) {
    console.error(`earshot models ${commandName}: give at least one model NAME.\n\n${USAGE}`);
    return EXIT_USAGE;
  }

  const config = readConfig();
  if (!config) return EXIT_USAGE;
  const problem = await modelDirProblem(config.modelDir, commandName === "pull");
  if (problem) {
    console.error(`earshot: MODEL_DIR=${config.modelDir} ${problem}`);
    return EXIT_USAGE;
  }
  // The operator asked for these models by name, so pull may fetch any valid id.
  const store = createModelStore({ ...config, downloadPolicy: "any" }, warningLog);
  return command(store, names);
}

function readConfig(): Config | undefined {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return undefined;
  }
}

const NOT_A_FOLDER =
  "is not a folder. Set MODEL_DIR to a folder, or to a path where one can be created.";

/**
 * Returns why MODEL_DIR cannot hold models, or undefined when it can. For `pull` the folder is
 * created and must be writable. For `list` and `rm` a missing folder is an empty one.
 */
async function modelDirProblem(
  modelDir: string,
  forWriting: boolean,
): Promise<string | undefined> {
  try {
    if (forWriting) await mkdir(modelDir, { recursive: true });
    if (!(await stat(modelDir)).isDirectory()) return NOT_A_FOLDER;
    if (forWriting) await access(modelDir, constants.W_OK);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !forWriting) return undefined;
    if (code === "EEXIST" || code === "ENOTDIR") return NOT_A_FOLDER;
    if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
      return `is not writable (${code}). Set MODEL_DIR to a folder that earshot may write to.`;
    }
    throw error;
  }
}

async function pull(store: ModelStore, names: string[]): Promise<number> {
  let status = 0;
  for (const name of names) {
    const bar = new DownloadBar(name);
    try {
      const model = store.resolve(name);
      const onProgress = (progress: DownloadProgress) => bar.update(progress);
      const result = await store.download(model, { onProgress });
      bar.stop();
      const size = formatMegabytes(result.model.sizeBytes);
      const verb = result.downloaded ? "Downloaded" : "Already installed:";
      console.log(`${verb} ${result.model.id} (${size}) at ${result.model.filePath}`);
    } catch (error) {
      bar.stop();
      status = reportFailure(`pull ${name}`, error);
    }
  }
  return status;
}

async function list(store: ModelStore): Promise<number> {
  const installed = await store.list();
  const installedIds = new Set(installed.map((model) => model.id));
  const available = store.catalog().filter((model) => !installedIds.has(model.id));
  const rows = [
    ["ID", "SIZE", "STATUS"],
    ...installed.map((model) => [model.id, formatMegabytes(model.sizeBytes), "installed"]),
    ...available.map((model) => [model.id, "-", "available"]),
  ];
  const idWidth = Math.max(...rows.map((row) => row[0]!.length));
  for (const [id, size, status] of rows) {
    console.log(`${id!.padEnd(idWidth)}  ${size!.padStart(10)}  ${status}`);
  }
  console.log(`\nModel folder (MODEL_DIR): ${store.modelDir}`);
  return 0;
}

async function rm(store: ModelStore, names: string[]): Promise<number> {
  let status = 0;
  for (const name of names) {
    try {
      const model = store.resolve(name);
      const filePath = store.filePathOf(model);
      await store.remove(model);
      console.log(`Deleted ${model.id} (${filePath})`);
    } catch (error) {
      status = reportFailure(`rm ${name}`, error);
    }
  }
  return status;
}

/** Prints the error for one model on one line and returns the exit status it gives. */
function reportFailure(action: string, error: unknown): number {
  console.error(`earshot models ${action} failed: ${describeError(error)}`);
  return EXIT_FAILED;
}

/** Returns the error's message on one line, followed by its stack when EARSHOT_DEBUG is set. */
function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const line = message.replace(/\s*\n\s*/g, " ");
  const stack = process.env.EARSHOT_DEBUG && error instanceof Error ? error.stack : undefined;
  return stack ? `${line}\n${stack}` : line;
}

/** A cli-progress bar on stderr, started by the first progress report that has a size. */
class DownloadBar {
  private readonly bar = new cliProgress.SingleBar(
    {
      format: "{model} [{bar}] {percentage}% | {done} of {total_size} | {speed}/s | {left}",
      stream: process.stderr,
      hideCursor: true,
      // Prints a plain line every 2 s when stderr is not a terminal (CI logs, pipes).
      noTTYOutput: true,
      notTTYSchedule: 2_000,
    },
    cliProgress.Presets.shades_classic,
  );
  private started = false;

  constructor(private readonly model: string) {}

  update(progress: DownloadProgress): void {
    const total = progress.bytesTotal ?? progress.bytesDone;
    const payload = {
      model: this.model,
      done: formatMegabytes(progress.bytesDone),
      total_size: formatMegabytes(total),
      speed: formatMegabytes(progress.bytesPerSecond),
      left: progress.secondsLeft === undefined ? "" : `${Math.ceil(progress.secondsLeft)} s left`,
    };
    if (!this.started) {
      this.started = true;
      this.bar.start(total, progress.bytesDone, payload);
      return;
    }
    this.bar.setTotal(total);
    this.bar.update(progress.bytesDone, payload);
  }

  stop(): void {
    if (this.started) this.bar.stop();
  }
}

/**
 * Prints the store's warnings, such as a resumed download, on stderr. Info lines are dropped
 * because the progress bar shows them, and errors because `reportFailure` prints them.
 */
const warningLog: ModelLog = {
  info: () => undefined,
  warn: (objectOrMessage: unknown, message?: string) => {
    const text = typeof objectOrMessage === "string" ? objectOrMessage : message;
    const cause = (objectOrMessage as { err?: unknown } | undefined)?.err;
    const detail = cause instanceof Error ? `: ${cause.message}` : "";
    console.error(`warning: ${text ?? ""}${detail}`);
  },
  error: () => undefined,
};

/** Formats bytes in decimal megabytes, as the server's download log does. */
function formatMegabytes(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

// `earshot models list | head` closes stdout early, which is no failure.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  process.exit(process.exitCode ?? 0);
});

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    console.error(`earshot: ${describeError(error)}`);
    process.exitCode = EXIT_FAILED;
  },
);
