/**
 * `Client`: calls functions of a prpc server by name through the broker and
 * awaits their results.
 *
 * @module
 */

import { connectBroker } from "../brokers/load.ts";
import type { Broker, BrokerSettings, Inbox } from "../brokers/types.ts";
import { assertEncodable, sizeOverLimit } from "../protocol/codec.ts";
import {
  type BrokerKind,
  brokerKindSetting,
  brokerUrlSetting,
  intSetting,
  maxMessageBytesSetting,
  queueNameSetting,
} from "../protocol/env.ts";
import {
  forbiddenKeyword,
  isoTimestamp,
  parseResult,
  PROTOCOL_VERSION,
  type RequestMessage,
} from "../protocol/envelope.ts";
import {
  ArgumentError,
  BrokerError,
  CallTimeoutError,
  fromWireError,
  PayloadTooLargeError,
  PrpcError,
} from "../protocol/errors.ts";
import { consoleLogger, type Logger } from "../server/logger.ts";
import { createProxy, type RemoteApi, type UntypedApi } from "./proxy.ts";

/** Options of {@linkcode Client.connect}. */
export interface ClientOptions {
  /** Which broker. Default: `PRPC_TYPE_BROKER`, else `"memory"`. */
  broker?: BrokerKind | undefined;
  /** Broker URL. Default: `PRPC_URL_BROKER`, else the broker's own default. */
  url?: string | undefined;
  /** Queue name of the server. Default: `PRPC_QUEUE_NAME`, else `"task_prpc"`. */
  queue?: string | undefined;
  /** Default time limit of a call in milliseconds. Default: `PRPC_CALL_TIMEOUT_MS`, else 60 000. */
  timeoutMs?: number | undefined;
  /**
   * Largest request in UTF-8 bytes. Default: `PRPC_MAX_MESSAGE_BYTES`, else the
   * broker's limit; never more than the broker's limit.
   */
  maxMessageBytes?: number | undefined;
  /** Where to write what happens. Default: the console, from level `info`. */
  logger?: Logger | undefined;
  /** Settings of the broker module; each broker module documents its keys. */
  brokerSettings?: BrokerSettings | undefined;
}

/** Options of one call. */
export interface CallOptions {
  /** Time limit in milliseconds. Default: the client's `timeoutMs`. */
  timeoutMs?: number | undefined;
  /** Aborting it rejects the call with `CallTimeoutError` (its `cause` is the abort reason). */
  signal?: AbortSignal | undefined;
}

