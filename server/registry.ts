/**
 * The functions a server offers, by name, with their worker type and parameters.
 *
 * @module
 */

import { ConfigError } from "../protocol/errors.ts";
import { workerKey, type WorkerSpec } from "../workers/handle.ts";
import { checkPermissions, type WorkerPermissions } from "../workers/permissions.ts";
import { WORKER_TYPES, type WorkerType } from "../workers/types.ts";
import { declaredParameters, type ParameterSpec, readParameters } from "./parameters.ts";

/** Options of `AppServer.register`. */
export interface RegisterOptions {
  /** Where the function runs. Default: the server's `defaultWorker`. */
  worker?: WorkerType;
  /**
   * Parameter names, in order, for binding `func_kwargs`. Needed only when they
   * cannot be read from the function's source (bound or native functions).
   */
  params?: readonly string[];
  /**
   * `thread` and `process` workers: the module that exports the function, as an
   * absolute URL (usually `import.meta.url`). The worker imports it and calls
   * its export named like the function (`fn.name`), whatever name callers use.
   * Default: `Deno.mainModule`, the server script.
   */
  module?: string | URL;
  /**
   * `thread` and `process` workers: Deno permissions of the worker, e.g.
   * `{ read: false, net: ["api.example.com"] }`; a permission left out is the
   * server's own. On `thread` workers this uses Deno's unstable worker options:
   * run the server with `--unstable-worker-options` and set the server option
   * `unstableWorkerOptions: true`.
   */
  permissions?: WorkerPermissions;
  /** `process` workers: V8 flags of the subprocess, e.g. `["--max-old-space-size=256"]`. */
  v8Flags?: readonly string[];
}

/** A registered function. */
export interface RegisteredFunction {
  /** Name callers use. */
  readonly name: string;
  /** The function. */
  readonly fn: (...args: unknown[]) => unknown;
  /** Where it runs. */
  readonly worker: WorkerType;
  /** Its parameters. */
  readonly parameters: ParameterSpec;
  /** For `thread` and `process` workers: the export a worker calls, and which worker. */
  readonly target: WorkerTarget | undefined;
}

/** How a `thread` or `process` worker finds a registered function. */
export interface WorkerTarget {
  /** The export the worker calls. */
  readonly exportName: string;
  /** Which worker runs it. */
  readonly spec: WorkerSpec;
}

/** The set of functions of one server. */
export class Registry {
  readonly #functions = new Map<string, RegisteredFunction>();

