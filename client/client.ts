/**
 * `Client`: calls functions of a prpc server by name through the broker and
 * awaits their results.
 *
 * @module
 */

import { connectBroker } from "../brokers/load.ts";
import type { Broker, BrokerSettings, Inbox } from "../brokers/types.ts";
import { StoredResults, UnpushedResults } from "./stored_results.ts";
import { ChurnMap } from "../protocol/churn.ts";
import { assertEncodable, sizeOverLimit } from "../protocol/codec.ts";
import {
  type BrokerKind,
  brokerKindSetting,
  brokerUrlSetting,
  intSetting,
  maxDepthSetting,
  maxMessageBytesSetting,
  queueNameSetting,
} from "../protocol/env.ts";
import {
  forbiddenKeyword,
  isoTimestamp,
  parseResult,
  PROTOCOL_VERSION,
  type RequestMessage,
  type ResultMessage,
} from "../protocol/envelope.ts";
import {
  ArgumentError,
  BrokerError,
  CallTimeoutError,
  ConfigError,
  fromWireError,
  PayloadTooLargeError,
  ProtocolError,
  PrpcError,
  SerializationError,
} from "../protocol/errors.ts";
import { consoleLogger, type Logger } from "../protocol/logger.ts";
import { type Timeout, timeouts } from "../protocol/timeouts.ts";
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
  /**
   * How deeply an argument or a result may nest arrays and objects (the
   * outermost level is 1). Deeper arguments fail with `SerializationError`
   * before anything is sent; a deeper result fails its call with
   * `ProtocolError`. Default: `PRPC_MAX_DEPTH`, else 1 000; at most 2 000.
   */
  maxDepth?: number | undefined;
  /** Where to write what happens. Default: the console, from level `info`. */
  logger?: Logger | undefined;
  /** Settings of the broker module; each broker module documents its keys. */
  brokerSettings?: BrokerSettings | undefined;
  /**
   * How calls travel. Default `"native"`: requests carry this client's inbox as
   * `reply_to` and the server pushes each result there.
   *
   * `"raw"` calls any PRPC-compatible server, e.g. a Python PRPC server:
   * requests go to `prpc_raw_{queue}` in PRPC's raw shape (`func_name`,
   * `func_args`, `func_kwargs`, `message_id`, `date_create_message`, nothing
   * else) and each result is read from its result key. A raw server does not
   * push results, so the client reads the result keys of all its waiting raw
   * calls together (one `MGET` on Redis) right after a call is sent, then again
   * after 1, 2, 4, ... ms (at most 100 ms apart) until every result is there
   * or its call times out.
   * Results may carry `message_id` as a string or as PRPC's `{"hex": "..."}`.
   */
  protocol?: "native" | "raw" | undefined;
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
  readonly timeout: Timeout;
  readonly cleanup: (() => void) | undefined;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
/** Longest wait between two reads of the result keys of raw calls. */
const MAX_POLL_MS = 100;
/**
 * How long a native call waits for its pushed result before its result key is
 * read too, and then how often (Redis: a PRPC server stores results and pushes
 * none). PRPC's own client reads once a second.
 */
const PRPC_SERVER_POLL_MS = 250;
/**
 * The first fields of a native request: PRPC's class, for jsonpickle on a PRPC
 * server, and the result fields its `PRPCMessage` methods read (a PRPC server
 * logs each message it takes, which reads `date_done_message`: without it, the
 * worker that took the message dies).
 */
const PRPC_CLASS_FIELD =
  '{"py/object":"prpc.prpcmessage.PRPCMessage","result":null,"exception_info":null,"date_done_message":null,';

