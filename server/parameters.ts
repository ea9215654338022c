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
  const read = readParameterList(fn);
  if (read === null) return null;
  const { names, rest } = read;
  return { names, rest, required: Math.min(fn.length, names.length) };
}

/**
 * Reads the source text of each parameter's default value, for discovery
 * (`get_function_server`); the server never evaluates it.
 *
 * @param fn The function.
 * @returns One entry per parameter, `undefined` where it has no default; `null`
 *   when the source cannot be read.
 */
export function readDefaults(fn: AnyFunction): (string | undefined)[] | null {
  return readParameterList(fn)?.defaults ?? null;
}

function readParameterList(
  fn: AnyFunction,
): { names: (string | null)[]; rest: boolean; defaults: (string | undefined)[] } | null {
  const source = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) return null;
  const list = parameterListText(source);
  if (list === null) return null;
  const names: (string | null)[] = [];
  const defaults: (string | undefined)[] = [];
  let rest = false;
  for (const raw of splitTopLevel(list)) {
    const text = stripComments(raw).trim();
    if (text === "") continue; // trailing comma
    let name = text;
    if (name.startsWith("...")) {
      rest = true;
      name = name.slice(3).trim();
    }
    const eq = defaultValueIndex(name);
    defaults.push(eq >= 0 ? name.slice(eq + 1).trim() : undefined);
    if (eq >= 0) name = name.slice(0, eq).trim();
    names.push(IDENTIFIER.test(name) ? name : null);
  }
  return { names, rest, defaults };
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
 * Handles `function`, generators, `async`, methods (also with computed or
 * quoted names) and arrow functions.
 */
function parameterListText(source: string): string | null {
  let i = skipSpaceAndComments(source, 0);
  if (startsWithWord(source, i, "class")) {
    // `class X {}` is not callable; `class(a) {}` is a method named class.
    if (source[skipSpaceAndComments(source, i + 5)] !== "(") return null;
  }
  if (startsWithWord(source, i, "async")) {
    const next = skipSpaceAndComments(source, i + 5);
    // `async => ...` is an arrow function whose parameter is named async.
    if (!source.startsWith("=>", next)) i = next;
  }
  // A single-parameter arrow function without parentheses: `x => ...`.
  const arrow = /^([A-Za-z_$\u00a0-\uffff][\w$\u00a0-\uffff]*)\s*=>/.exec(source.slice(i));
  if (arrow !== null) return arrow[1] ?? null;
  // Walk over the head (`function* name`, `get`, `[computed]`, `"quoted"`) to the first `(`.
  while (i < source.length && source[i] !== "(") {
    const char = source[i];
    if (char === "[") {
      const close = closingIndex(source, i);
      if (close < 0) return null;
      i = close + 1;
    } else if (char === '"' || char === "'") {
      i = literalEnd(source, i);
    } else {
      i = skipSpaceAndComments(source, i + 1);
    }
  }
  if (i >= source.length) return null;
  const close = closingIndex(source, i);
  return close < 0 ? null : source.slice(i + 1, close);
}

function startsWithWord(text: string, at: number, word: string): boolean {
  return text.startsWith(word, at) && !isIdentifierChar(text[at + word.length]);
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
      const close = closingIndex(text, i + 1);
      if (close < 0) return text.length;
      i = close + 1;
    } else {
      i++;
    }
  }
  return text.length;
}

/** Index just past a regular expression literal that starts at `start`. */
function regexEnd(text: string, start: number): number {
  let inClass = false;
  let i = start + 1;
  while (i < text.length) {
    const char = text[i];
    if (char === "\\") i += 2;
    else if (char === "\n") return i;
    else {
      if (char === "[") inClass = true;
      else if (char === "]") inClass = false;
      else if (char === "/" && !inClass) {
        i++;
        while (isIdentifierChar(text[i])) i++; // flags
        return i;
      }
      i++;
    }
  }
  return text.length;
}

/** Characters after which a `/` starts a regular expression rather than a division. */
const BEFORE_REGEX = new Set(["", "(", ",", "=", ":", "[", "!", "&", "|", "?", "{", "}", ";"]);

/**
 * Visits every character of code from `start`, skipping string, template and
 * regular expression literals and comments, with the bracket depth *before*
 * the character. Stops when `visit` returns true and returns that index, else -1.
 */
function scanCode(
  text: string,
  start: number,
  visit: (char: string, index: number, depth: number) => boolean,
): number {
  let depth = 0;
  let previous = "";
  let i = start;
  while (i < text.length) {
    const char = text[i] ?? "";
    if (char === '"' || char === "'" || char === "`") {
      i = literalEnd(text, i);
      previous = char;
    } else if (text.startsWith("//", i)) {
      i = lineEnd(text, i);
    } else if (text.startsWith("/*", i)) {
      i = blockCommentEnd(text, i);
    } else if (char === "/" && BEFORE_REGEX.has(previous)) {
      i = regexEnd(text, i);
      previous = "/";
    } else if (/\s/.test(char)) {
      i++;
    } else {
      if (visit(char, i, depth)) return i;
      if (char === "(" || char === "[" || char === "{") depth++;
      else if (char === ")" || char === "]" || char === "}") depth--;
      previous = char;
      i++;
    }
  }
  return -1;
}

/** Index of the bracket that closes the one at `open`, or -1. */
function closingIndex(text: string, open: number): number {
  return scanCode(
    text,
    open,
    (char, _, depth) => depth === 1 && (char === ")" || char === "]" || char === "}"),
  );
}

/** Splits a parameter list at commas that are not nested in brackets, literals or comments. */
function splitTopLevel(list: string): string[] {
  const parts: string[] = [];
  let start = 0;
  scanCode(list, 0, (char, index, depth) => {
    if (char === "," && depth === 0) {
      parts.push(list.slice(start, index));
      start = index + 1;
    }
    return false;
  });
  parts.push(list.slice(start));
  return parts;
}

/** Index of the first top-level `=` (a default value), or -1. */
function defaultValueIndex(text: string): number {
  return scanCode(
    text,
    0,
    (char, index, depth) => depth === 0 && char === "=" && text[index + 1] !== ">",
  );
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
