/**
 * Every error prpc raises, and how errors travel on the wire.
 *
 * All classes extend {@linkcode PrpcError}, so `err instanceof PrpcError` separates
 * prpc failures from everything else. Errors that happened on the server are
 * rebuilt on the caller by their wire `type` (see {@linkcode WireError}).
 *
 * @module
 */

import { DEFAULT_MAX_DEPTH, nestsDeeper } from "./depth.ts";

/** Details that errors rebuilt from a remote result carry about where they happened. */
export interface PrpcErrorOptions {
  /** The error that caused this one. */
  cause?: unknown;
  /** Name of the remote function the call was for. */
  funcName?: string | undefined;
  /** `message_id` of the call. */
  messageId?: string | undefined;
  /** Stack trace from the server, when the server sent one. */
  remoteStack?: string | undefined;
}

/**
 * Base class of every error prpc raises.
 *
 * @example Telling prpc failures apart
 * ```ts
 * import { PrpcError } from "@prpc/prpc";
 * try {
 *   throw new PrpcError("example");
 * } catch (err) {
 *   if (!(err instanceof PrpcError)) throw err;
 * }
 * ```
 */
export class PrpcError extends Error {
  /** Name of the remote function the failed call was for, when known. */
  readonly funcName: string | undefined;
  /** `message_id` of the failed call, when known. */
  readonly messageId: string | undefined;
  /** Stack trace recorded on the server, when the error happened there and stacks are not redacted. */
  readonly remoteStack: string | undefined;

  /**
   * Creates an error.
   *
   * @param message What went wrong.
   * @param options Call details and cause.
   */
  constructor(message: string, options: PrpcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.funcName = options.funcName;
    this.messageId = options.messageId;
    this.remoteStack = options.remoteStack;
  }

  /** Always `"PrpcError"`; each subclass has its own literal name. */
  override get name(): string {
    return "PrpcError";
  }
}

/** Options of {@linkcode RemoteError}. */
export interface RemoteErrorOptions extends PrpcErrorOptions {
  /** `code` property of the remote error, if it had one. */
  code?: unknown;
  /** `data` property of the remote error, if it had one. */
  data?: unknown;
}

/**
 * The remote function threw (or rejected). Carries the remote error's name,
 * message, stack, and its `code`/`data` properties when it had them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RemoteError } from "@prpc/prpc";
 * const err = new RemoteError("TypeError", "bad thing");
 * assert.ok(err.message.includes("bad thing"));
 * assert.equal(err.remoteName, "TypeError");
 * ```
 */
export class RemoteError extends PrpcError {
  /** `name` of the error thrown on the server, e.g. `"TypeError"`. */
  readonly remoteName: string;
  /** `message` of the error thrown on the server. */
  readonly remoteMessage: string;
  /** `code` property of the remote error, or `undefined`. */
  readonly code: unknown;
  /** `data` property of the remote error, or `undefined`. */
  readonly data: unknown;

  /**
   * Creates a remote error.
   *
   * @param remoteName `name` of the error thrown on the server.
   * @param remoteMessage `message` of the error thrown on the server.
   * @param options Call details, stack, code and data.
   */
  constructor(remoteName: string, remoteMessage: string, options: RemoteErrorOptions = {}) {
    const where = options.funcName === undefined ? "remote function" : `"${options.funcName}"`;
    super(`${where} threw ${remoteName}: ${remoteMessage}`, options);
    this.remoteName = remoteName;
    this.remoteMessage = remoteMessage;
    this.code = options.code;
    this.data = options.data;
  }

  /** Always `"RemoteError"`. */
  override get name(): string {
    return "RemoteError";
  }
}

/** Options of {@linkcode CallTimeoutError}. */
export interface CallTimeoutErrorOptions extends PrpcErrorOptions {
  /** The limit that elapsed, in milliseconds. */
  timeoutMs?: number | undefined;
}

/**
 * The client got no result within its timeout, its `signal` was aborted, or the
 * call's deadline had passed before a server could start it.
 */
export class CallTimeoutError extends PrpcError {
  /** The limit that elapsed, in milliseconds, when a timeout (not an abort) ended the call. */
  readonly timeoutMs: number | undefined;

