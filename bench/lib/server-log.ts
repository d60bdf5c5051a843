// earshot's pino log, read from its stdout as it is written: one JSON object a line.

export interface LogEntry {
  msg?: string;
  [field: string]: unknown;
}

export class ServerLog {
  private readonly entries: LogEntry[] = [];
  private partialLine = "";

  /** Adds a chunk of output; lines that are not JSON (native library output) are skipped. */
  append(chunk: string): void {
    const lines = (this.partialLine + chunk).split("\n");
    this.partialLine = lines.pop() ?? "";
    for (const line of lines) {
      const entry = parseEntry(line);
      if (entry) this.entries.push(entry);
    }
  }

  withMessage(message: string): LogEntry[] {
    return this.entries.filter((entry) => entry.msg === message);
  }
}

function parseEntry(line: string): LogEntry | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === "object" && value !== null ? (value as LogEntry) : undefined;
  } catch {
    return undefined;
  }
}
