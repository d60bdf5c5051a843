// Reads a multipart/form-data request: the `file` part is streamed to a temporary file (never
// held in memory), the other fields are collected as strings.
import { createWriteStream } from "node:fs";
import { rmSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { FastifyRequest } from "fastify";
import { ApiError } from "../errors.js";
import { uploadTooLarge } from "../plugins/errors.js";

/** Limits on the form's parts other than the file. */
const MAX_FIELDS = 64;
const MAX_FIELD_BYTES = 64 * 1024;
const MAX_PARTS = 128;

export interface UploadedFile {
  path: string;
  /** The name the client gave; only for logs, never used to guess the format. */
  filename: string;
  sizeBytes: number;
}

export interface UploadedForm {
  /** Every value of each field, by name; `key[]` is stored under `key`. */
  fields: Map<string, string[]>;
  file: UploadedFile | undefined;
}

/** Upload folders are named after the process, so a later start can tell whose they are. */
const UPLOAD_FOLDER_PREFIX = "earshot-upload-";

/** Folders of requests in progress, removed synchronously if the process must exit at once. */
const openFolders = new Set<string>();

/** A per-request temporary folder, removed by `remove()` whatever happened. */
export class UploadFolder {
  private folder: string | undefined;

  async create(): Promise<string> {
    if (!this.folder) {
      this.folder = await mkdtemp(path.join(tmpdir(), `${UPLOAD_FOLDER_PREFIX}${process.pid}-`));
      openFolders.add(this.folder);
    }
    return this.folder;
  }

  async remove(): Promise<void> {
    if (!this.folder) return;
    const folder = this.folder;
    this.folder = undefined;
    await rm(folder, { recursive: true, force: true });
    openFolders.delete(folder);
  }
}

/** Removes the folders of requests still in progress; for a forced exit. */
export function removeOpenUploadFoldersSync(): void {
  for (const folder of openFolders) rmSync(folder, { recursive: true, force: true });
  openFolders.clear();
}

/**
 * Removes upload folders left by earshot processes that no longer run (killed before they could
 * clean up). Folders of live processes, such as another server sharing the temporary folder,
 * are kept. Returns the number removed.
 */
export async function removeStaleUploadFolders(): Promise<number> {
  const pattern = new RegExp(`^${UPLOAD_FOLDER_PREFIX}(\\d+)-`);
  let removed = 0;
  for (const entry of await readdir(tmpdir()).catch(() => [])) {
    const pid = Number(pattern.exec(entry)?.[1]);
    if (!pid || pid === process.pid || isProcessAlive(pid)) continue;
    await rm(path.join(tmpdir(), entry), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM means the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function multipartLimits(maxUploadBytes: number) {
  return {
    fileSize: maxUploadBytes,
    files: 4,
    fields: MAX_FIELDS,
    fieldSize: MAX_FIELD_BYTES,
    parts: MAX_PARTS,
  };
}

/** Reads the whole form; the uploaded file lands in `folder`. */
export async function readForm(request: FastifyRequest, folder: UploadFolder): Promise<UploadedForm> {
  if (!request.isMultipart()) {
    throw new ApiError(
      "invalid_request",
      "The request must be multipart/form-data with the audio in a field named 'file'.",
      { param: "file" },
    );
  }

  const form: UploadedForm = { fields: new Map(), file: undefined };
  for await (const part of request.parts()) {
    const name = part.fieldname.endsWith("[]") ? part.fieldname.slice(0, -2) : part.fieldname;
    if (part.type === "file") {
      if (name !== "file") {
        part.file.resume();
        continue;
      }
      if (form.file) {
        throw new ApiError("invalid_request", "Send one audio file per request.", {
          param: "file",
        });
      }
      const target = path.join(await folder.create(), "upload");
      await pipeline(part.file, createWriteStream(target, { mode: 0o600 }));
      form.file = { path: target, filename: part.filename, sizeBytes: (await stat(target)).size };
      continue;
    }
    if (part.valueTruncated) {
      throw new ApiError(
        "invalid_request",
        `The field '${name}' is longer than ${MAX_FIELD_BYTES} bytes.`,
        { param: name },
      );
    }
    const values = form.fields.get(name) ?? [];
    values.push(String(part.value));
    form.fields.set(name, values);
  }
  return form;
}

/**
 * An `onRequest` hook that answers 413 as soon as a declared Content-Length is over the limit,
 * before any of the body is read. Chunked uploads are held to the same limit while streaming.
 */
export function rejectOversizedRequest(maxUploadBytes: number, formOverheadBytes: number) {
  return async (request: FastifyRequest): Promise<void> => {
    const declared = Number(request.headers["content-length"]);
    if (Number.isFinite(declared) && declared > maxUploadBytes + formOverheadBytes) {
      throw uploadTooLarge(maxUploadBytes);
    }
  };
}
