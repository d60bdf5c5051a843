// Chooses the ffmpeg executable once at startup: FFMPEG_PATH when configured, else `ffmpeg` on
// PATH, else the static build in the npm package @ffmpeg-installer/ffmpeg, so the server also
// runs on a machine without a system ffmpeg.
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

// Even the 70 MB static build prints its version in under a second, so the limit only catches
// a hang.
const VERSION_CHECK_TIMEOUT_MS = 15_000;

/** Origin of the executable: the FFMPEG_PATH setting, a PATH lookup, or the npm package. */
export type FfmpegSource = "FFMPEG_PATH" | "PATH" | "@ffmpeg-installer/ffmpeg";

export interface FfmpegBinary {
  /** Absolute path of the executable. */
  path: string;
  source: FfmpegSource;
  /** The version from `ffmpeg -version`, such as `5.1.9-0+deb12u1`. */
  version: string;
}

export interface FindFfmpegOptions {
  /** FFMPEG_PATH from the config. When set, no other executable is considered. */
  configuredPath?: string | undefined;
  /** Directories searched for `ffmpeg`, joined by the platform's delimiter. Defaults to $PATH. */
  searchPath?: string | undefined;
}

/** A startup error: no usable ffmpeg, with the reason and what to do about it. */
export class FfmpegUnavailableError extends Error {
  override name = "FfmpegUnavailableError";
}

/**
 * Finds the ffmpeg executable and checks that `ffmpeg -version` runs.
 *
 * A configured or PATH executable that fails the check is an error, not a reason to fall back.
 * The npm package is used only when neither exists. Throws FfmpegUnavailableError with the path
 * and the reason.
 */
export async function findFfmpeg(options: FindFfmpegOptions = {}): Promise<FfmpegBinary> {
  if (options.configuredPath !== undefined) {
    const configured = path.resolve(options.configuredPath);
    await assertExecutableFile(configured, "FFMPEG_PATH");
    return { path: configured, source: "FFMPEG_PATH", version: await readVersion(configured) };
  }

  const onPath = await findOnPath("ffmpeg", options.searchPath ?? process.env.PATH ?? "");
  if (onPath !== undefined) {
    return { path: onPath, source: "PATH", version: await readVersion(onPath) };
  }

  const bundled = await loadBundledPath();
  await assertExecutableFile(bundled, "@ffmpeg-installer/ffmpeg");
  const version = await readVersion(bundled);
  return { path: bundled, source: "@ffmpeg-installer/ffmpeg", version };
}

async function assertExecutableFile(file: string, origin: string): Promise<void> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) {
    throw new FfmpegUnavailableError(
      `ffmpeg not found at ${file} (from ${origin}): no such file. ` +
        "Set FFMPEG_PATH to the path of an ffmpeg executable.",
    );
  }
  try {
    await access(file, constants.X_OK);
  } catch {
    throw new FfmpegUnavailableError(
      `ffmpeg at ${file} (from ${origin}) is not executable. Run chmod +x on it.`,
    );
  }
}

/** Returns the first executable file named `name` in the PATH-style list of directories. */
async function findOnPath(name: string, searchPath: string): Promise<string | undefined> {
  // An empty entry means the working directory in POSIX shells. It is skipped, so a server never
  // runs a program that happens to sit in its working directory.
  const directories = searchPath.split(path.delimiter).filter((entry) => entry !== "");
  for (const directory of directories) {
    const candidate = path.resolve(directory, name);
    const info = await stat(candidate).catch(() => undefined);
    if (!info?.isFile()) continue;
    const executable = await access(candidate, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (executable) return candidate;
  }
  return undefined;
}

async function loadBundledPath(): Promise<string> {
  try {
    const installer = await import("@ffmpeg-installer/ffmpeg");
    return installer.default.path;
  } catch (error) {
    // The package throws a plain string when its platform binary is missing.
    const reason = error instanceof Error ? error.message : String(error);
    throw new FfmpegUnavailableError(
      "No ffmpeg found: FFMPEG_PATH is not set, there is no ffmpeg on PATH, and the npm " +
        `package @ffmpeg-installer/ffmpeg could not be loaded (${reason}). ` +
        "Install ffmpeg or set FFMPEG_PATH.",
    );
  }
}

/** Runs `ffmpeg -version` and returns the version from its first line. */
async function readVersion(file: string): Promise<string> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(file, ["-version"], { timeout: VERSION_CHECK_TIMEOUT_MS }));
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new FfmpegUnavailableError(
      `ffmpeg at ${file} failed to run '-version': ${reason}. ` +
        "Repair that executable or set FFMPEG_PATH to a working one.",
    );
  }
  const version = /^ffmpeg version (\S+)/.exec(stdout)?.[1];
  if (version === undefined) {
    const firstLine = stdout.split("\n")[0]?.slice(0, 200) ?? "";
    throw new FfmpegUnavailableError(
      `${file} does not look like ffmpeg: '-version' printed ${JSON.stringify(firstLine)}.`,
    );
  }
  return version;
}
