// GET /v1/models and GET, POST and DELETE /v1/models/{id}, in OpenAI's list and model shapes,
// with earshot's fields: whether a model is installed, loaded or being downloaded.
// Reference: https://platform.openai.com/docs/api-reference/models
import type { FastifyInstance } from "fastify";
import type { ModelPool } from "../engine/model-pool.js";
import { ApiError } from "../errors.js";
import type { ModelRef } from "../models/model-ids.js";
import { OPENAI_MODEL_NAMES, type InstalledModel, type ModelStore } from "../models/store.js";

export interface ModelRoutesOptions {
  store: ModelStore;
  pool: ModelPool;
}

interface ModelObject {
  id: string;
  object: "model";
  /** Unix seconds when the file was written; 0 for a model not installed. */
  created: number;
  owned_by: string;
  /** False for a model that is listed because it can be downloaded. */
  installed: boolean;
  loaded: boolean;
  downloading: boolean;
  size_bytes: number | null;
}

/** Model ids may contain slashes (`owner/repo/file.bin`), so the routes take a wildcard. */
type ModelIdParams = { Params: { "*": string } };

export async function modelRoutes(
  app: FastifyInstance,
  options: ModelRoutesOptions,
): Promise<void> {
  const { store, pool } = options;

  app.get("/v1/models", async () => {
    const installed = await store.list();
    const installedIds = new Set(installed.map((model) => model.id));
    const available = store.catalog().filter((model) => !installedIds.has(model.id));
    const data = [
      ...installed.map((model) => installedObject(model, pool)),
      ...available.map((model) => availableObject(model, store)),
    ];
    return { object: "list", data };
  });

  app.get<ModelIdParams>("/v1/models/*", async (request) => {
    const model = store.resolve(request.params["*"]);
    const installed = await store.find(model);
    if (installed) return installedObject(installed, pool);
    if (store.mayDownload(model)) return availableObject(model, store);
    // Neither installed nor downloadable, so `get` throws the 404 that explains why.
    return installedObject(await store.get(model), pool);
  });

  // Waits for the download. A client that goes away does not stop it, so the model is still
  // installed for the next request.
  app.post<ModelIdParams>("/v1/models/*", async (request, reply) => {
    const { model, downloaded } = await store.download(store.resolve(request.params["*"]));

    return reply.code(downloaded ? 201 : 200).send(installedObject(model, pool));
  });

  app.delete<ModelIdParams>("/v1/models/*", async (request) => {
    const model = resolveForDelete(store, request.params["*"]);
    assertNotBusy(model, store, pool);

    await store.remove(model, async () => {
      if (!(await pool.unload(model.id))) throw modelInUse(model, pool);
    });
    request.log.info({ model: model.id }, "model deleted");
    return { id: model.id, object: "model", deleted: true };
  });
}

function installedObject(model: InstalledModel, pool: ModelPool): ModelObject {
  return {
    id: model.id,
    object: "model",
    created: model.createdAt,
    owned_by: "earshot",
    installed: true,
    loaded: pool.isLoaded(model.id),
    downloading: false,
    size_bytes: model.sizeBytes,
  };
}

function availableObject(model: ModelRef, store: ModelStore): ModelObject {
  return {
    id: model.id,
    object: "model",
    created: 0,
    owned_by: "earshot",
    installed: false,
    loaded: false,
    downloading: store.isDownloading(model),
    size_bytes: null,
  };
}

/** Rejects OpenAI's names, which mean the default model, so that no alias deletes a file. */
function resolveForDelete(store: ModelStore, requested: string): ModelRef {
  if (OPENAI_MODEL_NAMES.has(requested)) {
    throw new ApiError(
      "invalid_request",
      `'${requested}' is an alias of the default model '${store.defaultModel}'. ` +
        "Delete the model by its own id.",
      { param: "model" },
    );
  }
  return store.resolve(requested);
}

function assertNotBusy(model: ModelRef, store: ModelStore, pool: ModelPool): void {
  if (pool.usersOf(model.id) > 0) throw modelInUse(model, pool);
  if (store.isDownloading(model)) {
    throw new ApiError(
      "model_in_use",
      `Model '${model.id}' is being downloaded. Retry after the download ends.`,
    );
  }
}

function modelInUse(model: ModelRef, pool: ModelPool): ApiError {
  const jobs = pool.usersOf(model.id);
  return new ApiError(
    "model_in_use",
    `Model '${model.id}' is in use by ${jobs} job${jobs === 1 ? "" : "s"}. ` +
      "Retry after they finish.",
  );
}
