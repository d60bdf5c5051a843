// GET /v1/models and GET /v1/models/{id}, in OpenAI's list and model shapes.
// Reference: https://platform.openai.com/docs/api-reference/models
import type { FastifyInstance } from "fastify";
import type { ModelPool } from "../engine/model-pool.js";
import type { InstalledModel, ModelStore } from "../models/store.js";

export interface ModelRoutesOptions {
  store: ModelStore;
  pool: ModelPool;
}

function toModelObject(model: InstalledModel, pool: ModelPool) {
  return {
    id: model.name,
    object: "model" as const,
    created: model.createdAt,
    owned_by: "earshot",
    size_bytes: model.sizeBytes,
    loaded: pool.isLoaded(model.name),
  };
}

export async function modelRoutes(app: FastifyInstance, options: ModelRoutesOptions): Promise<void> {
  const { store, pool } = options;

  app.get("/v1/models", async () => {
    const installed = await store.list();
    return { object: "list", data: installed.map((model) => toModelObject(model, pool)) };
  });

  // A wildcard, so model ids that contain slashes reach the handler whole.
  app.get<{ Params: { "*": string } }>("/v1/models/*", async (request) => {
    const model = await store.find(store.resolveName(request.params["*"]));
    return toModelObject(model, pool);
  });
}
