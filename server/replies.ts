/**
 * The results a server sends: a function's value, or an error. Building a
 * result never throws: a value that cannot be encoded becomes a
 * `SerializationError` result, one over the size limit a `PayloadTooLargeError`
 * result, and an error result that cannot be encoded or is too large is cut
 * down to the error's name and the start of its message.
 *
 * @module
 */

import type { Reply } from "../brokers/types.ts";
import { assertEncodable, sizeOverLimit } from "../protocol/codec.ts";
import {
  isoTimestamp,
  PROTOCOL_VERSION,
  type QueueKind,
  type RequestMessage,
  type ResultMessage,
} from "../protocol/envelope.ts";
import {
  describeThrown,
  exceptionInfo,
  PayloadTooLargeError,
  SerializationError,
  toWireError,
  type WireError,
} from "../protocol/errors.ts";
import {
  type PickledEcho,
  PickleRefusal,
  preciseEpochMs,
  writePickledResult,
} from "../protocol/jsonpickle.ts";

/** The limits results are built within. */
export interface ReplyLimits {
  /** Largest result body in UTF-8 bytes. */
  readonly maxMessageBytes: number;
  /** How deeply a result value may nest. */
  readonly maxDepth: number;
  /** Whether error results carry the stack of an error a function threw. */
  readonly exposeStacks: boolean;
}

/** Builds the result bodies of one server; see the module docs. */
export class ReplyBuilder {
  /**
   * A builder within limits.
   *
   * @param limits Size, depth and whether stacks are sent.
   */
  constructor(readonly limits: ReplyLimits) {}

  /**
   * The result carrying a function's value, or an error result when the value cannot be sent.
   *
   * @param kind The queue the request came from (raw results echo the request).
   * @param request The request.
   * @param received When the server took it (epoch ms).
   * @param value What the function returned.
   * @returns The reply.
   */
  success(kind: QueueKind, request: RequestMessage, received: number, value: unknown): Reply {
    const ids = { funcName: request.func_name, messageId: request.message_id };
    let body: string;
    try {
      assertEncodable(value, "the result", this.limits.maxDepth);
      body = request.pickled === undefined
        ? this.#plainBody(kind, request, received, value)
        : pickledBody(request, request.pickled, value, null);
    } catch (err) {
      // A getter or toJSON() that throws, a stack that runs out: prpc failed to encode the
      // value, which is a SerializationError, never the function's own error.
      const why = err instanceof SerializationError || err instanceof PickleRefusal
        ? err.message
        : describeError(err);
      const error = new SerializationError(
        `${request.func_name}() returned a value that cannot be sent: ${why}`,
        ids,
      );
      return this.error(kind, request, received, error);
    }
    const oversize = sizeOverLimit(body, this.limits.maxMessageBytes);
    if (oversize !== null) {
      const error = new PayloadTooLargeError(
        `${request.func_name}() returned ${oversize} bytes, over the limit of ${this.limits.maxMessageBytes} bytes`,
        { ...ids, size: oversize, limit: this.limits.maxMessageBytes },
      );
      return this.error(kind, request, received, error);
    }
    return { messageId: request.message_id, body, replyTo: request.reply_to };
  }

  /**
   * The result carrying an error. Never throws.
   *
   * @param kind The queue the request came from.
   * @param request The request, or what of it could be read.
   * @param received When the server took it (epoch ms).
   * @param error What was thrown.
   * @returns The reply.
   */
  error(kind: QueueKind, request: RequestMessage, received: number, error: unknown): Reply {
    let wire: WireError;
    try {
      wire = toWireError(error, this.limits.exposeStacks);
    } catch {
      // An error whose name or message getter throws.
      wire = { type: "RemoteError", name: "Error", message: "an error that cannot be described" };
    }
    if (request.pickled !== undefined) return this.#pickledError(request, request.pickled, wire);
    const result = this.#resultMessage(kind, request, received);
    result.exception_info = exceptionInfo(wire);
    result.error = wire;
    let body: string | undefined;
    try {
      body = JSON.stringify(result);
    } catch {
      body = undefined;
    }
    if (body === undefined || sizeOverLimit(body, this.limits.maxMessageBytes) !== null) {
      // Never let an error result fail: keep only the error's name and the start of its
      // message, which are strings (that always encode) of bounded size.
      delete result.func_args;
      delete result.func_kwargs;
      const short: WireError = {
        type: wire.type,
        name: wire.name,
        message: body === undefined
          ? `${wire.message.slice(0, 1000)}… (shortened: the full error cannot be encoded)`
          : `${wire.message.slice(0, 1000)}… (shortened to fit the message size limit)`,
      };
      result.error = short;
      result.exception_info = exceptionInfo(short);
      body = JSON.stringify(result);
    }
    return { messageId: request.message_id, body, replyTo: request.reply_to };
  }

  #plainBody(kind: QueueKind, request: RequestMessage, received: number, value: unknown): string {
    const result = this.#resultMessage(kind, request, received);
    result.result = value === undefined ? null : value;
    return JSON.stringify(result);
  }

  /**
   * An error result in jsonpickle: `exception_info` is the error's message, as PRPC's
   * server writes `str(e)`. Cut to the start of the message when too large.
   */
  #pickledError(request: RequestMessage, echo: PickledEcho, wire: WireError): Reply {
    let body = pickledBody(request, echo, null, wire.message);
    if (sizeOverLimit(body, this.limits.maxMessageBytes) !== null) {
      // Repeat none of the request, and only the start of the message (strings always encode).
      body = pickledBody(
        request,
        { funcArgs: { "py/tuple": [] }, funcKwargs: {}, dateCreateMessage: echo.dateCreateMessage },
        null,
        `${wire.message.slice(0, 1000)}… (shortened to fit the message size limit)`,
      );
    }
    return { messageId: request.message_id, body, replyTo: request.reply_to };
  }

  /** The result fields shared by successes and errors; raw results echo the request as PRPC does. */
  #resultMessage(kind: QueueKind, request: RequestMessage, received: number): ResultMessage {
    const result: ResultMessage = {
      func_name: request.func_name,
      message_id: request.message_id,
      result: null,
      exception_info: null,
      date_create_message: request.date_create_message ?? isoTimestamp(received),
      date_done_message: isoTimestamp(),
    };
    if (kind === "raw") {
      result.func_args = request.func_args;
      result.func_kwargs = request.func_kwargs;
    } else {
      result.prpc = PROTOCOL_VERSION;
    }
    return result;
  }
}

/**
 * A result in jsonpickle for a request that came so. The value is taken through
 * JSON first (`toJSON()`, dates as ISO strings), as a plain result would be.
 */
function pickledBody(
  request: RequestMessage,
  echo: PickledEcho,
  value: unknown,
  exceptionInfo: string | null,
): string {
  const text = value === undefined ? undefined : JSON.stringify(value);
  return writePickledResult({
    funcName: request.func_name,
    messageId: request.message_id,
    echo,
    exceptionInfo,
    // Never before the request was created, to the microsecond: PRPC's client subtracts them.
    doneAt: Math.max(Date.now(), preciseEpochMs(request.date_create_message ?? "") || 0),
  }, text === undefined ? null : JSON.parse(text));
}

function describeError(err: unknown): string {
  try {
    return err instanceof Error ? `${err.name}: ${err.message}` : describeThrown(err);
  } catch {
    return "an error that cannot be described";
  }
}
