// Reads a multipart/form-data request: the `file` part is streamed to a temporary file (never
// held in memory), the other fields are collected as strings.
import { createWriteStream } from "node:fs";
import { rmSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { Multipart, MultipartFile } from "@fastify/multipart";
import type { FastifyRequest } from "fastify";
import { ApiError } from "../errors.js";
import { uploadTooLarge } from "../plugins/errors.js";
import { RequestBodyGuard } from "./body-guard.js";

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
  assertMultipartRequest(request);

  // Fastify's bodyLimit: MAX_UPLOAD_BYTES plus the overhead the app allows for the other fields.
  const guard = new RequestBodyGuard(request.raw, request.routeOptions.bodyLimit);
  try {
    return await collectParts(request.parts(), folder, guard);
  } catch (error) {
    throw guard.signal.aborted ? guard.signal.reason : toFormError(error);
  } finally {
    guard.release();
  }
}

/** RFC 2046 limits a multipart boundary to 70 characters. */
const MAX_BOUNDARY_LENGTH = 70;

function assertMultipartRequest(request: FastifyRequest): void {
  if (!request.isMultipart()) {
    throw new ApiError(
      "invalid_request",
      "The request must be multipart/form-data with the audio in a field named 'file'.",
      { param: "file" },
    );
  }
  const boundary = /;\s*boundary=(?:"([^"]*)"|([^;\s]*))/i.exec(
    request.headers["content-type"] ?? "",
  );
  const value = boundary?.[1] ?? boundary?.[2] ?? "";
  if (value.length === 0 || value.length > MAX_BOUNDARY_LENGTH) {
    throw new ApiError(
      "invalid_request",
      "The Content-Type header needs a boundary of 1 to 70 characters, as in " +
        "'multipart/form-data; boundary=...'.",
      { param: "file" },
    );
  }
}

/**
 * Reads parts until the form ends. Each step races the guard, because a stalled parser never
 * settles the iterator.
 */
async function collectParts(
  parts: AsyncIterableIterator<Multipart>,
  folder: UploadFolder,
  guard: RequestBodyGuard,
): Promise<UploadedForm> {
  const form: UploadedForm = { fields: new Map(), file: undefined };
  for (;;) {
    const next = await guard.race(parts.next());
    if (next.done) return form;
    guard.reportProgress();
    await addPart(form, next.value, folder, guard);
  }
}

async function addPart(
  form: UploadedForm,
  part: Multipart,
  folder: UploadFolder,
  guard: RequestBodyGuard,
): Promise<void> {
  const name = partName(part);
  if (part.type === "file") {
    await addFile(form, part, name, folder, guard);
    return;
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

/**
 * Returns the part's field name without the `[]` of a repeated field such as `include[]`.
 * Raises a 400 when the part has no name.
 */
function partName(part: Multipart): string {
  // busboy passes no name when the Content-Disposition header lacks one, despite the types.
  const fieldname = part.fieldname as string | undefined;
  if (fieldname === undefined) {
    throw new ApiError(
      "invalid_request",
      "A part of the form has no name: its Content-Disposition header needs " +
        `'form-data; name="..."'.`,
      part.type === "file" ? { param: "file" } : {},
    );
  }
  return fieldname.endsWith("[]") ? fieldname.slice(0, -2) : fieldname;
}

async function addFile(
  form: UploadedForm,
  part: MultipartFile,
  name: string,
  folder: UploadFolder,
  guard: RequestBodyGuard,
): Promise<void> {
  if (name !== "file") {
    part.file.resume();
    return;
  }
  if (form.file) {
    throw new ApiError("invalid_request", "Send one audio file per request.", { param: "file" });
  }
  const target = path.join(await folder.create(), "upload");
  part.file.on("data", guard.reportProgress);
  await pipeline(part.file, createWriteStream(target, { mode: 0o600 }), { signal: guard.signal });
  form.file = { path: target, filename: part.filename, sizeBytes: (await stat(target)).size };
}

/**
 * Turns a parser error into a 400. busboy raises plain errors without a code for a malformed
 * body ("Unexpected end of multipart data", "Part terminated early..."). Errors with a code keep
 * their status: @fastify/multipart's limits (413) and system errors such as ENOSPC (500).
 */
function toFormError(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof ApiError) return error;
  if ("code" in error || "statusCode" in error) return error;
  return new ApiError(
    "invalid_request",
    `The multipart body is malformed (${error.message}). Check that the boundary in the ` +
      "Content-Type header matches the body and that the body ends with the closing boundary.",
    { param: "file", cause: error },
  );
}

/**
 * An `onRequest` hook that rejects with 413 as soon as a declared Content-Length is over the limit,
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
