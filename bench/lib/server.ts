// Starts and stops an earshot server on 127.0.0.1 for the benchmark, and reads its memory use.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { ServerLog } from "./server-log.js";

export interface ServerOptions {
  /** Folder that contains `src/server.ts`: the checkout, or a commit extracted from it. */
  serverRoot: string;
  modelDir: string;
  defaultModel: string;
  /** Variables that set earshot's engine and scheduler, on top of the inherited environment. */
  settings: Record<string, string>;
  /** File that receives the server's stdout and stderr, for reading after a run. */
  logPath: string;
}

export interface RunningServer {
  baseUrl: string;
  pid: number;
  log: ServerLog;
  stop(): Promise<void>;
}

const host = "127.0.0.1";
const startTimeoutMs = 60_000;
const stopTimeoutMs = 15_000;
const pollIntervalMs = 200;

/** Every server this process started and has not stopped, for cleanup on exit or a signal. */
const runningChildren = new Set<ChildProcess>();

/** Starts `src/server.ts` through tsx and waits until it responds to HTTP requests. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const port = await findFreePort();
  const logFile = createWriteStream(options.logPath);
  const entry = path.join(options.serverRoot, "src", "server.ts");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: host,
    PORT: String(port),
    MODEL_DIR: options.modelDir,
    DEFAULT_MODEL: options.defaultModel,
    LOG_LEVEL: "info",
    SHUTDOWN_GRACE_SECONDS: "5",
    ...options.settings,
  };
  // An inherited key would make every benchmark request fail with 401.
  delete env.API_KEY;

  const child = spawn(process.execPath, ["--import", "tsx", entry], {
    cwd: options.serverRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  runningChildren.add(child);
  const serverLog = new ServerLog();
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => serverLog.append(chunk));
  child.stdout?.pipe(logFile);
  child.stderr?.pipe(logFile);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  exited.then(() => runningChildren.delete(child), () => undefined);

  const baseUrl = `http://${host}:${port}`;
  const stop = () => stopChild(child, exited);
  try {
    await waitUntilListening(baseUrl, child);
  } catch (error) {
    await stop();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${reason}; server log:\n${tailOf(options.logPath)}`, { cause: error });
  }
  return { baseUrl, pid: child.pid as number, log: serverLog, stop };
}

async function waitUntilListening(baseUrl: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`earshot exited during startup (${child.exitCode ?? child.signalCode})`);
    }
    try {
      // Any HTTP status means the server is listening; the path need not exist.
      await fetch(`${baseUrl}/v1/models`, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      await sleep(pollIntervalMs);
    }
  }
  throw new Error(`earshot did not listen on ${baseUrl} within ${startTimeoutMs} ms`);
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const stopped = await Promise.race([exited.then(() => true), sleep(stopTimeoutMs, false)]);
  if (!stopped) {
    child.kill("SIGKILL");
    await exited;
  }
}

/** Kills every server still running; safe to call from an `exit` handler. */
export function killRunningServers(): void {
  for (const child of runningChildren) child.kill("SIGKILL");
  runningChildren.clear();
}

function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      probe.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("could not find a free port on 127.0.0.1"));
      });
    });
  });
}

function tailOf(logPath: string): string {
  try {
    return readFileSync(logPath, "utf8").slice(-3000);
  } catch {
    return "(no log)";
  }
}

export interface ProcessMemory {
  /** Resident set size now, in bytes. */
  rssBytes: number;
  /** The kernel's record of the highest resident set size so far (VmHWM), in bytes. */
  peakRssBytes: number;
}

/** Reads VmRSS and VmHWM from /proc (Linux only). */
export function readProcessMemory(pid: number): ProcessMemory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kilobytes = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${field} line`);
    return Number(match[1]) * 1024;
  };
  return { rssBytes: kilobytes("VmRSS"), peakRssBytes: kilobytes("VmHWM") };
}
