// Where the benchmarked server's code comes from: the working tree, or a commit extracted with
// `git archive` so that edits in progress elsewhere in the checkout cannot break a long run.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";

import { runCommand } from "./process.js";

export interface ServerSource {
  /** Folder that contains `src/server.ts` and the `package.json` beside it. */
  root: string;
  /** "working tree", or the commit's full hash. */
  description: string;
}

const gitTimeoutMs = 60_000;

/**
 * Extracts `src/` and `package.json` at `ref` into `workDir/server-<hash>/`, once per commit.
 * The copy sits inside the checkout, so Node finds the checkout's node_modules from it.
 */
export async function extractServerSource(
  repoRoot: string,
  workDir: string,
  ref: string,
): Promise<ServerSource> {
  const revParse = await runCommand("git", ["rev-parse", "--verify", `${ref}^{commit}`], {
    cwd: repoRoot,
    timeoutMs: gitTimeoutMs,
  });
  const commit = revParse.stdout.toString("utf8").trim();
  const root = path.join(workDir, `server-${commit.slice(0, 12)}`);
  if (!existsSync(path.join(root, "src", "server.ts"))) {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    const archive = `${root}.tar`;
    try {
      await runCommand("git", ["archive", `--output=${archive}`, commit, "src", "package.json"], {
        cwd: repoRoot,
        timeoutMs: gitTimeoutMs,
      });
      await runCommand("tar", ["-xf", archive, "-C", root], { timeoutMs: gitTimeoutMs });
    } finally {
      rmSync(archive, { force: true });
    }
  }
  return { root, description: commit };
}
