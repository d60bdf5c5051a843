// Command-line options and the amount of work each mode does.
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";

export interface BenchPlan {
  mode: "full" | "quick";
  /** Clips compared with the CLI, in seconds, and the pairs of runs for each. */
  singleRequest: { seconds: number; pairs: number }[];
  concurrencyClipSeconds: number;
  /** Requests per concurrency level, shared among its clients. */
  requestsPerLevel: number;
  /** Client counts for each server profile (see bench/README.md). */
  matchedLevels: number[];
  defaultLevels: number[];
  fourJobLevels: number[];
  shortClipSeconds: number;
  longClipSeconds: number;
  /** Short requests measured alone, and at most this many behind the long one. */
  behindSamples: number;
}

export interface BenchOptions {
  plan: BenchPlan;
  threads: number;
  /** Git commit to run the server from; undefined runs the working tree's `src/`. */
  serverRef: string | undefined;
}

const fullPlan: BenchPlan = {
  mode: "full",
  singleRequest: [
    { seconds: 5, pairs: 5 },
    { seconds: 10, pairs: 5 },
    { seconds: 60, pairs: 3 },
  ],
  concurrencyClipSeconds: 10,
  requestsPerLevel: 8,
  matchedLevels: [1, 2, 4],
  defaultLevels: [1, 2, 4],
  fourJobLevels: [4],
  shortClipSeconds: 5,
  longClipSeconds: 600,
  behindSamples: 5,
};

// A smoke run through every step with the least work that still exercises it.
const quickPlan: BenchPlan = {
  mode: "quick",
  singleRequest: [{ seconds: 5, pairs: 2 }],
  concurrencyClipSeconds: 5,
  requestsPerLevel: 4,
  matchedLevels: [1],
  defaultLevels: [1, 2, 4],
  fourJobLevels: [4],
  shortClipSeconds: 5,
  longClipSeconds: 60,
  behindSamples: 2,
};

export const usage = `Usage: npx tsx bench/run.ts [--quick] [--threads N] [--server-ref REF]

Compares earshot with whisper.cpp's CLI on the same model, clips and decoding parameters.

  --quick      a smoke run of a minute or two with fewer and shorter clips; results go to
               bench/.work/results instead of bench/results
  --threads N  threads per job for the CLI and for earshot's matched profile
               (default: every core, ${availableParallelism()} here)
  --server-ref REF
               run the server from this git commit (extracted with git archive) instead
               of the working tree's src/, so that uncommitted edits cannot break the run
  --help       print this text`;

/** Parses argv; throws with a message naming the invalid option. */
export function parseBenchOptions(argv: string[]): BenchOptions | "help" {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      threads: { type: "string" },
      "server-ref": { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return "help";

  const threads = values.threads === undefined ? availableParallelism() : Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`--threads must be a positive integer, got ${values.threads}`);
  }
  return {
    plan: values.quick ? quickPlan : fullPlan,
    threads,
    serverRef: values["server-ref"],
  };
}
