// Sizes libuv's thread pool before anything uses it. whisper.cpp jobs and model loads run on that
// pool, and with Node's default of 4 threads, four long transcriptions would leave no thread for
// file system work (uploads, temporary files) until one of them ends.
// Imported first by the entry point: the size is read once, when the pool starts.
import { availableParallelism } from "node:os";

const DEFAULT_POOL_THREADS = 4;

if (process.env.UV_THREADPOOL_SIZE === undefined) {
  const jobs = Number(process.env.MAX_CONCURRENT_JOBS) || Math.min(4, availableParallelism());
  // One thread per job, one for a model load per job, and the default four for everything else.
  process.env.UV_THREADPOOL_SIZE = String(DEFAULT_POOL_THREADS + 2 * jobs);
}
