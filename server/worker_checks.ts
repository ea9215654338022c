/**
 * What `AppServer.start()` checks before it serves `thread` and `process`
 * functions, so that a mistake fails at start with a clear message instead of
 * at the first call.
 *
 * @module
 */

import { ConfigError } from "../protocol/errors.ts";
import type { RegisteredFunction } from "./registry.ts";

/**
 * Checks that every worker function can be found by its worker, and that the
 * server may start the workers it needs.
 *
 * @param functions The functions that run in `thread` or `process` workers.
 * @param unstableWorkerOptions Whether the server runs with `--unstable-worker-options`.
 * @throws {ConfigError} When a module does not load, lacks the export or exports
 *   another function under that name; when `process` workers cannot be started;
 *   when `thread` permissions are asked for without unstable worker options.
 */
export async function checkWorkerFunctions(
  functions: readonly RegisteredFunction[],
  unstableWorkerOptions: boolean,
): Promise<void> {
  for (const entry of functions) {
    const target = entry.target!;
    const where = `${JSON.stringify(entry.name)} (worker "${entry.worker}")`;
    const exported = await findExport(target.spec.module, target.exportName, where);
    if (exported === undefined) {
      throw new ConfigError(
        `Cannot start: ${where} runs in a worker that calls the export "${target.exportName}" of ` +
          `${target.spec.module}, and that module has no such exported function. Export it, or ` +
          `pass the module that does as { module: new URL("./file.ts", import.meta.url) }`,
      );
    }
    if (exported !== MAIN_MODULE_FUNCTION && exported !== entry.fn) {
      throw new ConfigError(
        `Cannot start: ${where}: the export "${target.exportName}" of ${target.spec.module} is ` +
          `another function than the one registered, and the worker would call that one`,
      );
    }
    if (
      entry.worker === "thread" && target.spec.permissions !== undefined && !unstableWorkerOptions
    ) {
      throw new ConfigError(
        `Cannot start: ${where} has permissions, which thread workers get through Deno's ` +
          `unstable worker options. Run the server with --unstable-worker-options and set the ` +
          `option unstableWorkerOptions: true, or use worker "process"`,
      );
    }
  }
  for (const entry of functions) {
    const module = new URL(entry.target!.spec.module);
    if (entry.worker !== "thread" || module.protocol !== "file:") continue;
    const read = await Deno.permissions.query({ name: "read", path: module });
    if (read.state !== "granted") {
      throw new ConfigError(
        `Cannot start: thread workers load ${module.href} for ${JSON.stringify(entry.name)}, ` +
          `and this server may not read it; grant it with --allow-read`,
      );
    }
  }
  if (functions.some((entry) => entry.worker === "process")) {
    const run = await Deno.permissions.query({ name: "run", command: Deno.execPath() });
    if (run.state !== "granted") {
      throw new ConfigError(
        `Cannot start: process workers are deno subprocesses, and this server may not run ` +
          `${Deno.execPath()}; grant it with --allow-run`,
      );
    }
  }
}

/** Stands for a function the main module exports; its identity cannot be compared. */
const MAIN_MODULE_FUNCTION = Symbol("a function of the main module");

/**
 * Finds an exported function of a module. The main module is still evaluating
 * while a server script awaits `start()` at its top level, and importing it
 * then would wait for itself; it is loaded in a short-lived Web Worker
 * instead, just as the workers load it.
 */
async function findExport(
  module: string,
  exportName: string,
  where: string,
): Promise<unknown> {
  if (module === Deno.mainModule) {
    const names = await functionNamesInWorker(module, where);
    return names.includes(exportName) ? MAIN_MODULE_FUNCTION : undefined;
  }
  let exports: Record<string, unknown>;
  try {
    exports = await import(module);
  } catch (err) {
    throw loadError(module, where, err instanceof Error ? err.message : String(err), err);
  }
  const exported = exports[exportName];
  return typeof exported === "function" ? exported : undefined;
}

function loadError(module: string, where: string, reason: string, cause?: unknown): ConfigError {
  return new ConfigError(
    `Cannot start: the module of ${where}, ${module}, does not load: ${reason}`,
    { cause },
  );
}

/** How long the export check may take to load the main module in a Web Worker. */
const CHECK_LIMIT_MS = 30_000;

/** Names of the exported functions of a module, as a Web Worker sees them. */
function functionNamesInWorker(module: string, where: string): Promise<string[]> {
  const source = `import * as target from ${JSON.stringify(module)};\n` +
    `postMessage(Object.keys(target).filter((name) => typeof target[name] === "function"));\n`;
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module", name: "prpc export check" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  return new Promise<string[]>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<string[]>) => resolve(event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      reject(loadError(module, where, event.message));
    };
    timer = setTimeout(
      () =>
        reject(
          loadError(
            module,
            where,
            `it did not finish loading within ${CHECK_LIMIT_MS} ms in a worker (does its top ` +
              `level wait for something that never comes, such as a server started without ` +
              `if (import.meta.main)?)`,
          ),
        ),
      CHECK_LIMIT_MS,
    );
  }).finally(() => {
    clearTimeout(timer);
    worker.terminate();
    URL.revokeObjectURL(url);
  });
}
