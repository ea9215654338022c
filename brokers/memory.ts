/**
 * The embedded in-memory broker: the default, for a single process (demos,
 * tests, small apps). It keeps the semantics of the network brokers:
 * at-least-once delivery with redelivery of unsettled messages, results kept
 * for a TTL, several servers sharing one queue, the raw queue and the
 * dead-letter queue. A native result handed to a live inbox is not kept as
 * well: in one process that hand-over cannot be lost, so nothing would read it.
 *
 * URL: `memory://[hub][?result_ttl_sec=600&max_message_bytes=16777216&dead_letter_limit=10000]`.
 * Brokers on the same hub name (default: the unnamed hub) see the same queues;
 * different hubs are fully isolated from each other. Settings take effect when
 * a hub is created (its first connection); a hub without connections, pending
 * messages or dead letters is dropped.
 *
 * @example Server and client on the memory broker
 * ```ts
 * import assert from "node:assert/strict";
 * import { AppServer, Client } from "@prpc/prpc";
 * const app = new AppServer({ broker: "memory", queue: "doc_memory" });
 * app.register("add", (a: number, b: number) => a + b);
 * await app.start();
 * const client = await Client.connect({ broker: "memory", queue: "doc_memory" });
 * assert.equal(await client.call("add", [1, 2]), 3);
 * await client.close();
 * await app.stop();
 * ```
 *
 * @module
 */

import { BrokerError, ConfigError } from "../protocol/errors.ts";
import { isoTimestamp, type QueueKind } from "../protocol/envelope.ts";
import {
  assertWithinLimit,
  type Broker,
  type BrokerConnectOptions,
  type ConsumeOptions,
  type DeadLetter,
  deadLetterQueueName,
  type Delivery,
  feedbackName,
  type Inbox,
  type Reply,
  type Subscription,
} from "./types.ts";

/** Settings of a memory hub, read from the URL's query. */
interface HubSettings {
  resultTtlMs: number;
  maxMessageBytes: number;
  deadLetterLimit: number;
}

const DEFAULT_SETTINGS: HubSettings = {
  resultTtlMs: 600_000,
  maxMessageBytes: 16 * 1024 * 1024,
  deadLetterLimit: 10_000,
};

/** A message waiting in, or taken from, a queue. */
interface Entry {
  readonly kind: QueueKind;
  readonly body: string;
  deliveries: number;
}

