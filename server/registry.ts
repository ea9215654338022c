/**
 * The functions a server offers, by name, with their worker type and parameters.
 *
 * @module
 */

import { ConfigError } from "../protocol/errors.ts";
import { SUPPORTED_WORKER_TYPES, WORKER_TYPES, type WorkerType } from "../workers/types.ts";
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
   * @param options Worker type and parameter names.
   * @param defaultWorker The worker type when `options.worker` is absent.
   * @throws {TypeError} On a missing name, a non-function or invalid `params`.
   * @throws {ConfigError} On a duplicate name or an unsupported worker type.
   */
  add(
    name: string,
    fn: unknown,
    options: RegisterOptions,
    defaultWorker: WorkerType,
  ): void {
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
    if (!SUPPORTED_WORKER_TYPES.includes(worker)) {
      throw new ConfigError(
        `Cannot register ${JSON.stringify(name)} with worker "${worker}": ` +
          `the ${worker} worker is not supported yet; use worker "async"`,
      );
    }
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
    this.#functions.set(name, {
      name,
      fn: fn as (...args: unknown[]) => unknown,
      worker,
      parameters,
    });
  }
}
