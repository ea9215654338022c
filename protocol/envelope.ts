/**
 * The messages on the wire: PRPC's request and result objects, plus the
 * optional fields prpc adds to native messages. `docs/PROTOCOL.md` is the
 * reference for other languages.
 *
 * @module
 */

import { DEFAULT_MAX_DEPTH, nestsDeeper, valueNestsDeeper } from "./depth.ts";
import type { WireError } from "./errors.ts";
import {
  isPickled,
  type PickledEcho,
  pickledMessageId,
  PickleRefusal,
  readPickledRequest,
  readPickledResult,
} from "./jsonpickle.ts";

/** Version of the native additions, sent as field `prpc`. */
export const PROTOCOL_VERSION = 1;

/** The two request queues of a queue name: native (prpc clients) and raw (other languages). */
export type QueueKind = "native" | "raw";

/** A request as it travels (PRPC fields plus prpc's optional ones). */
export interface RequestMessage {
  /** Name of the registered function. */
  func_name: string;
  /** Positional arguments. */
  func_args: unknown[];
  /** Keyword arguments, bound to parameters by name. */
  func_kwargs: Record<string, unknown>;
  /** Canonical lowercase UUID that identifies the call and names its result. */
  message_id: string;
  /** When the caller created the request (ISO 8601 with offset). */
  date_create_message?: string;
  /** prpc: broker address where the caller waits for the result. */
  reply_to?: string;
  /** prpc: epoch milliseconds after which the caller no longer waits; the server skips it then. */
  deadline_ms?: number;
  /** prpc: version of prpc's additions. */
  prpc?: number;
  /**
   * Not on the wire: set when the request came as PRPC's Python client writes
   * it (jsonpickle, see `jsonpickle.ts`), so that its result is written in kind;
   * what the result repeats of the request.
   */
  pickled?: PickledEcho;
}

