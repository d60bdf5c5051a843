// Loads `.env` from the working directory when there is one, before any other module reads the
// environment. Variables already set in the environment win over the file.
import { existsSync } from "node:fs";
import path from "node:path";

export const envFilePath = path.resolve(".env");
export const envFileLoaded = existsSync(envFilePath);

if (envFileLoaded) process.loadEnvFile(envFilePath);
