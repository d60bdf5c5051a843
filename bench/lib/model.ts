// The benchmark's model: tiny.en's exact shape with random weights, so it costs what the real
// tiny.en costs to run without downloading it.
import { existsSync } from "node:fs";
import path from "node:path";

import { runCommand } from "./process.js";

export interface BenchModel {
  /** The name a client sends in the `model` field. */
  name: string;
  path: string;
  directory: string;
}

export const benchModelName = "tiny.en-shape";

const generateTimeoutMs = 2 * 60_000;

/** Generates the model into `modelDir` unless an earlier run left it there. */
export async function ensureBenchModel(repoRoot: string, modelDir: string): Promise<BenchModel> {
  const modelPath = path.join(modelDir, `ggml-${benchModelName}.bin`);
  if (!existsSync(modelPath)) {
    const script = path.join(repoRoot, "scripts", "generate-test-models.ts");
    if (!existsSync(script)) {
      throw new Error(`the model generator ${script} is missing`);
    }
    const args = ["--import", "tsx", script, "--out", modelDir, "--only", benchModelName];
    await runCommand(process.execPath, args, { cwd: repoRoot, timeoutMs: generateTimeoutMs });
  }
  if (!existsSync(modelPath)) {
    throw new Error(`the model generator did not write ${modelPath}`);
  }
  return { name: benchModelName, path: modelPath, directory: modelDir };
}