/** A result as it travels. */
export interface ResultMessage {
  /** Name of the function that was called. */
  func_name: string;
  /** Positional arguments of the request (raw results only; native results omit them). */
  func_args?: unknown[];
  /** Keyword arguments of the request (raw results only). */
  func_kwargs?: Record<string, unknown>;
  /** The request's `message_id`. */
  message_id: string;
  /** The function's return value (`null` for none), or `null` after an error. */
  result: unknown;
  /** `"Name: message"` of the error, or `null` on success (PRPC's field). */
  exception_info: string | null;
  /** When the request was created (ISO 8601 with offset). */
  date_create_message: string;
  /** When the server finished it (ISO 8601 with offset). */
  date_done_message: string;
  /** prpc: the error with its type, stack, code and data. */
  error?: WireError;
  /** prpc: version of prpc's additions. */
  prpc?: number;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_HEX_PATTERN = /^[0-9a-f]{32}$/;

/**
 * Reads a `message_id` as the canonical lowercase UUID string. Accepts any
 * letter case and PRPC's `{"hex": "<32 hex digits>"}` form.
 *
 * @param value The field as found in a message.
 * @returns The canonical form, or `null` when it is not a UUID.
 */
export function canonicalMessageId(value: unknown): string | null {
  if (typeof value === "string") {
    if (value.length !== 36) return null;
    // Every message carries one, nearly always canonical already: no lowercased copy then.
    if (UUID_PATTERN.test(value)) return value;
    const lower = value.toLowerCase();
    return UUID_PATTERN.test(lower) ? lower : null;
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const hex = (value as { hex?: unknown }).hex;
    if (typeof hex !== "string" || hex.length !== 32) return null;
    const lower = hex.toLowerCase();
    if (!UUID_HEX_PATTERN.test(lower)) return null;
    return `${lower.slice(0, 8)}-${lower.slice(8, 12)}-${lower.slice(12, 16)}-${
      lower.slice(16, 20)
    }-${lower.slice(20)}`;
  }
  return null;
}

let lastMs = Number.NaN;
let lastText = "";

/**
 * An instant as ISO 8601 with an explicit `+00:00` offset, which every ISO
 * parser (including Python's `datetime.fromisoformat` before 3.11) reads.
 * Repeated calls within one millisecond reuse the text (it is on every call's path).
 *
 * @param instant The instant, as a `Date` or epoch milliseconds. Default: now.
 * @returns e.g. `"2026-11-21T12:00:00.000+00:00"`.
 */
export function isoTimestamp(instant: Date | number = Date.now()): string {
  const ms = typeof instant === "number" ? instant : instant.getTime();
  if (ms !== lastMs) {
    lastText = `${new Date(ms).toISOString().slice(0, -1)}+00:00`;
    lastMs = ms;
  }
  return lastText;
}

/** A request read from the wire: valid, or rejected with the reason. */
export type ParsedRequest =
  | { ok: true; request: RequestMessage }
  | {
    ok: false;
    /** Why it was rejected, for the error result or the dead-letter entry. */
    reason: string;
    /** The canonical `message_id` when one could be read, so an error result can be sent. */
    messageId: string | null;
    /** Whatever of the request could be read, to echo in the error result. */
    partial: Partial<RequestMessage>;
  };

/** Keys that must never be used as keyword argument names. */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/**
 * Parses and validates a request from its JSON text. Never throws: anything
 * wrong is reported in the result, with the `message_id` when it could be read.
 * Keyword names `__proto__`, `constructor` and `prototype` are reported by the
 * server as an `ArgumentError`, not here.
 *
 * A request whose arguments nest deeper than `maxDepth` is refused before
 * anything walks them (the request object and its `func_args` array or
 * `func_kwargs` object are the two levels above an argument, and the limit of
 * the whole text is `maxDepth + 2`). What of it could be read is kept, but
 * never its arguments, so that nothing echoes them.
 *
 * @param text The message body.
 * @param maxDepth How deeply an argument may nest (the outermost level is 1).
 * @returns The request, or why it was rejected.
 */
export function parseRequest(text: string, maxDepth: number = DEFAULT_MAX_DEPTH): ParsedRequest {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { ok: false, reason: `message is not JSON: ${why}`, messageId: null, partial: {} };
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return {
      ok: false,
      reason: `message must be a JSON object, got ${describeJsonType(data)}`,
      messageId: null,
      partial: {},
    };
  }
  const fields = data as Record<string, unknown>;
  // A prpc client's requests carry PRPC's class too (so PRPC's servers can run them) and `prpc`.
  if (isPickled(fields) && fields.prpc === undefined) {
    return parsePickledRequest(fields, text, maxDepth);
  }
  const messageId = canonicalMessageId(fields.message_id);
  if (nestsDeeper(text, maxDepth + 2)) {
    const partial: Partial<RequestMessage> = {};
    if (typeof fields.func_name === "string") partial.func_name = fields.func_name;
    if (typeof fields.reply_to === "string" && fields.reply_to !== "") {
      partial.reply_to = fields.reply_to;
    }
    return {
      ok: false,
      reason: `message nests arrays and objects deeper than ${maxDepth} levels (maxDepth)`,
      messageId,
      partial,
    };
  }
  // PRPC raw clients may leave out empty args and kwargs, or send null (Python's None).
  const args = fields.func_args ?? [];
  const kwargs = fields.func_kwargs ?? {};
  if (
    messageId !== null && typeof fields.func_name === "string" && fields.func_name !== "" &&
    Array.isArray(args) && isPlainObject(kwargs) &&
    (fields.reply_to == null || typeof fields.reply_to === "string") &&
    (fields.deadline_ms == null ||
      (typeof fields.deadline_ms === "number" && Number.isFinite(fields.deadline_ms)))
  ) {
    // date_create_message is informational: a value that is not a string is not echoed,
    // and the result carries the time the server received the request instead.
    const request: RequestMessage = {
      func_name: fields.func_name,
      func_args: args,
      func_kwargs: kwargs,
      message_id: messageId,
    };
    if (typeof fields.date_create_message === "string") {
      request.date_create_message = fields.date_create_message;
    }
    if (typeof fields.reply_to === "string" && fields.reply_to !== "") {
      request.reply_to = fields.reply_to;
    }
    if (typeof fields.deadline_ms === "number") request.deadline_ms = fields.deadline_ms;
    if (typeof fields.prpc === "number") request.prpc = fields.prpc;
    return { ok: true, request };
  }
  return refusedRequest(fields, messageId, args, kwargs);
}

/** What an error result repeats of a jsonpickle request it refused: nothing it sent. */
const REFUSED_ECHO: PickledEcho = {
  funcArgs: { "py/tuple": [] },
  funcKwargs: {},
  dateCreateMessage: null,
};

/**
 * A request in jsonpickle, as PRPC's Python client sends it, read data-only.
 * Its arguments may sit one level deeper than a plain request's (inside a
 * `py/tuple`), and each is held to `maxDepth` itself.
 */
