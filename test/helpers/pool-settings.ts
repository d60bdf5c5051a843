import type { PoolSettings } from "../../src/engine/model-pool.js";

/** Engine settings for pools built directly in tests: one thread and bounded decoding. */
export const TEST_POOL_SETTINGS: PoolSettings = {
  threadsPerJob: 1,
  beamSize: 1,
  temperatureFallback: false,
  maxSegmentTokens: 8,
  gpu: false,
  modelIdleSeconds: 600,
  maxLoadedModels: 2,
};