  /**
   * Creates a call timeout error.
   *
   * @param message What timed out.
   * @param options Call details and the limit.
   */
  constructor(message: string, options: CallTimeoutErrorOptions = {}) {
    super(message, options);
    this.timeoutMs = options.timeoutMs;
  }

  /** Always `"CallTimeoutError"`. */
  override get name(): string {
    return "CallTimeoutError";
  }
}

/** No function of that name is registered on the server that took the call. */
export class UnknownFunctionError extends PrpcError {
  /** Always `"UnknownFunctionError"`. */
  override get name(): string {
    return "UnknownFunctionError";
  }
}

/** The call's arguments do not fit the function: wrong arity, unknown or duplicate keyword. */
export class ArgumentError extends PrpcError {
  /** Always `"ArgumentError"`. */
  override get name(): string {
    return "ArgumentError";
  }
}

/**
 * The function ran longer than the server's `workerTimeoutMs`. The function's
 * `AbortSignal` (see `callContext()`) fired at that moment.
 */
export class WorkerTimeoutError extends PrpcError {
  /** Always `"WorkerTimeoutError"`. */
  override get name(): string {
    return "WorkerTimeoutError";
  }
}

/**
 * The `thread` or `process` worker running the call died before answering: the
 * function called `Deno.exit()`, threw where nothing could catch it, ran out of
 * memory, or its module failed to load there. The server replaces the worker
 * and keeps serving; the message is not retried.
 */
export class WorkerCrashedError extends PrpcError {
  /** Always `"WorkerCrashedError"`. */
  override get name(): string {
    return "WorkerCrashedError";
  }
}

/**
 * A value cannot travel as JSON: functions, symbols, bigint, cycles, `NaN`,
 * `Infinity`, `Map`, `Set`, binary buffers. Raised on the client for arguments
 * and on the server for results.
 */
export class SerializationError extends PrpcError {
  /** Always `"SerializationError"`. */
  override get name(): string {
    return "SerializationError";
  }
}

/** Options of {@linkcode PayloadTooLargeError}. */
export interface PayloadTooLargeErrorOptions extends PrpcErrorOptions {
  /** Size of the encoded message in bytes. */
  size?: number | undefined;
  /** The limit it exceeded, in bytes. */
  limit?: number | undefined;
}

/** An encoded request or result is larger than the broker or the configuration allows. */
export class PayloadTooLargeError extends PrpcError {
  /** Size of the encoded message in bytes, when known. */
  readonly size: number | undefined;
  /** The limit it exceeded, in bytes, when known. */
  readonly limit: number | undefined;

  /**
   * Creates a payload error.
   *
   * @param message What was too large.
   * @param options Call details, size and limit.
   */
  constructor(message: string, options: PayloadTooLargeErrorOptions = {}) {
    super(message, options);
    this.size = options.size;
    this.limit = options.limit;
  }

  /** Always `"PayloadTooLargeError"`. */
  override get name(): string {
    return "PayloadTooLargeError";
  }
}

/** A message does not follow the wire protocol (see `docs/PROTOCOL.md`). */
export class ProtocolError extends PrpcError {
  /** Always `"ProtocolError"`. */
  override get name(): string {
    return "ProtocolError";
  }
}

/** A setting, from options or from a `PRPC_*` environment variable, is invalid. */
export class ConfigError extends PrpcError {
  /** Always `"ConfigError"`. */
  override get name(): string {
    return "ConfigError";
  }
}

/** A broker connection failed or was closed while an operation needed it. */
export class BrokerError extends PrpcError {
  /** Always `"BrokerError"`. */
  override get name(): string {
    return "BrokerError";
  }
}

/** The error classes a server may put in a result, by wire `type`. */
const SERVER_ERRORS: Record<Exclude<WireErrorType, "RemoteError">, typeof PrpcError> = {
  UnknownFunctionError,
  ArgumentError,
  WorkerTimeoutError,
  WorkerCrashedError,
  SerializationError,
  PayloadTooLargeError,
  ProtocolError,
  CallTimeoutError,
};

/** Wire `type` of an error in a result. `RemoteError` means the function itself threw. */
export type WireErrorType =
  | "RemoteError"
  | "UnknownFunctionError"
  | "ArgumentError"
  | "WorkerTimeoutError"
  | "WorkerCrashedError"
  | "SerializationError"
  | "PayloadTooLargeError"
  | "ProtocolError"
  | "CallTimeoutError";