function parsePickledRequest(
  fields: Record<string, unknown>,
  text: string,
  maxDepth: number,
): ParsedRequest {
  const messageId = pickledMessageId(fields);
  const refuse = (reason: string): ParsedRequest => {
    const partial: Partial<RequestMessage> = { pickled: REFUSED_ECHO };
    if (typeof fields.func_name === "string") partial.func_name = fields.func_name;
    return { ok: false, reason, messageId, partial };
  };
  if (nestsDeeper(text, maxDepth + 3)) {
    return refuse(`message nests arrays and objects deeper than ${maxDepth} levels (maxDepth)`);
  }
  let read;
  try {
    read = readPickledRequest(fields);
  } catch (err) {
    // parseRequest never throws: anything unforeseen in the reader is a refusal too.
    return refuse(err instanceof PickleRefusal ? err.message : `unreadable jsonpickle: ${err}`);
  }
  if (
    read.args.some((arg) => valueNestsDeeper(arg, maxDepth)) ||
    Object.values(read.kwargs).some((arg) => valueNestsDeeper(arg, maxDepth))
  ) {
    return refuse(`message nests arrays and objects deeper than ${maxDepth} levels (maxDepth)`);
  }
  const request: RequestMessage = {
    func_name: read.funcName,
    func_args: read.args,
    func_kwargs: read.kwargs,
    message_id: read.messageId,
    pickled: read.echo,
  };
  if (read.dateCreateMessage !== undefined) request.date_create_message = read.dateCreateMessage;
  return { ok: true, request };
}

/** Why a request that is a JSON object is refused, with what could be read of it. */
function refusedRequest(
  fields: Record<string, unknown>,
  messageId: string | null,
  args: unknown,
  kwargs: unknown,
): ParsedRequest & { ok: false } {
  const partial: Partial<RequestMessage> = {};
  if (typeof fields.func_name === "string") partial.func_name = fields.func_name;
  if (Array.isArray(fields.func_args)) partial.func_args = fields.func_args;
  if (isPlainObject(fields.func_kwargs)) {
    partial.func_kwargs = fields.func_kwargs as Record<string, unknown>;
  }
  if (typeof fields.date_create_message === "string") {
    partial.date_create_message = fields.date_create_message;
  }
  if (typeof fields.reply_to === "string" && fields.reply_to !== "") {
    partial.reply_to = fields.reply_to;
  }
  const reject = (reason: string) => ({ ok: false as const, reason, messageId, partial });

  if (messageId === null) {
    return reject(
      fields.message_id === undefined
        ? "field message_id is missing"
        : `field message_id must be a UUID string or {"hex": "<32 hex digits>"}, got ${
          describeJsonType(fields.message_id)
        }`,
    );
  }
  partial.message_id = messageId;
  if (typeof fields.func_name !== "string" || fields.func_name === "") {
    return reject(
      fields.func_name === undefined
        ? "field func_name is missing"
        : `field func_name must be a non-empty string, got ${describeJsonType(fields.func_name)}`,
    );
  }
  if (!Array.isArray(args)) {
    return reject(`field func_args must be an array, got ${describeJsonType(args)}`);
  }
  if (!isPlainObject(kwargs)) {
    return reject(`field func_kwargs must be an object, got ${describeJsonType(kwargs)}`);
  }
  // Optional fields: null means absent, as for args and kwargs.
  if (fields.reply_to != null && typeof fields.reply_to !== "string") {
    return reject(`field reply_to must be a string, got ${describeJsonType(fields.reply_to)}`);
  }
  // What is left: deadline_ms is there and not a finite number.
  return reject(`field deadline_ms must be a number, got ${describeJsonType(fields.deadline_ms)}`);
}

/**
 * Finds a keyword name that must never be bound (`__proto__`, `constructor`, `prototype`).
 *
 * @param kwargs The keyword arguments.
 * @returns The first forbidden name, or `undefined`.
 */
export function forbiddenKeyword(kwargs: Record<string, unknown>): string | undefined {
  for (const key of Object.keys(kwargs)) {
    if (FORBIDDEN_KEYS.has(key)) return key;
  }
  return undefined;
}

/** A result read from the wire: valid, or refused with the reason. */
export type ParsedResult =
  | { ok: true; result: ResultMessage }
  | {
    ok: false;
    /** Why it was refused. */
    reason: string;
    /** The canonical `message_id` when one could be read, so the call it answers can fail. */
    messageId: string | null;
  };