/** A first-in first-out list with O(1) take from the front and put back at the front. */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  unshift(item: T): void {
    if (this.#head > 0) this.#items[--this.#head] = item;
    else this.#items.unshift(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

/** One consumer: a server's subscription to both queues of a queue name. */
class MemoryConsumer implements Subscription {
  readonly unsettled = new Set<Entry>();
  open = true;

  constructor(
    readonly queue: MemoryQueue,
    readonly prefetch: number,
    readonly handler: (delivery: Delivery) => void,
  ) {}

  get hasCapacity(): boolean {
    return this.open && this.unsettled.size < this.prefetch;
  }

  close(): Promise<void> {
    if (this.open) {
      this.open = false;
      this.queue.consumers.splice(this.queue.consumers.indexOf(this), 1);
    }
    return Promise.resolve();
  }

  /** Puts every unsettled entry back at the front of its queue (connection gone). */
  abandon(): void {
    this.open = false;
    const index = this.queue.consumers.indexOf(this);
    if (index >= 0) this.queue.consumers.splice(index, 1);
    const entries = [...this.unsettled].reverse();
    this.unsettled.clear();
    for (const entry of entries) this.queue.ready(entry.kind).unshift(entry);
    this.queue.scheduleDispatch();
  }
}

/** The native and raw queue of one queue name, with its consumers. */
class MemoryQueue {
  readonly native = new Fifo<Entry>();
  readonly raw = new Fifo<Entry>();
  readonly consumers: MemoryConsumer[] = [];
  #next = 0;
  #scheduled = false;

  constructor(readonly hub: MemoryHub, readonly name: string) {}

  ready(kind: QueueKind): Fifo<Entry> {
    return kind === "native" ? this.native : this.raw;
  }

  get pending(): number {
    return this.native.size + this.raw.size;
  }

  scheduleDispatch(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#dispatch();
    });
  }

  #dispatch(): void {
    // Alternate between the queues so raw callers are not starved by native ones.
    let preferRaw = false;
    while (this.pending > 0) {
      const consumer = this.#pickConsumer();
      if (consumer === undefined) return;
      const first = preferRaw ? this.raw : this.native;
      const entry = first.shift() ?? (preferRaw ? this.native : this.raw).shift();
      if (entry === undefined) return;
      preferRaw = !preferRaw;
      entry.deliveries++;
      consumer.unsettled.add(entry);
      consumer.handler(new MemoryDelivery(consumer, entry));
    }
  }

  /** Round-robin over consumers with free capacity. */
  #pickConsumer(): MemoryConsumer | undefined {
    const count = this.consumers.length;
    for (let i = 0; i < count; i++) {
      const consumer = this.consumers[(this.#next + i) % count];
      if (consumer?.hasCapacity) {
        this.#next = (this.#next + i + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }
}

/** A delivery of the memory broker: settling it changes the hub's state. */
class MemoryDelivery implements Delivery {
  readonly kind: QueueKind;
  readonly body: string;
  readonly attempt: number;

  constructor(readonly consumer: MemoryConsumer, readonly entry: Entry) {
    this.kind = entry.kind;
    this.body = entry.body;
    this.attempt = entry.deliveries;
  }

  #settle(): void {
    // A stale delivery (handed back, then delivered again) must not settle the newer one.
    const current = this.entry.deliveries === this.attempt;
    if (!current || !this.consumer.unsettled.delete(this.entry)) {
      throw new BrokerError(
        "Cannot settle a delivery that was already settled or handed back when its connection closed",
      );
    }
    this.consumer.queue.scheduleDispatch();
  }

  complete(reply: Reply): Promise<void> {
    try {
      this.#settle();
    } catch (err) {
      return Promise.reject(err);
    }
    const queue = this.consumer.queue;
    queue.hub.storeResult(queue.name, this.kind, reply);
    return Promise.resolve();
  }

  deadLetter(reason: string, reply?: Reply): Promise<void> {
    try {
      this.#settle();
    } catch (err) {
      return Promise.reject(err);
    }
    const queue = this.consumer.queue;
    if (reply !== undefined) queue.hub.storeResult(queue.name, this.kind, reply);
    queue.hub.addDeadLetter(queue.name, {
      kind: this.kind,
      body: this.body,
      reason,
      date: isoTimestamp(),
    });
    return Promise.resolve();
  }

  release(): Promise<void> {
    try {
      this.#settle();
    } catch (err) {
      return Promise.reject(err);
    }
    this.consumer.queue.ready(this.kind).unshift(this.entry);
    return Promise.resolve();
  }
}

interface StoredResult {
  body: string;
  expiresAt: number;
}

/** The shared state behind every memory broker of one hub name. */
class MemoryHub {
  readonly queues = new Map<string, MemoryQueue>();
  readonly inboxes = new Map<string, (body: string) => void>();
  readonly results = new Map<string, StoredResult>();
  readonly deadLetters = new Map<string, DeadLetter[]>();
  readonly brokers = new Set<MemoryBroker>();
  #nextSweep = 0;

  constructor(readonly name: string, readonly settings: HubSettings) {}

  queue(name: string): MemoryQueue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = new MemoryQueue(this, name);
      this.queues.set(name, queue);
    }
    return queue;
  }

  storeResult(queue: string, kind: QueueKind, reply: Reply): void {
    const deliver = reply.replyTo === undefined ? undefined : this.inboxes.get(reply.replyTo);
    if (deliver !== undefined) {
      const body = reply.body;
      queueMicrotask(() => deliver(body));
      // Inside one process the hand-over to a live inbox cannot be lost, and settling is
      // atomic, so no redelivery will ever look for this result: keep only raw results.
      if (kind === "native") return;
    }
    const now = Date.now();
    const key = `${feedbackName(queue, kind)}_${reply.messageId}`;
    // Re-inserting keeps the map in expiry order, so sweeping stops at the first live entry.
    this.results.delete(key);
    this.results.set(key, { body: reply.body, expiresAt: now + this.settings.resultTtlMs });
    if (now >= this.#nextSweep) this.#sweep(now);
  }

  readResult(queue: string, kind: QueueKind, messageId: string): string | null {
    const key = `${feedbackName(queue, kind)}_${messageId}`;
    const stored = this.results.get(key);
    if (stored === undefined) return null;
    if (stored.expiresAt <= Date.now()) {
      this.results.delete(key);
      return null;
    }
    return stored.body;
  }

  #sweep(now: number): void {
    for (const [key, stored] of this.results) {
      if (stored.expiresAt > now) break;
      this.results.delete(key);
    }
    this.#nextSweep = now + Math.min(1_000, this.settings.resultTtlMs);
  }

  addDeadLetter(queue: string, entry: DeadLetter): void {
    const name = deadLetterQueueName(queue);
    let list = this.deadLetters.get(name);
    if (list === undefined) {
      list = [];
      this.deadLetters.set(name, list);
    }
    list.push(entry);
    if (list.length > this.settings.deadLetterLimit) list.shift();
  }

  /** True when nothing in the hub is worth keeping once no broker is attached. */
  get idle(): boolean {
    if (this.brokers.size > 0) return false;
    for (const queue of this.queues.values()) {
      if (queue.pending > 0) return false;
    }
    return this.deadLetters.size === 0;
  }
}

const hubs = new Map<string, MemoryHub>();