/** A call waiting for its result. */
interface PendingCall {
  readonly funcName: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  readonly cleanup: (() => void) | undefined;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A connection to a prpc server's queue.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AppServer, Client } from "../mod.ts";
 *
 * const app = new AppServer({ queue: "doc_client", handleSignals: false });
 * app.register("summ", (a: number, b: number, z = 0.5) => a + b + z);
 * await app.start();
 *
 * const client = await Client.connect({ queue: "doc_client" });
 * assert.equal(await client.call("summ", [1, 2], { z: 3 }), 6);
 * const api = client.proxy<{ summ: (a: number, b: number, z?: number) => number }>();
 * assert.equal(await api.summ(1, 2), 3.5);
 * await client.close();
 * await app.stop();
 * ```
 */
export class Client {
  readonly #broker: Broker;
  readonly #inbox: Inbox;
  readonly #queue: string;
  readonly #timeoutMs: number;
  readonly #maxMessageBytes: number;
  readonly #logger: Logger;
  readonly #pending: Map<string, PendingCall>;
  #closed = false;

  private constructor(parts: {
    broker: Broker;
    inbox: Inbox;
    queue: string;
    timeoutMs: number;
    maxMessageBytes: number;
    logger: Logger;
    pending: Map<string, PendingCall>;
  }) {
    this.#broker = parts.broker;
    this.#inbox = parts.inbox;
    this.#queue = parts.queue;
    this.#timeoutMs = parts.timeoutMs;
    this.#maxMessageBytes = parts.maxMessageBytes;
    this.#logger = parts.logger;
    this.#pending = parts.pending;
  }

  /**
   * Connects to the broker and opens this client's inbox. Every option
   * defaults from the `PRPC_*` variables.
   *
   * @param options Broker, URL, queue and limits.
   * @returns The connected client.
   * @throws {ConfigError} When a setting is invalid.
   */
  static async connect(options: ClientOptions = {}): Promise<Client> {
    const kind = brokerKindSetting(options.broker);
    const url = brokerUrlSetting(options.url);
    const queue = queueNameSetting(options.queue);
    const timeoutMs = intSetting({
      value: options.timeoutMs,
      option: "timeoutMs",
      env: "PRPC_CALL_TIMEOUT_MS",
      fallback: 60_000,
      min: 1,
    });
    const maxMessageBytes = maxMessageBytesSetting(options.maxMessageBytes);
    const logger = options.logger ?? consoleLogger();
    const broker = await connectBroker(kind, {
      url,
      settings: options.brokerSettings,
      logger,
    });
    const pending = new Map<string, PendingCall>();
    let inbox: Inbox;
    try {
      inbox = await broker.openInbox((body) => Client.#onReply(pending, logger, body));
    } catch (err) {
      await broker.close().catch(() => {});
      throw err;
    }
    return new Client({
      broker,
      inbox,
      queue,
      timeoutMs,
      maxMessageBytes: maxMessageBytes(broker.maxMessageBytes),
      logger,
      pending,
    });
  }

  /** The queue name this client calls. */
  get queue(): string {
    return this.#queue;
  }

  /** Number of calls waiting for their result. */
  get pendingCalls(): number {
    return this.#pending.size;
  }

  static #onReply(pending: Map<string, PendingCall>, logger: Logger, body: string): void {
    const result = parseResult(body);
    if (result === null) {
      logger.warn("ignored a reply that is not a prpc result", { body: body.slice(0, 200) });
      return;
    }
    const call = pending.get(result.message_id);
    if (call === undefined) {
      logger.debug("ignored a result nobody waits for", { messageId: result.message_id });
      return;
    }
    pending.delete(result.message_id);
    clearTimeout(call.timer);
    call.cleanup?.();
    if (result.exception_info === null) {
      call.resolve(result.result);
    } else {
      call.reject(
        fromWireError(result.error, result.exception_info, {
          funcName: call.funcName,
          messageId: result.message_id,
        }),
      );
    }
  }

  /**
   * Calls a function on the server and waits for its result.
   *
   * @param funcName The registered name.
   * @param args Positional arguments.
   * @param kwargs Keyword arguments, bound to parameters by name.
   * @param options Time limit and abort signal.
   * @returns The function's result, as JSON brings it back (a `Date` becomes its ISO string).
   * @throws {RemoteError} When the function threw.
   * @throws {CallTimeoutError} When no result came in time or `signal` was aborted.
   * @throws {UnknownFunctionError} When the server has no such function.
   * @throws {ArgumentError} When the arguments do not fit the function.
   * @throws {WorkerTimeoutError} When the function ran over the server's `workerTimeoutMs`.
   * @throws {SerializationError} When an argument or the result has no JSON form.
   * @throws {PayloadTooLargeError} When the request or result is over the size limit.
   */
  call<R = unknown>(
    funcName: string,
    args: readonly unknown[] = [],
    kwargs: Readonly<Record<string, unknown>> = {},
    options: CallOptions = {},
  ): Promise<R> {
    try {
      return this.#call(funcName, args, kwargs, options) as Promise<R>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #call(
    funcName: string,
    args: readonly unknown[],
    kwargs: Readonly<Record<string, unknown>>,
    options: CallOptions,
  ): Promise<unknown> {
    if (this.#closed) throw new BrokerError("Cannot call through a closed client");
    if (typeof funcName !== "string" || funcName === "") {
      throw new TypeError("Cannot call a function without a name");
    }
    if (!Array.isArray(args)) throw new TypeError("Cannot call with args that are not an array");
    if (typeof kwargs !== "object" || kwargs === null || Array.isArray(kwargs)) {
      throw new TypeError("Cannot call with kwargs that are not a plain object");
    }
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMER_MS) {
      throw new RangeError(
        `Cannot use timeoutMs as a time limit: current value is ${timeoutMs}; expected 1 to ${MAX_TIMER_MS}`,
      );
    }
    const messageId = crypto.randomUUID();
    const ids = { funcName, messageId };
    const signal = options.signal;
    if (signal?.aborted) {
      throw new CallTimeoutError(`call to "${funcName}" was aborted before it was sent`, {
        ...ids,
        cause: signal.reason,
      });
    }
    const forbidden = forbiddenKeyword(kwargs);
    if (forbidden !== undefined) {
      throw new ArgumentError(
        `${funcName}() keyword argument ${JSON.stringify(forbidden)} is not allowed`,
        ids,
      );
    }
    for (let i = 0; i < args.length; i++) assertEncodable(args[i], `args[${i}]`);
    for (const key of Object.keys(kwargs)) assertEncodable(kwargs[key], `kwargs.${key}`);
    const request: RequestMessage = {
      func_name: funcName,
      func_args: args as unknown[],
      func_kwargs: kwargs as Record<string, unknown>,
      message_id: messageId,
      date_create_message: isoTimestamp(),
      reply_to: this.#inbox.address,
      deadline_ms: Date.now() + timeoutMs,
      prpc: PROTOCOL_VERSION,
    };
    const body = JSON.stringify(request);
    const oversize = sizeOverLimit(body, this.#maxMessageBytes);
    if (oversize !== null) {
      throw new PayloadTooLargeError(
        `request to "${funcName}" is ${oversize} bytes, over the limit of ${this.#maxMessageBytes} bytes`,
        { ...ids, size: oversize, limit: this.#maxMessageBytes },
      );
    }
    return new Promise((resolve, reject) => {
      const fail = (error: Error) => {
        if (!this.#pending.delete(messageId)) return;
        clearTimeout(timer);
        cleanup?.();
        reject(error);
      };
      const timer = setTimeout(() => {
        fail(
          new CallTimeoutError(`no result from "${funcName}" within ${timeoutMs} ms`, {
            ...ids,
            timeoutMs,
          }),
        );
      }, timeoutMs);
      let cleanup: (() => void) | undefined;
      if (signal !== undefined) {
        const onAbort = () =>
          fail(
            new CallTimeoutError(`call to "${funcName}" was aborted`, {
              ...ids,
              cause: signal.reason,
            }),
          );
        signal.addEventListener("abort", onAbort, { once: true });
        cleanup = () => signal.removeEventListener("abort", onAbort);
      }
      this.#pending.set(messageId, { funcName, resolve, reject, timer, cleanup });
      this.#broker.publish(this.#queue, "native", body).catch((err) => {
        // The broker's own refusals (e.g. PayloadTooLargeError) keep their class.
        fail(
          err instanceof PrpcError
            ? err
            : new BrokerError(`cannot send the call to "${funcName}": ${errorText(err)}`, {
              ...ids,
              cause: err,
            }),
        );
      });
    });
  }

  /**
   * A typed view of the server's functions: `api.summ(1, 2)` calls `"summ"`.
   * Pass the server's function types as `T` (an object of functions or a module
   * type, e.g. `typeof import("./funcs.ts")`); without it every name is callable
   * and returns `Promise<unknown>`.
   *
   * @param options Time limit and signal for every call made through the view.
   * @returns The proxy. It is never a thenable, so it can be returned from async functions.
   */
  proxy<T = UntypedApi>(options: CallOptions = {}): RemoteApi<T> {
    return createProxy<T>((name, args) => this.call(name, args, {}, options));
  }

  /**
   * Closes the inbox and the broker connection. Calls still waiting are
   * rejected with a `BrokerError`. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [messageId, call] of this.#pending) {
      clearTimeout(call.timer);
      call.cleanup?.();
      call.reject(
        new BrokerError(`the client was closed while "${call.funcName}" was running`, {
          funcName: call.funcName,
          messageId,
        }),
      );
    }
    this.#pending.clear();
    try {
      await this.#inbox.close();
    } finally {
      await this.#broker.close();
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