/**
 * A connection to a prpc server's queue.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AppServer, Client } from "@prpc/prpc";
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
  readonly #queue: string;
  readonly #protocol: "native" | "raw";
  readonly #timeoutMs: number;
  readonly #maxMessageBytes: number;
  readonly #maxDepth: number;
  readonly #logger: Logger;
  readonly #pending = new ChurnMap<PendingCall>();
  /** Where results arrive (native protocol only). */
  #inbox: Inbox | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Raw calls, whose results are read from their keys (a raw server pushes nothing). */
  readonly #stored: StoredResults | undefined;
  /**
   * On Redis, native calls waiting longer than `PRPC_SERVER_POLL_MS`: a PRPC
   * server on the queue may have run them, which stores the result and pushes nothing.
   */
  readonly #unpushed: UnpushedResults | undefined;
  /** Whether native requests carry PRPC's class name, so that a PRPC server on the queue runs them. */
  readonly #prpcReadable: boolean;

  private constructor(parts: {
    broker: Broker;
    kind: BrokerKind;
    queue: string;
    protocol: "native" | "raw";
    timeoutMs: number;
    maxMessageBytes: number;
    maxDepth: number;
    logger: Logger;
  }) {
    this.#broker = parts.broker;
    this.#queue = parts.queue;
    this.#protocol = parts.protocol;
    this.#timeoutMs = parts.timeoutMs;
    this.#maxMessageBytes = parts.maxMessageBytes;
    this.#maxDepth = parts.maxDepth;
    this.#logger = parts.logger;
    // PRPC's servers exist for Redis and Kafka; on Redis their results can be read cheaply.
    this.#prpcReadable = parts.kind === "redis" || parts.kind === "kafka";
    const kind = parts.protocol;
    const broker = parts.broker;
    const read = (ids: string[]) =>
      broker.readResults !== undefined
        ? broker.readResults(parts.queue, kind, ids)
        : Promise.all(ids.map((id) => broker.readResult(parts.queue, kind, id)));
    const found = (messageId: string, body: string) => this.#storedResult(messageId, body);
    if (kind === "raw") {
      this.#stored = new StoredResults({
        read,
        found,
        logger: parts.logger,
        maxPauseMs: MAX_POLL_MS,
      });
    } else if (parts.kind === "redis") {
      this.#unpushed = new UnpushedResults({
        waiting: () => this.#pending.keys(),
        read,
        found,
        logger: parts.logger,
        intervalMs: PRPC_SERVER_POLL_MS,
      });
    }
  }

  /**
   * Connects to the broker and opens this client's inbox (native protocol).
   * Every option defaults from the `PRPC_*` variables.
   *
   * @param options Broker, URL, queue, protocol and limits.
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
    const maxDepth = maxDepthSetting(options.maxDepth);
    const protocol = options.protocol ?? "native";
    if (protocol !== "native" && protocol !== "raw") {
      throw new ConfigError(
        `Cannot use option protocol: current value is ${
          JSON.stringify(protocol)
        }; expected "native" or "raw"`,
      );
    }
    const logger = options.logger ?? consoleLogger();
    const broker = await connectBroker(kind, {
      url,
      settings: options.brokerSettings,
      logger,
    });
    const client = new Client({
      broker,
      kind,
      queue,
      protocol,
      timeoutMs,
      maxMessageBytes: maxMessageBytes(broker.maxMessageBytes),
      maxDepth,
      logger,
    });
    if (protocol === "native") {
      try {
        client.#inbox = await broker.openInbox(
          (body) => client.#onReply(body),
          () => client.#readMissedResults(),
        );
      } catch (err) {
        await broker.close().catch(() => {});
        throw err;
      }
    }
    return client;
  }

  /** The queue name this client calls. */
  get queue(): string {
    return this.#queue;
  }

  /** Number of calls waiting for their result. */
  get pendingCalls(): number {
    return this.#pending.size;
  }

  /** A result pushed to the inbox (or read from its key after the inbox may have missed it). */
  #onReply(body: string): void {
    const parsed = parseResult(body, this.#maxDepth);
    if (parsed.ok) this.#settle(parsed.result.message_id, parsed.result);
    else this.#refuse(parsed.messageId, parsed.reason, body);
  }

  /**
   * A result that cannot be given to a caller: the call it names (when one
   * waits for it) fails with `ProtocolError`; anything else is logged and dropped.
   */
  #refuse(messageId: string | null, reason: string, body: string): void {
    const call = messageId === null ? undefined : this.#take(messageId);
    if (call === undefined || messageId === null) {
      this.#logger.warn("ignored a reply that is not a prpc result", {
        reason,
        body: body.slice(0, 200),
      });
      return;
    }
    call.reject(
      new ProtocolError(`Cannot read the result of ${call.funcName}(): ${reason}`, {
        funcName: call.funcName,
        messageId,
      }),
    );
  }

  /** The inbox may have missed results: read the stored result of every call still waiting. */
  #readMissedResults(): void {
    for (const messageId of this.#pending.keys()) {
      this.#broker.readResult(this.#queue, "native", messageId).then(
        (body) => {
          if (body !== null) this.#onReply(body);
        },
        (err) =>
          this.#logger.debug("cannot read a stored result after a reconnect", {
            messageId,
            error: errorText(err),
          }),
      );
    }
  }

  /** Ends a call with the result stored for it. */
  #storedResult(messageId: string, body: string): void {
    const parsed = parseResult(body, this.#maxDepth);
    // The key names the call, whatever the stored text says.
    if (parsed.ok) this.#settle(messageId, parsed.result);
    else this.#refuse(messageId, `${parsed.reason}: ${body.slice(0, 200)}`, body);
  }

  /** Ends a waiting call with its result. */
  #settle(messageId: string, result: ResultMessage): void {
    const call = this.#take(messageId);
    if (call === undefined) {
      this.#logger.debug("ignored a result nobody waits for", { messageId });
      return;
    }
    if (result.exception_info === null) {
      call.resolve(result.result);
    } else {
      call.reject(
        fromWireError(result.error, result.exception_info, { funcName: call.funcName, messageId }),
      );
    }
  }

  /** Removes a waiting call and stops its timers. */
  #take(messageId: string): PendingCall | undefined {
    const call = this.#pending.get(messageId);
    if (call === undefined) return undefined;
    this.#pending.delete(messageId);
    call.timeout.cancel();
    this.#stored?.forget(messageId);
    call.cleanup?.();
    return call;
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
    for (let i = 0; i < args.length; i++) assertEncodable(args[i], `args[${i}]`, this.#maxDepth);
    for (const key of Object.keys(kwargs)) {
      assertEncodable(kwargs[key], `kwargs.${key}`, this.#maxDepth);
    }
    const request: RequestMessage = {
      func_name: funcName,
      func_args: args as unknown[],
      func_kwargs: kwargs as Record<string, unknown>,
      message_id: messageId,
      date_create_message: isoTimestamp(),
    };
    if (this.#inbox !== undefined) {
      // Native calls: the server pushes the result to the inbox and skips calls past their deadline.
      request.reply_to = this.#inbox.address;
      request.deadline_ms = Date.now() + timeoutMs;
      request.prpc = PROTOCOL_VERSION;
    }
    let body = JSON.stringify(request);
    // A PRPC server on the queue reads native requests with jsonpickle: as a PRPCMessage, it runs
    // them (a prpc server sees `prpc` and reads them as plain JSON).
    if (this.#inbox !== undefined && this.#prpcReadable) {
      // There, a `py/` key in an argument is a jsonpickle tag, and some tags run code.
      if (body.includes('"py/')) {
        const tagged = taggedKeyPath(args, kwargs);
        if (tagged !== undefined) {
          throw new SerializationError(
            `${funcName}() argument ${tagged} has a key that starts with "py/": a PRPC server on ` +
              `the queue would read it as a jsonpickle tag, and some tags run code there`,
            ids,
          );
        }
      }
      body = PRPC_CLASS_FIELD + body.slice(1);
    }
    const oversize = sizeOverLimit(body, this.#maxMessageBytes);
    if (oversize !== null) {
      throw new PayloadTooLargeError(
        `request to "${funcName}" is ${oversize} bytes, over the limit of ${this.#maxMessageBytes} bytes`,
        { ...ids, size: oversize, limit: this.#maxMessageBytes },
      );
    }
    return new Promise((resolve, reject) => {
      const fail = (error: Error) => this.#take(messageId)?.reject(error);
      const timeout = timeouts.start(timeoutMs, () => {
        fail(
          new CallTimeoutError(`no result from "${funcName}" within ${timeoutMs} ms`, {
            ...ids,
            timeoutMs,
          }),
        );
      });
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
      this.#pending.set(messageId, { funcName, resolve, reject, timeout, cleanup });
      const sent = this.#broker.publish(this.#queue, this.#protocol, body);
      const stored = this.#stored;
      if (stored !== undefined) sent.then(() => stored.watch(messageId), () => {});
      this.#unpushed?.kick();
      sent.catch((err) => {
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
   * Closes the inbox and the broker connection, then rejects the calls still
   * waiting with a `BrokerError` (so they are settled when `close()` resolves).
   * Safe to call twice.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#stored?.close();
    this.#unpushed?.close();
    try {
      try {
        await this.#inbox?.close();
      } finally {
        await this.#broker.close();
      }
    } finally {
      for (const messageId of this.#pending.keys()) {
        const call = this.#take(messageId);
        call?.reject(
          new BrokerError(`the client was closed while "${call.funcName}" was running`, {
            funcName: call.funcName,
            messageId,
          }),
        );
      }
    }
  }
}

/**
 * The path of the first object key starting with `py/` in the arguments
 * (e.g. `args[0].items[2]["py/reduce"]`), or `undefined`. Walks without
 * recursion; the arguments were checked for depth and cycles before.
 */
function taggedKeyPath(args: unknown[], kwargs: Record<string, unknown>): string | undefined {
  const stack: [unknown, string][] = [[args, "args"], [kwargs, "kwargs"]];
  while (stack.length > 0) {
    const [value, path] = stack.pop()!;
    if (typeof value !== "object" || value === null) continue;
    if (Array.isArray(value)) {
      value.forEach((item, i) => stack.push([item, `${path}[${i}]`]));
      continue;
    }
    const plain = typeof (value as { toJSON?: unknown }).toJSON === "function"
      ? JSON.parse(JSON.stringify(value))
      : value;
    if (typeof plain !== "object" || plain === null) continue;
    if (Array.isArray(plain)) {
      stack.push([plain, path]);
      continue;
    }
    for (const [key, item] of Object.entries(plain as Record<string, unknown>)) {
      if (key.startsWith("py/")) return `${path}[${JSON.stringify(key)}]`;
      stack.push([item, path === "kwargs" ? `kwargs.${key}` : `${path}.${key}`]);
    }
  }
  return undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
