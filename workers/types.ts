/**
 * Worker types: where a registered function runs.
 *
 * @module
 */

/**
 * Where a function runs: `async` on the server's event loop, `thread` in a pool
 * of Web Workers, `process` in a Deno subprocess.
 */
export type WorkerType = "thread" | "process" | "async";

/** Every worker type. */
export const WORKER_TYPES: readonly WorkerType[] = ["thread", "process", "async"];