/**
 * Parses a result from its JSON text, as a client receives it. Never throws.
 *
 * @param text The message body.
 * @param maxDepth How deeply the result value may nest (the result object
 *   around it is one level more; a raw result's echoed arguments, inside
 *   `func_args` or `func_kwargs`, two).
 * @returns The result with a canonical `message_id`, or why the text is not a
 *   result a caller can be given.
 */
export function parseResult(text: string, maxDepth: number = DEFAULT_MAX_DEPTH): ParsedResult {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { ok: false, reason: `the result is not JSON: ${why}`, messageId: null };
  }
  if (!isPlainObject(data)) {
    return {
      ok: false,
      reason: `a result must be a JSON object, got ${describeJsonType(data)}`,
      messageId: null,
    };
  }
  const fields = data as Record<string, unknown>;
  if (isPickled(fields)) return parsePickledResult(fields, text, maxDepth);
  const messageId = canonicalMessageId(fields.message_id);
  if (messageId === null) {
    return {
      ok: false,
      reason: fields.message_id === undefined
        ? "field message_id of the result is missing"
        : `field message_id of the result must be a UUID, got ${
          describeJsonType(fields.message_id)
        }`,
      messageId,
    };
  }
  if (
    fields.exception_info !== null && fields.exception_info !== undefined &&
    typeof fields.exception_info !== "string"
  ) {
    return {
      ok: false,
      reason: `field exception_info of the result must be a string or null, got ${
        describeJsonType(fields.exception_info)
      }`,
      messageId,
    };
  }
  // The result value sits one level inside the result, a raw result's echoed arguments two: when
  // the text nests just one level more than a value may, the value itself is measured.
  if (
    nestsDeeper(text, maxDepth + 1) &&
    (!echoesArguments(fields) || nestsDeeper(text, maxDepth + 2) ||
      valueNestsDeeper(fields.result, maxDepth))
  ) {
    return {
      ok: false,
      reason: `the result nests arrays and objects deeper than ${maxDepth} levels (maxDepth)`,
      messageId,
    };
  }
  const result = fields as unknown as ResultMessage;
  result.message_id = messageId;
  if (result.exception_info === undefined) result.exception_info = null;
  if (result.result === undefined) result.result = null;
  if (result.error !== undefined && !isWireErrorShape(result.error)) delete result.error;
  return { ok: true, result };
}

/**
 * A result a PRPC server stored, in jsonpickle, read data-only. It repeats the
 * request's arguments, so the text may nest up to two levels deeper than the value.
 */
function parsePickledResult(
  fields: Record<string, unknown>,
  text: string,
  maxDepth: number,
): ParsedResult {
  const messageId = pickledMessageId(fields) ?? canonicalMessageId(fields.message_id);
  if (
    nestsDeeper(text, maxDepth + 1) &&
    (nestsDeeper(text, maxDepth + 3) || valueNestsDeeper(fields.result, maxDepth + 1))
  ) {
    return {
      ok: false,
      reason: `the result nests arrays and objects deeper than ${maxDepth} levels (maxDepth)`,
      messageId,
    };
  }
  try {
    const read = readPickledResult(fields);
    return {
      ok: true,
      result: {
        func_name: read.funcName,
        message_id: read.messageId,
        result: read.result,
        exception_info: read.exceptionInfo,
        date_create_message: typeof fields.date_create_message === "string"
          ? fields.date_create_message
          : "",
        date_done_message: "",
      },
    };
  } catch (err) {
    // parseResult never throws: anything unforeseen in the reader is a refusal too.
    const why = err instanceof PickleRefusal ? err.message : String(err);
    return { ok: false, reason: `cannot read a jsonpickle result: ${why}`, messageId };
  }
}

/** Whether a result repeats its request's arguments (raw results do, as PRPC's). */
function echoesArguments(fields: Record<string, unknown>): boolean {
  return fields.func_args !== undefined || fields.func_kwargs !== undefined;
}

function isWireErrorShape(value: unknown): value is WireError {
  if (!isPlainObject(value)) return false;
  const error = value as Record<string, unknown>;
  return typeof error.type === "string" && typeof error.name === "string" &&
    typeof error.message === "string" &&
    (error.stack === undefined || typeof error.stack === "string");
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describeJsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "object":
      return "an object";
    case "string":
      return `a string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)}`;
    case "undefined":
      return "nothing";
    default:
      return `${typeof value} ${String(value)}`;
  }
}