  /** Names of the registered functions. */
  get names(): string[] {
    return [...this.#functions.keys()];
  }

  /**
   * Looks a function up by the name a caller used.
   *
   * @param name The name.
   * @returns The function, or `undefined`.
   */
  get(name: string): RegisteredFunction | undefined {
    return this.#functions.get(name);
  }

  /**
   * Adds a function.
   *
   * @param name Name callers use.
   * @param fn The function.
   * @param options Worker type, parameter names, module, permissions.
   * @param defaultWorker The worker type when `options.worker` is absent.
   * @param exportName The export a worker calls. Default: `fn.name`.
   * @throws {TypeError} On a missing name, a non-function or invalid `params`.
   * @throws {ConfigError} On a duplicate name, an unknown worker type or worker options that do not fit it.
   */
  add(
    name: string,
    fn: unknown,
    options: RegisterOptions,
    defaultWorker: WorkerType,
    exportName?: string,
  ): void {
    const entry = this.#prepare(name, fn, options, defaultWorker, exportName);
    this.#functions.set(name, entry);
  }

  /**
   * Adds several functions, all or none: when one cannot be added, none is.
   *
   * @param entries Name, function and export name of each.
   * @param options Options for all of them.
   * @param defaultWorker The worker type when `options.worker` is absent.
   * @throws {ConfigError} As {@linkcode Registry.add}, naming the first that fails.
   */
  addAll(
    entries: readonly { name: string; fn: unknown; exportName: string }[],
    options: RegisterOptions,
    defaultWorker: WorkerType,
  ): void {
    const prepared: RegisteredFunction[] = [];
    const names = new Set<string>();
    for (const { name, fn, exportName } of entries) {
      if (names.has(name)) {
        throw new ConfigError(`Cannot register ${JSON.stringify(name)}: the name is already taken`);
      }
      names.add(name);
      prepared.push(this.#prepare(name, fn, options, defaultWorker, exportName));
    }
    for (const entry of prepared) this.#functions.set(entry.name, entry);
  }

  #prepare(
    name: string,
    fn: unknown,
    options: RegisterOptions,
    defaultWorker: WorkerType,
    exportName: string | undefined,
  ): RegisteredFunction {
    if (typeof fn !== "function") {
      throw new TypeError(`Cannot register ${JSON.stringify(name)}: expected a function`);
    }
    if (typeof name !== "string" || name === "") {
      throw new TypeError(
        'Cannot register an anonymous function: give it a name, e.g. app.register("name", fn)',
      );
    }
    if (this.#functions.has(name)) {
      throw new ConfigError(`Cannot register ${JSON.stringify(name)}: the name is already taken`);
    }
    const worker = options.worker ?? defaultWorker;
    if (!WORKER_TYPES.includes(worker)) {
      throw new ConfigError(
        `Cannot register ${JSON.stringify(name)} with worker ${
          JSON.stringify(worker)
        }: expected one of ${WORKER_TYPES.join(", ")}`,
      );
    }
    const target = workerTarget(name, fn.name, worker, options, exportName);
    let parameters: ParameterSpec | null;
    if (options.params !== undefined) {
      parameters = declaredParameters(fn, options.params);
    } else {
      parameters = readParameters(fn);
      if (parameters === null) {
        if (fn.length > 0) {
          throw new ConfigError(
            `Cannot read the parameter names of ${
              JSON.stringify(name)
            } (a bound or native function): pass them as params: [...]`,
          );
        }
        // Nothing to bind keywords to: positional arguments pass through as given.
        parameters = { names: [null], rest: true, required: 0 };
      }
    }
    return {
      name,
      fn: fn as (...args: unknown[]) => unknown,
      worker,
      parameters,
      target,
    };
  }

  /** The registered functions that run in `thread` or `process` workers. */
  get workerFunctions(): RegisteredFunction[] {
    return [...this.#functions.values()].filter((entry) => entry.target !== undefined);
  }
}

function workerTarget(
  name: string,
  fnName: string,
  worker: WorkerType,
  options: RegisterOptions,
  exportName: string | undefined,
): WorkerTarget | undefined {
  const where = `${JSON.stringify(name)} (worker "${worker}")`;
  if (worker === "async") {
    for (const option of ["module", "permissions", "v8Flags"] as const) {
      if (options[option] !== undefined) {
        throw new ConfigError(
          `Cannot register ${where} with option ${option}: it applies to thread and process workers only`,
        );
      }
    }
    return undefined;
  }
  const callee = exportName ?? fnName;
  if (callee === "") {
    throw new ConfigError(
      `Cannot register ${where}: a ${worker} worker finds the function by its exported name, ` +
        `and this function has none; export a named function and register that`,
    );
  }
  if (worker === "thread" && options.v8Flags !== undefined) {
    throw new ConfigError(
      `Cannot register ${where} with v8Flags: V8 flags apply to a whole process; use worker "process"`,
    );
  }
  const v8Flags = options.v8Flags ?? [];
  if (!Array.isArray(v8Flags) || !v8Flags.every((flag) => /^--[\w-]+(=[^,\s]+)?$/.test(flag))) {
    throw new ConfigError(
      `Cannot use v8Flags of ${where}: expected a list like ["--max-old-space-size=256"]`,
    );
  }
  const permissions = options.permissions === undefined
    ? undefined
    : checkPermissions(options.permissions, where);
  const module = moduleUrl(options.module, where);
  const spec = { type: worker, module, permissions, v8Flags: [...v8Flags] };
  return { exportName: callee, spec: { ...spec, key: workerKey(spec) } };
}

function moduleUrl(module: string | URL | undefined, where: string): string {
  if (module === undefined) return Deno.mainModule;
  try {
    return new URL(module).href;
  } catch {
    throw new ConfigError(
      `Cannot use module ${JSON.stringify(String(module))} of ${where}: expected an absolute URL ` +
        `such as import.meta.url or new URL("./funcs.ts", import.meta.url)`,
    );
  }
}
