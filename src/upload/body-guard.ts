// Limits on reading a multipart body. @fastify/multipart pipes the raw request straight into
// busboy, so Fastify's `bodyLimit` never applies to it, and busboy can stop parsing for good
// while the request waits for its form.
import type { IncomingMessage } from "node:http";
import { errorCodes } from "fastify";
import { ApiError } from "../errors.js";

/**
 * Time without progress, once the client has nothing more to send, after which the form is
 * abandoned. @fastify/busboy 3.2.6 skips some parts, such as a part without a form-data
 * Content-Disposition header. It never finishes the form when the last part is skipped and more
 * than the part stream's highWaterMark (16 KiB) of it arrives in the same write as the closing
 * boundary. Its Dicer parser then waits for the skipped part to be read, but the part has
 * already ended, so the write never completes and neither an error nor the end of the form
 * follows. No option or event of busboy or @fastify/multipart reaches that state from outside,
 * so this timeout is the bound.
 */
export const FORM_STALL_TIMEOUT_MS = 5_000;

/**
 * Counts the bytes of a request body as they arrive and watches the form parser for a stall.
 * `signal` aborts with a 413 error once the body passes `maxBytes`, and with a 400 error once
 * the parser stalls.
 */
export class RequestBodyGuard {
  private readonly controller = new AbortController();
  private readonly stallTimer: NodeJS.Timeout;
  private readonly aborted: Promise<never>;
  private receivedBytes = 0;

  /**
   * Call it in the same tick as the first read of the form: listening for `data` starts the
   * body flowing on the next tick, and bytes that flow before the parser listens are lost.
   */
  constructor(
    private readonly body: IncomingMessage,
    private readonly maxBytes: number,
  ) {
    this.aborted = new Promise<never>((_resolve, reject) => {
      this.signal.addEventListener("abort", () => reject(this.signal.reason), { once: true });
    });
    // Observed by `race`; this handler only keeps an abort between two races from counting as
    // an unhandled rejection.
    this.aborted.catch(() => undefined);
    this.stallTimer = setTimeout(this.checkStall, FORM_STALL_TIMEOUT_MS).unref();
    body.on("data", this.countBytes);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Settles like `step`, or rejects with the abort reason first. */
  race<T>(step: Promise<T>): Promise<T> {
    return Promise.race([step, this.aborted]);
  }

  /** Restarts the stall timeout. Call it when the parser produces a part or a chunk of a file. */
  readonly reportProgress = (): void => {
    this.stallTimer.refresh();
  };

  /**
   * Stops watching. A body not read to its end is detached from the parser and discarded as it
   * arrives, so that the response reaches the client and the connection can carry another
   * request. A client that keeps sending is bounded by Node's requestTimeout.
   */
  release(): void {
    clearTimeout(this.stallTimer);
    this.body.off("data", this.countBytes);
    if (!this.body.readableEnded) {
      this.body.unpipe();
      this.body.resume();
    }
  }

  private readonly countBytes = (chunk: Buffer): void => {
    this.receivedBytes += chunk.length;
    this.stallTimer.refresh();
    if (this.receivedBytes > this.maxBytes) {
      this.controller.abort(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    }
  };

  private readonly checkStall = (): void => {
    // The body is flowing and unfinished, so the client is the slow side. Node's requestTimeout
    // bounds a slow upload.
    if (this.body.readableFlowing === true && !this.body.readableEnded) {
      this.stallTimer.refresh();
      return;
    }
    this.controller.abort(
      new ApiError(
        "invalid_request",
        `The multipart body was received, but the form did not end within ` +
          `${FORM_STALL_TIMEOUT_MS / 1000} s. Check that every part has a ` +
          `'Content-Disposition: form-data; name="..."' header.`,
        { param: "file" },
      ),
    );
  };
}
