// Vitest global setup: writes the random-weight micro models that tests load into test/.models/
// (git-ignored) once per run. Files already there with the right size are kept, so only the
// first run pays the second or so that generation takes.
import path from "node:path";

import { ensureTestModels } from "../../scripts/generate-test-models.js";

export const TEST_MODEL_DIR = path.resolve(import.meta.dirname, "../.models");

export default async function setup(): Promise<void> {
  await ensureTestModels(TEST_MODEL_DIR, ["micro", "micro.en"]);
}
