/**
 * `AppServer`: registers plain functions and serves calls to them from a broker queue.
 *
 * @module
 */

import { connectBroker } from "../brokers/load.ts";
import type { BrokerSettings } from "../brokers/types.ts";
import type { Broker, Delivery, Subscription } from "../brokers/types.ts";
import { ChurnSet } from "../protocol/churn.ts";
import {
  boolSetting,
  type BrokerKind,
  brokerKindSetting,
  brokerUrlSetting,
  intSetting,
  maxDepthSetting,
  maxMessageBytesSetting,
  queueNameSetting,
  readEnv,
} from "../protocol/env.ts";
import { ConfigError, PrpcError } from "../protocol/errors.ts";
import { WorkerPool } from "../workers/pool.ts";
import { WORKER_TYPES, type WorkerType } from "../workers/types.ts";
import { consoleLogger, type Logger } from "../protocol/logger.ts";
import { MessageHandler } from "./message_handler.ts";
import { type RegisterOptions, Registry } from "./registry.ts";
import { ReplyBuilder } from "./replies.ts";
import { HeldMessage } from "./settlement.ts";
import { checkWorkerFunctions } from "./worker_checks.ts";

/** Options of {@linkcode AppServer}. Every option has a default; most can come from `PRPC_*` variables. */
export interface AppServerOptions {
  /** Which broker. Default: `PRPC_TYPE_BROKER`, else `"memory"`. */
  broker?: BrokerKind | undefined;
  /** Broker URL. Default: `PRPC_URL_BROKER`, else the broker's own default. */
  url?: string | undefined;
  /** Queue name. Default: `PRPC_QUEUE_NAME`, else `"task_prpc"`. */
  queue?: string | undefined;
  /** Worker type of functions registered without one. Default `"async"`. */
  defaultWorker?: WorkerType | undefined;
  /**
   * Messages this server executes at once, and the most `thread` and `process`
   * workers alive at once, all kinds together. Default: `PRPC_MAX_WORKERS`, else 4.
   */
  maxWorkers?: number | undefined;
  /**
   * Time limit for one call in milliseconds; `null` for none. A call over the
   * limit ends with `WorkerTimeoutError`; a `thread` or `process` worker still
   * running it is ended and replaced. Default 100 000.
   */
  workerTimeoutMs?: number | null | undefined;
  /**
   * Deliveries of one message before it is treated as poison: set aside on
   * `prpc_dead_{queue}` and answered with an error. Default: `PRPC_MAX_DELIVERIES`, else 5.
   */
  maxDeliveries?: number | undefined;
  /**
   * Largest request or result in UTF-8 bytes. Default: `PRPC_MAX_MESSAGE_BYTES`,
   * else the broker's limit; never more than the broker's limit.
   */
  maxMessageBytes?: number | undefined;
  /**
   * How deeply an argument or a result may nest arrays and objects (the
   * outermost level is 1). A request nested deeper is refused with a
   * `ProtocolError` result (or set aside when it has no readable
   * `message_id`) before anything walks it; a result nested deeper fails with
   * `SerializationError`. Default: `PRPC_MAX_DEPTH`, else 1 000; at most 2 000.
   */
  maxDepth?: number | undefined;
  /**
   * Send stack traces of errors to callers. Default: `true`, unless
   * `PRPC_REDACT_STACKS` is true.
   */
  exposeStacks?: boolean | undefined;
  /** Name of this server instance. Default: `PRPC_INSTANCE_NAME`, else a fresh UUID per start. */
  instanceName?: string | undefined;
  /**
   * How long `stop()` waits for running calls before handing their messages
   * back to the broker for another server. Default 10 000 ms.
   */
  stopGraceMs?: number | undefined;
  /**
   * Stop gracefully on SIGINT and SIGTERM, then exit with 130 or 143.
   * Default `true`.
   */
  handleSignals?: boolean | undefined;
  /** Where to write what happens. Default: the console, from level `info`. */
  logger?: Logger | undefined;
  /**
   * Settings of the broker module (e.g. Redis heartbeat and recovery
   * intervals); each broker module documents its keys.
   */
  brokerSettings?: BrokerSettings | undefined;
  /**
   * Set when the server runs with Deno's `--unstable-worker-options` (or
   * `"unstable": ["worker-options"]` in deno.json), which per-function
   * `permissions` of `thread` workers need. Deno cannot tell a program whether
   * the flag is on, and ends the process when it is missing, so the server
   * refuses such functions at `start()` unless this is set. Default `false`.
   */
  unstableWorkerOptions?: boolean | undefined;
}

