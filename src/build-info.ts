// Which code this process runs: set at image build time through EARSHOT_VERSION,
// EARSHOT_REVISION and EARSHOT_BUILD_DATE; outside an image, the package version and the git
// revision of the checkout, when there is one.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

export interface BuildInfo {
  version: string;
  revision: string;
  buildDate: string | undefined;
}

function packageVersion(): string {
  const packageJson = new URL("../package.json", import.meta.url);
  return (JSON.parse(readFileSync(packageJson, "utf8")) as { version: string }).version;
}

function gitRevision(): string {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], {
      cwd: new URL("..", import.meta.url),
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 2000,
    }).trim();
  } catch {
    return "unknown";
  }
}

export function readBuildInfo(env: Record<string, string | undefined> = process.env): BuildInfo {
  return {
    version: env.EARSHOT_VERSION || packageVersion(),
    revision: env.EARSHOT_REVISION || gitRevision(),
    buildDate: env.EARSHOT_BUILD_DATE || undefined,
  };
}
