/**
 * The functions every server answers besides its own, as PRPC's server does:
 * `ping` (answers `"pong"`) and `get_function_server` (the list of functions
 * that PRPC's `python -m prpc.create_server_func` turns into client stubs). A
 * registered function of the same name takes their place.
 *
 * @module
 */

import { ArgumentError } from "../protocol/errors.ts";
import { readDefaults } from "./parameters.ts";
import type { RegisteredFunction, Registry } from "./registry.ts";

/** Names of the built-in functions. */
export const BUILTIN_NAMES: readonly string[] = ["ping", "get_function_server"];

/** One parameter as `get_function_server` lists it. */
export interface ListedParameter {
  /** The parameter's name. */
  name: string;
  /** Its default, for parameters listed under `func_kwargs` (see {@linkcode listFunctions}). */
  default?: unknown;
}

/** One function as `get_function_server` lists it (PRPC's shape). */
export interface ListedFunction {
  /** The name callers use. */
  func_name: string;
  /** Parameters without a default value, in order. */
  func_args: ListedParameter[];
  /** Parameters with a default value, in order. */
  func_kwargs: ListedParameter[];
}

/**
 * Runs a built-in function, if `name` is one.
 *
 * @param name The function a request names (no registered function has it).
 * @param registry The server's functions.
 * @param args Positional arguments of the request.
 * @param kwargs Keyword arguments of the request.
 * @returns The value, or `undefined` when `name` is no built-in.
 * @throws {ArgumentError} When arguments are given: neither takes any.
 */
export function runBuiltin(
  name: string,
  registry: Registry,
  args: readonly unknown[],
  kwargs: Record<string, unknown>,
): { value: unknown } | undefined {
  if (!BUILTIN_NAMES.includes(name)) return undefined;
  const extra = args.length > 0 ? `${args.length} positional` : Object.keys(kwargs)[0];
  if (extra !== undefined) {
    throw new ArgumentError(
      `${name}() takes no arguments, but got ${
        args.length > 0 ? `${args.length} positional` : `keyword ${JSON.stringify(extra)}`
      }`,
    );
  }
  return { value: name === "ping" ? "pong" : listFunctions(registry) };
}

/**
 * The server's functions in the shape of PRPC's `get_function_server`, with
 * `ping` first (as PRPC lists it). Parameters without a default are listed
 * under `func_args`, those after the first default under `func_kwargs`.
 *
 * A default is given so that PRPC's code generator, which pastes `str()` of
 * it into a Python signature, writes valid Python: numbers, booleans, `null`
 * (`None`) and arrays of them as they are; a string as a quoted literal
 * (`"Hello"` is listed as `'"Hello"'`); a default that is not a literal
 * (an expression, an object) as `null`, so a stub called without it sends
 * `None`. A single parameter without a default is listed first under
 * `func_kwargs`, without a default: PRPC's generator would pass it as `(x)`,
 * which is no tuple in Python, and PRPC's client refuses that. Rest
 * parameters are not listed. TypeScript types are gone at run time, so no
 * `annotation` is listed.
 *
 * @param registry The server's functions.
 * @returns The list.
 */
export function listFunctions(registry: Registry): ListedFunction[] {
  const listed: ListedFunction[] = [];
  if (registry.get("ping") === undefined) {
    listed.push({ func_name: "ping", func_args: [], func_kwargs: [] });
  }
  for (const name of registry.names) {
    const registered = registry.get(name);
    if (registered === undefined) continue;
    listed.push({ func_name: name, ...listParameters(registered) });
  }
  return listed;
}

function listParameters(
  registered: RegisteredFunction,
): { func_args: ListedParameter[]; func_kwargs: ListedParameter[] } {
  const spec = registered.parameters;
  const defaults = readDefaults(registered.fn);
  const func_args: ListedParameter[] = [];
  const func_kwargs: ListedParameter[] = [];
  const count = spec.rest ? spec.names.length - 1 : spec.names.length;
  for (let i = 0; i < count; i++) {
    const name = spec.names[i] ?? `arg${i + 1}`;
    if (i < spec.required) func_args.push({ name });
    else func_kwargs.push({ name, default: pythonDefault(defaults?.[i]) });
  }
  // PRPC's generator passes one positional argument as `(x)`, which is no tuple in Python, and
  // PRPC's client refuses it: list the parameter first among the keywords, without a default.
  if (func_args.length === 1) func_kwargs.unshift(...func_args.splice(0, 1));
  return { func_args, func_kwargs };
}

/** A default's source text as the value PRPC's code generator can paste; see {@linkcode listFunctions}. */
function pythonDefault(source: string | undefined): unknown {
  if (source === undefined) return null;
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch {
    const quoted = /^'((?:[^'\\"]|\\')*)'$/.exec(source);
    if (quoted === null) return null;
    value = quoted[1]?.replaceAll("\\'", "'") ?? "";
  }
  if (typeof value === "string") return JSON.stringify(value);
  return isPlainLiteral(value) ? value : null;
}

/** Numbers, booleans, `null` and arrays of them (strings inside arrays print quoted in Python). */
function isPlainLiteral(value: unknown): boolean {
  if (value === null || typeof value === "number" || typeof value === "boolean") return true;
  if (typeof value === "string") return true;
  return Array.isArray(value) && value.every(isPlainLiteral);
}
