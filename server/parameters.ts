/**
 * Reading a function's parameter names from its source, and binding PRPC's
 * `func_args` and `func_kwargs` to them.
 *
 * @module
 */

import { ArgumentError } from "../protocol/errors.ts";

/** What the server knows about a function's parameters. */
export interface ParameterSpec {
  /** Names in order; `null` for a destructured parameter, which only binds by position. */
  readonly names: readonly (string | null)[];
  /** Whether the last parameter is a rest parameter (`...args`), which takes extra positional arguments. */
  readonly rest: boolean;
  /** How many leading parameters must be given (those before the first default). */
  readonly required: number;
}

const IDENTIFIER = /^[A-Za-z_$\u00a0-\uffff][\w$\u00a0-\uffff]*$/;

// deno-lint-ignore ban-types
type AnyFunction = Function;

/**
 * Reads the parameter list of a function from its source text.
 *
 * @param fn The function.
 * @returns Names and shape, or `null` when the source cannot be read (native or bound functions).
 */
export function readParameters(fn: AnyFunction): ParameterSpec | null {
  const source = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) return null;
  const list = parameterListText(source);
  if (list === null) return null;
  const names: (string | null)[] = [];
  let rest = false;
  for (const raw of splitTopLevel(list)) {
    const text = stripComments(raw).trim();
    if (text === "") continue; // trailing comma
    let name = text;
    if (name.startsWith("...")) {
      rest = true;
      name = name.slice(3).trim();
    }
    const eq = topLevelIndexOf(name, "=");
    if (eq >= 0) name = name.slice(0, eq).trim();
    names.push(IDENTIFIER.test(name) ? name : null);
  }
  return { names, rest, required: Math.min(fn.length, names.length) };
}

/**
 * Builds a parameter spec from names given at registration.
 *
 * @param fn The function (its `length` tells how many parameters are required).
 * @param params The names, in order.
 * @returns The spec.
 * @throws {TypeError} When a name is not an identifier or appears twice.
 */
export function declaredParameters(fn: AnyFunction, params: readonly string[]): ParameterSpec {
  const seen = new Set<string>();
  for (const name of params) {
    if (typeof name !== "string" || !IDENTIFIER.test(name)) {
      throw new TypeError(`Cannot use ${JSON.stringify(name)} as a parameter name`);
    }
    if (seen.has(name)) throw new TypeError(`Cannot declare parameter ${name} twice`);
    seen.add(name);
  }
  return { names: [...params], rest: false, required: Math.min(fn.length, params.length) };
}

/**
 * Binds positional and keyword arguments to a parameter list, like a Python call.
 *
 * @param spec The function's parameters.
 * @param args Positional arguments.
 * @param kwargs Keyword arguments.
 * @returns The positional argument list to call the function with.
 * @throws {ArgumentError} On too many positional arguments, a missing required one, an
 * unknown keyword or a keyword that repeats a positional argument.
 */
