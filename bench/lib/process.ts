// Child processes with a time limit, so that no step of the benchmark can hang.
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";

export interface CommandResult {
  stdout: Buffer;
  stderr: Buffer;
  /** Wall time from spawn to exit, in milliseconds. */
  wallMs: number;
}

export interface CommandOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
}

/** Runs a command to completion; rejects on a non-zero exit, a signal or the time limit. */
export function runCommand(
  command: string,
  args: readonly string[],
  options: CommandOptions,
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));

    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.timeoutMs);

    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`${command} failed to start: ${error.message}`, { cause: error }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const wallMs = performance.now() - started;
      const result = { stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr), wallMs };
      if (timedOut) {
        reject(new Error(`${command} timed out after ${options.timeoutMs} ms`));
      } else if (code !== 0) {
        const tail = result.stderr.toString("utf8").slice(-2000);
        reject(new Error(`${command} ${args.join(" ")} exited with ${code ?? signal}:\n${tail}`));
      } else {
        resolve(result);
      }
    });
  });
}
