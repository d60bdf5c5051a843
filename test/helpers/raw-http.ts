// A TCP client for requests that `inject` and fetch cannot send: malformed HTTP, chosen chunk
// boundaries, several requests on one keep-alive connection.
import { connect, type Socket } from "node:net";

export interface RawResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
}

export class RawConnection {
  private received = Buffer.alloc(0);
  private closed = false;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.notify();
    });
    socket.on("close", () => {
      this.closed = true;
      this.notify();
    });
    // A server that closes while the client still writes causes EPIPE or ECONNRESET here;
    // tests read what arrived and check `isClosed`.
    socket.on("error", () => undefined);
  }

  /** Connects to `address`, an `http://127.0.0.1:PORT` URL as `listen` returns it. */
  static open(address: string): Promise<RawConnection> {
    const url = new URL(address);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.off("error", reject);
        resolve(new RawConnection(socket));
      });
      socket.once("error", reject);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Writes `data` and resolves once the socket has taken it, or when the server closed. */
  write(data: string | Buffer): Promise<void> {
    if (this.closed || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.socket.write(data, () => resolve()));
  }

  /** Checks whether a whole response has arrived, without consuming it. */
  hasResponse(): boolean {
    return parseResponse(this.received) !== undefined;
  }

  /** Waits for the next whole response and removes it from the received bytes. */
  async readResponse(timeoutMs = 10_000): Promise<RawResponse> {
    await this.waitUntil(() => this.hasResponse() || this.closed, timeoutMs);
    const parsed = parseResponse(this.received);
    if (!parsed) {
      throw new Error(`no whole response before close; received: ${this.received.toString()}`);
    }
    this.received = this.received.subarray(parsed.length);
    return parsed.response;
  }

  /** Waits for the server to close the connection; returns false if it stays open. */
  async waitForClose(timeoutMs = 5_000): Promise<boolean> {
    await this.waitUntil(() => this.closed, timeoutMs).catch(() => undefined);
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!condition()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms; received: ${this.received}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** Parses one response from the start of `bytes`; undefined until all of it has arrived. */
function parseResponse(bytes: Buffer): { response: RawResponse; length: number } | undefined {
  const headEnd = bytes.indexOf("\r\n\r\n");
  if (headEnd === -1) return undefined;
  const [statusLine = "", ...headerLines] = bytes.subarray(0, headEnd).toString().split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(statusLine.split(" ")[1]);
  const bodyStart = headEnd + 4;
  const body =
    headers["transfer-encoding"] === "chunked"
      ? parseChunkedBody(bytes, bodyStart)
      : parseSizedBody(bytes, bodyStart, Number(headers["content-length"] ?? 0));
  if (!body) return undefined;
  return { response: { status, headers, body: body.text }, length: body.end };
}

function parseSizedBody(bytes: Buffer, start: number, size: number) {
  if (bytes.length < start + size) return undefined;
  return { text: bytes.subarray(start, start + size).toString(), end: start + size };
}

function parseChunkedBody(bytes: Buffer, start: number) {
  const chunks: Buffer[] = [];
  let offset = start;
  for (;;) {
    const sizeEnd = bytes.indexOf("\r\n", offset);
    if (sizeEnd === -1) return undefined;
    const size = parseInt(bytes.subarray(offset, sizeEnd).toString(), 16);
    const dataStart = sizeEnd + 2;
    if (bytes.length < dataStart + size + 2) return undefined;
    if (size === 0) return { text: Buffer.concat(chunks).toString(), end: dataStart + 2 };
    chunks.push(bytes.subarray(dataStart, dataStart + size));
    offset = dataStart + size + 2;
  }
}