/** Options of {@linkcode AppServer.stop}. */
export interface StopOptions {
  /** Overrides the server's `stopGraceMs` for this stop. */
  graceMs?: number | undefined;
}

type ServerState = "idle" | "starting" | "serving" | "stopping";

const HANDLED_SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** How long stop() waits for results that were already being sent when it began. */
const SETTLE_WAIT_MS = 2_000;

/**
 * A prpc server: register functions, then `start()` to serve calls from the
 * queue `prpc_{queue}` (and `prpc_raw_{queue}` for other languages).
 *
 * @example
 * ```ts
 * import { AppServer } from "@prpc/prpc";
 *
 * export function summ(a: number, b: number, z = 0.5): number {
 *   return a + b + z;
 * }
 *
 * const app = new AppServer({ broker: "memory", queue: "doc_server", handleSignals: false });
 * app.register(summ);
 * app.register("hello_world", () => "hello_world");
 * await app.start();
 * await app.stop();
 * ```
 */
export class AppServer {
  readonly #registry = new Registry();
  readonly #brokerKind: BrokerKind;
  readonly #url: string | undefined;
  readonly #queue: string;
  readonly #defaultWorker: WorkerType;
  readonly #maxWorkers: number;
  readonly #workerTimeoutMs: number | null;
  readonly #maxDeliveries: number;
  readonly #maxMessageBytesFor: (brokerLimit: number) => number;
  readonly #maxDepth: number;
  readonly #exposeStacks: boolean;
  readonly #instanceNameOption: string | undefined;
  readonly #brokerSettings: BrokerSettings | undefined;
  readonly #unstableWorkerOptions: boolean;
  #pool: WorkerPool | undefined;
  readonly #stopGraceMs: number;
  readonly #handleSignals: boolean;
  readonly #logger: Logger;