/**
 * Structured error of a result message (field `error`), next to PRPC's
 * `exception_info` string.
 */
export interface WireError {
  /** Which prpc error class the caller rebuilds. */
  type: WireErrorType;
  /** Name of the original error, e.g. `"TypeError"`. */
  name: string;
  /** Message of the original error. */
  message: string;
  /** Stack trace on the server, unless redacted. */
  stack?: string;
  /** `code` property of the original error, when it had one that encodes as JSON. */
  code?: unknown;
  /** `data` property of the original error, when it had one that encodes as JSON. */
  data?: unknown;
}

function isWireErrorType(type: string): type is WireErrorType {
  return type === "RemoteError" || Object.hasOwn(SERVER_ERRORS, type);
}

/**
 * Describes an error for a result message.
 *
 * @param error What was thrown: a prpc error, any `Error`, or any other value.
 * @param exposeStack Whether to include the stack trace of an error the function threw.
 * @returns The wire form.
 */
export function toWireError(error: unknown, exposeStack: boolean): WireError {
  if (!(error instanceof Error)) {
    return { type: "RemoteError", name: "Error", message: describeThrown(error) };
  }
  // A thrown error's name and message may be anything a function set them to.
  const name = typeof error.name === "string" ? error.name : "Error";
  const message = typeof error.message === "string" ? error.message : describeThrown(error.message);
  const wire: WireError = {
    type: error instanceof PrpcError && isWireErrorType(name) ? name : "RemoteError",
    name,
    message,
  };
  // Stacks help debug the function that threw; prpc's own refusals would only show server paths.
  if (exposeStack && wire.type === "RemoteError" && typeof error.stack === "string") {
    wire.stack = error.stack;
  }
  const extra = error as Error & { code?: unknown; data?: unknown };
  if (extra.code !== undefined && isPlainJson(extra.code)) wire.code = extra.code;
  if (extra.data !== undefined && isPlainJson(extra.data)) wire.data = extra.data;
  return wire;
}

/**
 * PRPC's `exception_info` string for an error: `"Name: message"`.
 *
 * @param wire The structured error.
 * @returns The string PRPC clients read.
 */
export function exceptionInfo(wire: WireError): string {
  return `${wire.name}: ${wire.message}`;
}

/**
 * Rebuilds the error a caller throws from a result's error fields.
 *
 * @param wire The structured error, if the result had one.
 * @param exceptionInfoText PRPC's `exception_info` string, used when `wire` is
 *   absent (a PRPC server's result): all of it is the message, and the name is
 *   `"Error"`, as the text carries no type.
 * @param context The call the result belongs to.
 * @returns The error to throw.
 */
export function fromWireError(
  wire: WireError | undefined,
  exceptionInfoText: string,
  context: { funcName: string; messageId: string },
): PrpcError {
  const base = { funcName: context.funcName, messageId: context.messageId };
  if (wire === undefined) {
    // PRPC's server writes str(e), the message alone: "port: must be an int" names no type.
    return new RemoteError("Error", exceptionInfoText, base);
  }
  const options = { ...base, remoteStack: wire.stack };
  if (wire.type === "RemoteError" || !Object.hasOwn(SERVER_ERRORS, wire.type)) {
    return new RemoteError(wire.name, wire.message, {
      ...options,
      code: wire.code,
      data: wire.data,
    });
  }
  const ErrorClass = SERVER_ERRORS[wire.type];
  return new ErrorClass(wire.message, options);
}

/**
 * Checks that a value would survive JSON encoding unchanged enough to be worth sending
 * (no functions, symbols, bigint or cycles). Used for optional error extras.
 */
function isPlainJson(value: unknown): boolean {
  try {
    const text = JSON.stringify(value);
    // Nested deeper than any caller would read: left out rather than failing the result.
    return text !== undefined && !nestsDeeper(text, DEFAULT_MAX_DEPTH);
  } catch {
    return false;
  }
}

/**
 * Text for a thrown value that is not an `Error`.
 *
 * @param value What was thrown.
 * @returns A short description.
 */
export function describeThrown(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    const json = JSON.stringify(value);
    if (json !== undefined) return json;
  } catch {
    // fall through
  }
  return String(value);
}