function parseMemoryUrl(url: string | undefined): { hub: string; settings: HubSettings } {
  if (url === undefined || url === "" || url === "memory://") {
    return { hub: "", settings: DEFAULT_SETTINGS };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(
      `Cannot use ${JSON.stringify(url)} as a memory broker URL: expected memory://[hub][?options]`,
    );
  }
  if (parsed.protocol !== "memory:") {
    throw new ConfigError(
      `Cannot use ${JSON.stringify(url)} as a memory broker URL: the scheme must be memory:`,
    );
  }
  const settings = { ...DEFAULT_SETTINGS };
  const names: Record<string, keyof HubSettings> = {
    result_ttl_sec: "resultTtlMs",
    max_message_bytes: "maxMessageBytes",
    dead_letter_limit: "deadLetterLimit",
  };
  for (const [param, value] of parsed.searchParams) {
    const key = names[param];
    const number = Number(value);
    if (key === undefined) {
      throw new ConfigError(
        `Cannot use memory broker URL parameter ${param}: known parameters are ${
          Object.keys(names).join(", ")
        }`,
      );
    }
    if (!/^\d+$/.test(value) || number < 1) {
      throw new ConfigError(
        `Cannot read memory broker URL parameter ${param} as a whole number >= 1: current value is ${
          JSON.stringify(value)
        }`,
      );
    }
    settings[key] = key === "resultTtlMs" ? number * 1000 : number;
  }
  return { hub: decodeURIComponent(parsed.host + parsed.pathname.replace(/^\/$/, "")), settings };
}

/** A connection to a memory hub. */
class MemoryBroker implements Broker {
  readonly kind = "memory" as const;
  readonly maxMessageBytes: number;
  readonly #consumers = new Set<MemoryConsumer>();
  readonly #inboxes = new Set<string>();
  #closed = false;

  constructor(readonly hub: MemoryHub) {
    this.maxMessageBytes = hub.settings.maxMessageBytes;
  }

  #closedError(): Promise<never> | undefined {
    if (!this.#closed) return undefined;
    return Promise.reject(new BrokerError("Cannot use a memory broker connection after close()"));
  }

  consume(
    queue: string,
    handler: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<Subscription> {
    const closed = this.#closedError();
    if (closed) return closed;
    const memoryQueue = this.hub.queue(queue);
    const consumer = new MemoryConsumer(memoryQueue, options.prefetch, handler);
    memoryQueue.consumers.push(consumer);
    this.#consumers.add(consumer);
    memoryQueue.scheduleDispatch();
    return Promise.resolve(consumer);
  }

  publish(queue: string, kind: QueueKind, body: string): Promise<void> {
    const closed = this.#closedError();
    if (closed) return closed;
    try {
      assertWithinLimit(body, this.maxMessageBytes, "memory");
    } catch (err) {
      return Promise.reject(err);
    }
    const memoryQueue = this.hub.queue(queue);
    memoryQueue.ready(kind).push({ kind, body, deliveries: 0 });
    memoryQueue.scheduleDispatch();
    return Promise.resolve();
  }

  openInbox(onReply: (body: string) => void): Promise<Inbox> {
    const closed = this.#closedError();
    if (closed) return closed;
    const address = `memory-inbox-${crypto.randomUUID()}`;
    this.hub.inboxes.set(address, onReply);
    this.#inboxes.add(address);
    return Promise.resolve({
      address,
      close: () => {
        this.hub.inboxes.delete(address);
        this.#inboxes.delete(address);
        return Promise.resolve();
      },
    });
  }

  readResult(queue: string, kind: QueueKind, messageId: string): Promise<string | null> {
    const closed = this.#closedError();
    if (closed) return closed;
    return Promise.resolve(this.hub.readResult(queue, kind, messageId));
  }

  readDeadLetters(queue: string, limit: number): Promise<DeadLetter[]> {
    const closed = this.#closedError();
    if (closed) return closed;
    const list = this.hub.deadLetters.get(deadLetterQueueName(queue)) ?? [];
    return Promise.resolve(list.slice(0, limit).map((entry) => ({ ...entry })));
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const consumer of this.#consumers) consumer.abandon();
    this.#consumers.clear();
    for (const address of this.#inboxes) this.hub.inboxes.delete(address);
    this.#inboxes.clear();
    this.hub.brokers.delete(this);
    if (this.hub.idle) hubs.delete(this.hub.name);
    return Promise.resolve();
  }
}

/**
 * Connects to a memory hub, creating it on first use.
 *
 * @param options `url` names the hub and its settings (see the module docs).
 * @returns The broker connection.
 * @throws {ConfigError} When the URL is not a memory URL or a parameter is invalid.
 */
export function connect(options: BrokerConnectOptions): Promise<Broker> {
  let parsed: { hub: string; settings: HubSettings };
  try {
    parsed = parseMemoryUrl(options.url);
  } catch (err) {
    return Promise.reject(err);
  }
  const { hub: name, settings } = parsed;
  let hub = hubs.get(name);
  if (hub === undefined) {
    hub = new MemoryHub(name, settings);
    hubs.set(name, hub);
  }
  const broker = new MemoryBroker(hub);
  hub.brokers.add(broker);
  return Promise.resolve(broker);
}
