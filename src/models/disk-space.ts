// Free space checks for model downloads, so that a download never fills MODEL_DIR's file system.

import { statfs } from "node:fs/promises";

import { InsufficientSpaceError } from "./download-errors.js";

/** Bytes that downloads leave free on MODEL_DIR's file system, for logs and other writers. */
export const FREE_SPACE_RESERVE_BYTES = 64 * 1024 * 1024;
/** Bytes written between two free space checks during a transfer. */
const CHECK_INTERVAL_BYTES = 4 * 1024 * 1024;

/** Returns the bytes that this process may still write on the file system of `folder`. */
export async function freeBytes(folder: string): Promise<number> {
  const stats = await statfs(folder);
  // bavail, not bfree: blocks kept for root are not available to an ordinary user.
  return stats.bavail * stats.bsize;
}

/**
 * Checks free space while a file of `expectedSize` bytes is written into `folder`. With a known
 * size, the bytes still to come must fit beside the reserve. With an unknown size, the transfer
 * stops once free space falls to the reserve.
 */
export class FreeSpaceGuard {
  private checkedAtBytes = -Infinity;

  constructor(
    private readonly folder: string,
    private readonly expectedSize: number | undefined,
    private readonly url: string,
  ) {}

  /**
   * Throws InsufficientSpaceError when the rest of the file does not fit. Reads the free space
   * on the first call and then once per CHECK_INTERVAL_BYTES written.
   */
  async check(bytesWritten: number): Promise<void> {
    if (bytesWritten - this.checkedAtBytes < CHECK_INTERVAL_BYTES) return;
    this.checkedAtBytes = bytesWritten;

    const available = await freeBytes(this.folder);
    const neededBytes =
      this.expectedSize === undefined ? 0 : Math.max(0, this.expectedSize - bytesWritten);
    if (neededBytes + FREE_SPACE_RESERVE_BYTES <= available) return;

    throw new InsufficientSpaceError({
      expectedSize: this.expectedSize,
      bytesWritten,
      freeBytes: available,
      reserveBytes: FREE_SPACE_RESERVE_BYTES,
      url: this.url,
    });
  }
}
