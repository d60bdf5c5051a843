import type { FastifyInstance } from "fastify";
import type { BuildInfo } from "../build-info.js";

export interface HealthOptions {
  build: BuildInfo;
  authEnabled: boolean;
}

/** GET /health: served without a key; returns which code runs and whether auth is on. */
export async function healthRoutes(app: FastifyInstance, options: HealthOptions): Promise<void> {
  app.get("/health", async () => ({
    status: "ok",
    version: options.build.version,
    revision: options.build.revision,
    build_date: options.build.buildDate ?? null,
    auth: options.authEnabled,
  }));
}