  #state: ServerState = "idle";
  #broker: Broker | undefined;
  #subscription: Subscription | undefined;
  #handler: MessageHandler | undefined;
  #instanceName = "";
  readonly #inFlight = new ChurnSet<HeldMessage>();
  #drained: (() => void) | undefined;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  #signalHandlers: (() => void)[] = [];
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  /**
   * Creates a server. Settings are validated here, so a bad option or
   * variable fails at once with a message naming it.
   *
   * @param options Broker, queue, workers and limits.
   * @throws {ConfigError} When a setting is invalid.
   */
  constructor(options: AppServerOptions = {}) {
    this.#brokerKind = brokerKindSetting(options.broker);
    this.#url = brokerUrlSetting(options.url);
    this.#queue = queueNameSetting(options.queue);
    const defaultWorker = options.defaultWorker ?? "async";
    if (!WORKER_TYPES.includes(defaultWorker)) {
      throw new ConfigError(
        `Cannot use option defaultWorker as a worker type: current value is ${
          JSON.stringify(defaultWorker)
        }; expected one of ${WORKER_TYPES.join(", ")}`,
      );
    }
    this.#defaultWorker = defaultWorker;
    this.#maxWorkers = intSetting({
      value: options.maxWorkers,
      option: "maxWorkers",
      env: "PRPC_MAX_WORKERS",
      fallback: 4,
      min: 1,
    });
    const timeout = options.workerTimeoutMs === undefined ? 100_000 : options.workerTimeoutMs;
    if (timeout !== null && (!Number.isSafeInteger(timeout) || timeout < 1)) {
      throw new ConfigError(
        `Cannot use option workerTimeoutMs as a whole number >= 1 or null: current value is ${timeout}`,
      );
    }
    this.#workerTimeoutMs = timeout;
    this.#maxDeliveries = intSetting({
      value: options.maxDeliveries,
      option: "maxDeliveries",
      env: "PRPC_MAX_DELIVERIES",
      fallback: 5,
      min: 1,
    });
    this.#maxMessageBytesFor = maxMessageBytesSetting(options.maxMessageBytes);
    this.#maxDepth = maxDepthSetting(options.maxDepth);
    this.#exposeStacks = options.exposeStacks ??
      !boolSetting(undefined, "PRPC_REDACT_STACKS", false);
    this.#instanceNameOption = options.instanceName ?? readEnv("PRPC_INSTANCE_NAME");
    this.#stopGraceMs = intSetting({
      value: options.stopGraceMs,
      option: "stopGraceMs",
      env: "PRPC_STOP_GRACE_MS",
      fallback: 10_000,
      min: 0,
    });
    this.#handleSignals = options.handleSignals ?? true;
    this.#logger = options.logger ?? consoleLogger();
    this.#brokerSettings = options.brokerSettings;
    this.#unstableWorkerOptions = options.unstableWorkerOptions ?? false;
  }

  /** The queue name this server serves. */
  get queue(): string {
    return this.#queue;
  }

  /** Names of the registered functions. */
  get functions(): string[] {
    return this.#registry.names;
  }

  #assertIdle(what: string): void {
    if (this.#state !== "idle") {
      throw new ConfigError(
        `Cannot ${what} on a server that is ${this.#state}: register functions before start()`,
      );
    }
  }

  /** Name of this instance while serving (from the option, `PRPC_INSTANCE_NAME`, or a UUID). */
  get instanceName(): string {
    return this.#instanceName;
  }

  /** Whether the server is taking messages. */
  get serving(): boolean {
    return this.#state === "serving";
  }

  /**
   * Registers a function under its own name (`fn.name`).
   *
   * @param fn The function; it takes and returns JSON values (or promises of them).
   * @param options Worker type and parameter names.
   * @returns This server, for chaining.
   * @throws {TypeError} When the function has no name.
   * @throws {ConfigError} On a duplicate name or an unsupported worker type.
   */
  register(fn: (...args: never[]) => unknown, options?: RegisterOptions): this;
  /**
   * Registers a function under an explicit name.
   *
   * @param name The name callers use.
   * @param fn The function.
   * @param options Worker type and parameter names.
   * @returns This server, for chaining.
   */
  register(name: string, fn: (...args: never[]) => unknown, options?: RegisterOptions): this;
  register(
    nameOrFn: string | ((...args: never[]) => unknown),
    fnOrOptions?: ((...args: never[]) => unknown) | RegisterOptions,
    maybeOptions?: RegisterOptions,
  ): this {
    this.#assertIdle("register");
    if (typeof nameOrFn === "string") {
      this.#registry.add(nameOrFn, fnOrOptions, maybeOptions ?? {}, this.#defaultWorker);
    } else {
      const options = (fnOrOptions ?? {}) as RegisterOptions;
      this.#registry.add(nameOrFn?.name, nameOrFn, options, this.#defaultWorker);
    }
    return this;
  }

  /**
   * Registers every exported function of a module under its export name (the
   * default export and classes excepted). With a `thread` or `process` worker,
   * the workers import the same module and call the same exports.
   *
   * @param module URL of the module, e.g. `new URL("./funcs.ts", import.meta.url)`.
   * @param options Worker type, permissions and V8 flags for all of them.
   * @returns This server, for chaining.
   * @throws {ConfigError} When the module does not load, exports no function, or
   *   an export's name is already taken.
   *
   * @example Every export of a module, in a pool of Web Workers
   * ```ts ignore
   * import { AppServer } from "@prpc/prpc";
   *
   * const app = new AppServer({ queue: "math" });
   * await app.registerModule(new URL("./math.ts", import.meta.url), { worker: "thread" });
   * ```
   */
  async registerModule(
    module: string | URL,
    options: Omit<RegisterOptions, "module" | "params"> = {},
  ): Promise<this> {
    this.#assertIdle("registerModule");
    let href: string;
    let exports: Record<string, unknown>;
    try {
      href = new URL(module).href;
    } catch (err) {
      throw new ConfigError(
        `Cannot register the module ${JSON.stringify(String(module))}: expected an absolute URL ` +
          `such as new URL("./funcs.ts", import.meta.url)`,
        { cause: err },
      );
    }
    if (href === Deno.mainModule) {
      // Importing the main module while it evaluates would wait for itself.
      throw new ConfigError(
        `Cannot register the main module ${href} with registerModule: register its functions ` +
          `with app.register(fn, { worker, module: import.meta.url }), or move them to a module of their own`,
      );
    }
    try {
      exports = await import(href);
    } catch (err) {
      throw new ConfigError(
        `Cannot register the module ${JSON.stringify(String(module))}: ${
          err instanceof Error ? err.message : String(err)
        }`,
        { cause: err },
      );
    }
    const names = Object.keys(exports).filter((name) =>
      name !== "default" && typeof exports[name] === "function" &&
      !/^class\b/.test(Function.prototype.toString.call(exports[name]))
    );
    if (names.length === 0) {
      throw new ConfigError(`Cannot register the module ${href}: it exports no function`);
    }
    const worker = options.worker ?? this.#defaultWorker;
    this.#registry.addAll(
      names.map((name) => ({ name, fn: exports[name], exportName: name })),
      worker === "async" ? options : { ...options, module: href },
      this.#defaultWorker,
    );
    return this;
  }

  /**
   * Connects to the broker and starts serving. Resolves once serving; the
   * server then keeps the process alive until {@linkcode AppServer.stop},
   * SIGINT or SIGTERM.
   *
   * @throws {ConfigError} When the broker settings are invalid.
   * @throws {PrpcError} When the server is already started.
   */
  start(): Promise<void> {
    if (typeof Deno.mainModule !== "string" || Deno.mainModule.startsWith("data:")) {
      // In a thread or process worker, which imports the server's module to find its functions.
      return Promise.reject(
        new ConfigError(
          "Cannot start a server inside a prpc worker: the worker imported the module that " +
            "starts it. Put start() behind if (import.meta.main)",
        ),
      );
    }
    if (this.#state !== "idle") {
      return Promise.reject(new ConfigError(`Cannot start a server that is ${this.#state}`));
    }
    this.#state = "starting";
    this.#starting = this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.#instanceName = this.#instanceNameOption ?? crypto.randomUUID();
    try {
      await checkWorkerFunctions(this.#registry.workerFunctions, this.#unstableWorkerOptions);
      const pool = new WorkerPool(this.#maxWorkers, this.#logger);
      this.#pool = pool;
      const broker = await connectBroker(this.#brokerKind, {
        url: this.#url,
        instanceName: this.#instanceName,
        settings: this.#brokerSettings,
        logger: this.#logger,
      });
      this.#broker = broker;
      this.#handler = new MessageHandler({
        queue: this.#queue,
        registry: this.#registry,
        pool,
        broker,
        replies: new ReplyBuilder({
          maxMessageBytes: this.#maxMessageBytesFor(broker.maxMessageBytes),
          maxDepth: this.#maxDepth,
          exposeStacks: this.#exposeStacks,
        }),
        maxDeliveries: this.#maxDeliveries,
        workerTimeoutMs: this.#workerTimeoutMs,
        logger: this.#logger,
      });
      this.#subscription = await this.#broker.consume(
        this.#queue,
        (delivery) => this.#accept(delivery),
        { prefetch: this.#maxWorkers },
      );
    } catch (err) {
      this.#state = "idle";
      await this.#broker?.close().catch(() => {});
      this.#broker = undefined;
      this.#pool = undefined;
      this.#handler = undefined;
      throw err;
    }
    this.#state = "serving";
    this.#keepAlive = setInterval(() => {}, 1 << 30);
    if (this.#handleSignals) this.#listenForSignals();
    this.#logger.info("serving", {
      queue: this.#queue,
      broker: this.#brokerKind,
      instance: this.#instanceName,
      functions: this.#registry.names,
    });
  }

  /**
   * Stops taking messages, lets running calls finish within the grace period,
   * hands the messages of calls still running back to the broker (another
   * server takes them), then closes the connection. Safe to call twice.
   *
   * @param options Grace period for this stop.
   */
  stop(options: StopOptions = {}): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    if (this.#starting !== undefined) {
      // Stop right after a start that is under way (or do nothing if it fails).
      return this.#starting.then(() => this.stop(options), () => {});
    }
    if (this.#state !== "serving") return Promise.resolve();
    this.#stopping = this.#stop(options.graceMs ?? this.#stopGraceMs).finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<void> {
    this.#state = "stopping";
    this.#removeSignalListeners();
    this.#logger.info("stopping", { queue: this.#queue, running: this.#inFlight.size });
    await this.#subscription?.close().catch((err) =>
      this.#logger.error("cannot close the consumer", { error: String(err) })
    );
    if (this.#inFlight.size > 0 && graceMs > 0) {
      const drained = new Promise<void>((resolve) => (this.#drained = resolve));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([drained, grace]);
      clearTimeout(timer);
      this.#drained = undefined;
    }
    for (const running of this.#inFlight.values()) {
      // Being settled already: its result is on its way, and handing it back would race that.
      if (running.settling) continue;
      running.handedBack = true;
      running.controller.abort(
        new PrpcError("the server is stopping; the message was handed back to the broker"),
      );
      try {
        await running.release();
      } catch (err) {
        this.#logger.error("cannot hand a message back", { error: String(err) });
      }
    }
    // Results already on their way get a moment; the broker's close() hands back
    // whatever is still unsettled after that.
    const settling = this.#inFlight.values().filter((running) => running.settling);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(settling.map((running) => running.done)),
      new Promise((resolve) => timer = setTimeout(resolve, SETTLE_WAIT_MS)),
    ]);
    clearTimeout(timer);
    this.#inFlight.clear();
    await this.#pool?.close();
    this.#pool = undefined;
    try {
      await this.#broker?.close();
    } finally {
      this.#broker = undefined;
      this.#subscription = undefined;
      this.#handler = undefined;
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
      this.#state = "idle";
      this.#logger.info("stopped", { queue: this.#queue });
    }
  }

  #listenForSignals(): void {
    for (const signal of HANDLED_SIGNALS) {
      const handler = () => {
        this.#logger.info(`${signal} received`, { queue: this.#queue });
        this.stop().finally(() => Deno.exit(signal === "SIGINT" ? 130 : 143));
      };
      try {
        Deno.addSignalListener(signal, handler);
        this.#signalHandlers.push(() => Deno.removeSignalListener(signal, handler));
      } catch {
        // Not every platform has every signal (Windows has no SIGTERM).
      }
    }
  }

  #removeSignalListeners(): void {
    for (const remove of this.#signalHandlers) remove();
    this.#signalHandlers = [];
  }

  /**
   * Takes a delivery from the broker. Never throws: whatever its handling
   * throws before it is settled ends in an error result or a dead letter
   * (`settlement.ts`), and its place in the server is given back.
   */
  #accept(delivery: Delivery): void {
    const handler = this.#handler;
    if (handler === undefined) {
      // A broker that hands over a message after the server stopped: give it back.
      this.#handBack(delivery);
      return;
    }
    let held: HeldMessage;
    let ended: () => void;
    try {
      held = new HeldMessage(delivery);
      const entry = this.#inFlight.add(held);
      ended = () => {
        entry.remove();
        if (this.#inFlight.size === 0) this.#drained?.();
      };
    } catch (err) {
      // Nothing holds it: give it back to the broker rather than strand it.
      this.#logger.error("cannot take a message; handing it back", { error: String(err) });
      this.#handBack(delivery);
      return;
    }
    let handled: Promise<void>;
    try {
      handled = handler.handle(held);
    } catch (err) {
      handled = Promise.reject(err);
    }
    held.done = handled.then(
      ended,
      (err: unknown) => handler.settleAfterFailure(held, err).then(ended, ended),
    );
  }

  /** Hands a delivery that nothing holds back to the broker; never throws. */
  #handBack(delivery: Delivery): void {
    try {
      delivery.release().catch((err) =>
        this.#logger.error("cannot hand a message back", { error: String(err) })
      );
    } catch (err) {
      this.#logger.error("cannot hand a message back", { error: String(err) });
    }
  }
}
