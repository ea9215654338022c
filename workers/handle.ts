/**
 * What the pool needs of a `thread` or `process` worker, and how one is
 * described.
 *
 * @module
 */

import type { CallOutcome, CallRequest } from "./messages.ts";
import type { WorkerPermissions } from "./permissions.ts";

/** Which kind of worker, for what module, with what permissions and V8 flags. */
export interface WorkerSpec {
  /** `thread` or `process`. */
  readonly type: "thread" | "process";
  /** URL of the module whose exports the worker calls. */
  readonly module: string;
  /** Permissions of the worker; `undefined` for the server's own. */
  readonly permissions: WorkerPermissions | undefined;
  /** V8 flags of a `process` worker, e.g. `--max-old-space-size=64`. */
  readonly v8Flags: readonly string[];
  /** Workers with equal keys are interchangeable. */
  readonly key: string;
}

/** A running worker that takes one call at a time. */
export interface WorkerHandle {
  /** What it was started as. */
  readonly spec: WorkerSpec;
  /** Whether it can take a call. */
  readonly alive: boolean;
  /**
   * Resolves once the worker has loaded the function's module; stays pending
   * when it dies first (its call then fails with `WorkerCrashedError`).
   */
  readonly ready: Promise<void>;
  /** Resolves with the reason once the worker has ended, for whatever reason. */
  readonly ended: Promise<string>;
  /**
   * Runs one call.
   *
   * @returns The outcome in the worker.
   * @throws {WorkerCrashedError} When the worker dies before answering.
   */
  run(request: CallRequest): Promise<CallOutcome>;
  /** Ends the worker now; resolves once it is gone. */
  terminate(): Promise<void>;
}

/**
 * The key of a worker spec: workers with equal keys are interchangeable.
 *
 * @param spec Everything but the key.
 * @returns The key.
 */
export function workerKey(spec: Omit<WorkerSpec, "key">): string {
  return JSON.stringify([spec.type, spec.module, spec.permissions ?? null, spec.v8Flags]);
}

/**
 * Source of a worker's entry module: the prelude first (it guards the worker
 * while the rest loads), then the function's module (so a throw at its top
 * level ends the worker before it takes calls), then the serving code.
 *
 * @param prelude URL of the module that guards the worker.
 * @param module URL of the function's module.
 * @param child URL of the serving module.
 * @param serve Name of the serving function it exports.
 * @returns The module source.
 */
export function entrySource(prelude: string, module: string, child: string, serve: string): string {
  return `import ${JSON.stringify(prelude)};\n` +
    `import * as target from ${JSON.stringify(module)};\n` +
    `import { ${serve} } from ${JSON.stringify(child)};\n` +
    `${serve}(target);\n`;
}
