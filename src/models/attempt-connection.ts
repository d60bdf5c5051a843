// The HTTP requests of one download attempt, with the connect and stall timeouts.

import { HubUnavailableError, type HubUnavailableReason } from "./download-errors.js";
import type { DownloadSettings } from "./download.js";

/**
 * The requests of one attempt. They share one AbortController, which the caller's signal, the
 * connect timeout and the stall timeout all abort.
 */
export class AttemptConnection {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private expiredTimeout: "connect_timeout" | "stalled" | undefined;
  private readonly forwardAbort = () => this.controller.abort(this.settings.signal?.reason);

  constructor(private readonly settings: DownloadSettings) {
    settings.signal?.addEventListener("abort", this.forwardAbort);
    if (settings.signal?.aborted) this.forwardAbort();
  }

  /** Sends a GET for the bytes from `rangeStart` on, without following redirects. */
  async get(url: string, rangeStart: number): Promise<Response> {
    // identity: a compressed body would break the byte counts that ranges and sizes rely on.
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (rangeStart > 0) headers.range = `bytes=${rangeStart}-`;

    this.arm("connect_timeout", this.settings.connectTimeoutMs);
    try {
      return await fetch(url, { headers, redirect: "manual", signal: this.controller.signal });
    } catch (error) {
      throw this.translate(error, "connect_failed", url);
    } finally {
      this.disarm();
    }
  }

  /** Yields the body's chunks; fails with HubUnavailableError if it stalls or is cut off. */
  async *body(response: Response): AsyncGenerator<Uint8Array> {
    if (!response.body) return;

    this.arm("stalled", this.settings.stallTimeoutMs);
    try {
      for await (const chunk of response.body) {
        this.timer?.refresh();
        yield chunk;
      }
    } catch (error) {
      throw this.translate(error, "connection_dropped", response.url);
    } finally {
      this.disarm();
    }
  }

  /** Stops the timers and aborts whatever is still open, such as an unread body. */
  close(): void {
    this.disarm();
    this.settings.signal?.removeEventListener("abort", this.forwardAbort);
    this.controller.abort();
  }

  private arm(timeout: "connect_timeout" | "stalled", delayMs: number): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.expiredTimeout = timeout;
      this.controller.abort();
    }, delayMs);
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Maps a fetch failure to the caller's abort reason or a HubUnavailableError. */
  private translate(error: unknown, reason: HubUnavailableReason, requestUrl: string): unknown {
    const { signal, url } = this.settings;
    if (signal?.aborted) return signal.reason;

    const origin = new URL(requestUrl).origin;
    if (this.expiredTimeout === "connect_timeout") {
      const message = `${origin} did not respond within ${this.settings.connectTimeoutMs} ms`;
      return new HubUnavailableError("connect_timeout", message, url, { cause: error });
    }
    if (this.expiredTimeout === "stalled") {
      const message = `${origin} sent no data for ${this.settings.stallTimeoutMs} ms`;
      return new HubUnavailableError("stalled", message, url, { cause: error });
    }
    // fetch reports every network failure as a TypeError with the socket error as its cause.
    if (!(error instanceof TypeError)) return error;

    const detail = error.cause instanceof Error ? error.cause.message : error.message;
    const message =
      reason === "connect_failed"
        ? `Could not connect to ${origin}: ${detail}`
        : `The connection to ${origin} closed during the download: ${detail}`;
    return new HubUnavailableError(reason, message, url, { cause: error });
  }
}