export function bindArguments(
  spec: ParameterSpec,
  args: readonly unknown[],
  kwargs: Record<string, unknown>,
): unknown[] {
  const positional = spec.rest ? spec.names.length - 1 : spec.names.length;
  if (!spec.rest && args.length > positional) {
    throw new ArgumentError(
      `takes ${positional === 0 ? "no" : `at most ${positional}`} positional argument${
        positional === 1 ? "" : "s"
      } but ${args.length} ${args.length === 1 ? "was" : "were"} given`,
    );
  }
  let keys: string[] | undefined;
  for (const _ in kwargs) {
    keys = Object.keys(kwargs);
    break;
  }
  if (keys === undefined && args.length >= spec.required) return args as unknown[];

  const bound: unknown[] = args.slice(0, spec.rest ? args.length : positional);
  const given = new Array<boolean>(positional).fill(false);
  for (let i = 0; i < Math.min(args.length, positional); i++) given[i] = true;
  for (const key of keys ?? []) {
    const index = spec.names.indexOf(key);
    if (index < 0 || index >= positional) {
      const accepted = spec.names.slice(0, positional).filter((name) => name !== null);
      throw new ArgumentError(
        `got an unexpected keyword argument ${JSON.stringify(key)}${
          accepted.length > 0 ? `; keywords accepted: ${accepted.join(", ")}` : ""
        }`,
      );
    }
    if (given[index]) {
      throw new ArgumentError(`got multiple values for argument ${JSON.stringify(key)}`);
    }
    given[index] = true;
    if (spec.rest && bound.length > positional) {
      // Keywords cannot follow extra positional arguments that went to the rest parameter.
      throw new ArgumentError(
        `cannot take keyword ${JSON.stringify(key)} together with extra positional arguments`,
      );
    }
    while (bound.length < index) bound.push(undefined);
    bound[index] = kwargs[key];
  }
  for (let i = 0; i < spec.required; i++) {
    if (!given[i]) {
      const name = spec.names[i];
      throw new ArgumentError(
        `missing required argument ${
          name === null || name === undefined ? `#${i + 1}` : JSON.stringify(name)
        } (a parameter without a default value is required)`,
      );
    }
  }
  return bound;
}

/**
 * Finds the text between the parentheses of a function's parameter list.
 * Handles `function`, generators, `async`, methods and arrow functions.
 */
function parameterListText(source: string): string | null {
  let i = skipSpaceAndComments(source, 0);
  if (source.startsWith("class", i) && !isIdentifierChar(source[i + 5])) return null;
  if (source.startsWith("async", i) && !isIdentifierChar(source[i + 5])) {
    const next = skipSpaceAndComments(source, i + 5);
    // `async => ...` is an arrow function whose parameter is named async.
    if (!source.startsWith("=>", next)) i = next;
  }
  // A single-parameter arrow function without parentheses: `x => ...`.
  const arrow = /^([A-Za-z_$\u00a0-\uffff][\w$\u00a0-\uffff]*)\s*=>/.exec(source.slice(i));
  if (arrow !== null) return arrow[1] ?? null;
  const open = source.indexOf("(", i);
  if (open < 0) return null;
  const close = matchingParen(source, open);
  return close < 0 ? null : source.slice(open + 1, close);
}

function isIdentifierChar(char: string | undefined): boolean {
  return char !== undefined && /[\w$\u00a0-\uffff]/.test(char);
}

function skipSpaceAndComments(text: string, start: number): number {
  let i = start;
  while (i < text.length) {
    if (/\s/.test(text[i] ?? "")) i++;
    else if (text.startsWith("//", i)) i = lineEnd(text, i);
    else if (text.startsWith("/*", i)) i = blockCommentEnd(text, i);
    else break;
  }
  return i;
}

function lineEnd(text: string, start: number): number {
  const end = text.indexOf("\n", start);
  return end < 0 ? text.length : end + 1;
}

function blockCommentEnd(text: string, start: number): number {
  const end = text.indexOf("*/", start + 2);
  return end < 0 ? text.length : end + 2;
}

/** Index just past a string or template literal that starts at `start`. */
function literalEnd(text: string, start: number): number {
  const quote = text[start];
  let i = start + 1;
  while (i < text.length) {
    const char = text[i];
    if (char === "\\") {
      i += 2;
    } else if (char === quote) {
      return i + 1;
    } else if (quote === "`" && char === "$" && text[i + 1] === "{") {
      i = closingIndex(text, i + 1, "{", "}") + 1;
      if (i === 0) return text.length;
    } else {
      i++;
    }
  }
  return text.length;
}

/** Index of the bracket that closes the one at `open`, skipping literals, comments and nesting. */
function closingIndex(text: string, open: number, opener: string, closer: string): number {
  let depth = 0;
  let i = open;
  while (i < text.length) {
    const char = text[i];
    if (char === '"' || char === "'" || char === "`") {
      i = literalEnd(text, i);
      continue;
    }
    if (text.startsWith("//", i)) {
      i = lineEnd(text, i);
      continue;
    }
    if (text.startsWith("/*", i)) {
      i = blockCommentEnd(text, i);
      continue;
    }
    if (char === opener) depth++;
    else if (char === closer && --depth === 0) return i;
    i++;
  }
  return -1;
}

function matchingParen(text: string, open: number): number {
  return closingIndex(text, open, "(", ")");
}

/** Splits a parameter list at commas that are not nested in brackets, literals or comments. */
function splitTopLevel(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  let i = 0;
  while (i < list.length) {
    const char = list[i];
    if (char === '"' || char === "'" || char === "`") {
      i = literalEnd(list, i);
      continue;
    }
    if (list.startsWith("//", i)) {
      i = lineEnd(list, i);
      continue;
    }
    if (list.startsWith("/*", i)) {
      i = blockCommentEnd(list, i);
      continue;
    }
    if (char === "(" || char === "[" || char === "{") depth++;
    else if (char === ")" || char === "]" || char === "}") depth--;
    else if (char === "," && depth === 0) {
      parts.push(list.slice(start, i));
      start = i + 1;
    }
    i++;
  }
  parts.push(list.slice(start));
  return parts;
}

/** Index of the first `char` outside brackets and literals, or -1. */
function topLevelIndexOf(text: string, char: string): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'" || c === "`") {
      i = literalEnd(text, i) - 1;
    } else if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === char && depth === 0) return i;
  }
  return -1;
}

function stripComments(text: string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const char = text[i];
    if (char === '"' || char === "'" || char === "`") {
      const end = literalEnd(text, i);
      out += text.slice(i, end);
      i = end;
    } else if (text.startsWith("//", i)) {
      i = lineEnd(text, i);
    } else if (text.startsWith("/*", i)) {
      i = blockCommentEnd(text, i);
    } else {
      out += char;
      i++;
    }
  }
  return out;
}
