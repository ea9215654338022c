/**
 * A server's consumer of one queue name: reads both request streams in the
 * consumer group, hands deliveries to the server, keeps them claimed while they
 * run (heartbeat), takes over messages abandoned by other servers (recovery),
 * and settles deliveries with one atomic script each.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { QueueKind } from "../../protocol/envelope.ts";
import { isoTimestamp } from "../../protocol/envelope.ts";
import { BrokerError } from "../../protocol/errors.ts";
import type { Logger } from "../../server/logger.ts";
import {
  deadLetterQueueName,
  type Delivery,
  feedbackName,
  type Reply,
  requestQueueName,
  type Subscription,
} from "../types.ts";
import { BLOCK_MS, closeConnection } from "./connection.ts";
import {
  COMPLETE,
  DEAD_LETTER,
  HEARTBEAT,
  LEAVE,
  RECOVER,
  type RedisScript,
  RELEASE,
  runScript,
} from "./scripts.ts";
import type { RedisSettings } from "./settings.ts";

/** The consumer group every prpc (and PRPC) server of a queue reads in. */
export const GROUP = "prpc_group_consumers";

/** Field of a request entry that carries the message. */
const MESSAGE_FIELD = "message";
/** Field of a re-added request entry: how often it was delivered before. */
const DELIVERIES_FIELD = "prpc_deliveries";

const KINDS: readonly QueueKind[] = ["native", "raw"];

/** What a {@linkcode StreamConsumer} needs. */
export interface StreamConsumerOptions {
  /** The broker's connection for short commands. */
  commands: Redis;
  /** A connection of this consumer's own, for the blocking read. */
  blocking: Redis;
  /** The queue name. */
  queue: string;
  /** This server's consumer name in the group. */
  consumerName: string;
  /** Deliveries handed out and not settled, at most. */
  prefetch: number;
  /** Receives each delivery. */
  handler: (delivery: Delivery) => void;
  /** The broker's settings. */
  settings: RedisSettings;
  /** Where trouble is reported. */
  logger: Logger;
}

/** A request entry taken from a stream and not settled yet. */
class RedisDelivery implements Delivery {
  /** Handed to the server (not only read and waiting for a free place). */
  handedOut = false;
  /** Another consumer took the entry over (this one stalled past the recover interval). */
  lost = false;
  #settled = false;

  constructor(
    readonly consumer: StreamConsumer,
    readonly kind: QueueKind,
    readonly id: string,
    readonly body: string,
    readonly attempt: number,
  ) {}

  complete(reply: Reply): Promise<void> {
    return this.#settle(() => this.consumer.complete(this, reply));
  }

  deadLetter(reason: string, reply?: Reply): Promise<void> {
    return this.#settle(() => this.consumer.deadLetter(this, reason, reply));
  }

  release(): Promise<void> {
    return this.#settle(() => this.consumer.release(this));
  }

  #settle(work: () => Promise<void>): Promise<void> {
    if (this.#settled) {
      return Promise.reject(new BrokerError("Cannot settle a delivery that was already settled"));
    }
    this.#settled = true;
    return this.consumer.settle(this, work);
  }
}

/** The consumer of one queue name; see the module docs. */
export class StreamConsumer implements Subscription {
  readonly #commands: Redis;
  readonly #blocking: Redis;
  readonly #queue: string;
  readonly #name: string;
  readonly #prefetch: number;
  readonly #handler: (delivery: Delivery) => void;
  readonly #settings: RedisSettings;
  readonly #logger: Logger;
  readonly #streams: Record<QueueKind, string>;

  /** Read and not settled (handed out or waiting for a free place), by stream and id. */
  readonly #unsettled = new Map<string, RedisDelivery>();
  /** Read, not handed out yet, in the order to hand them out. */
  #waiting: RedisDelivery[] = [];
  #handedOut = 0;
  #pumpScheduled = false;
  /** Taking new deliveries. */
  #open = true;
  /** Closed for good: nothing may be settled any more. */
  #stopped = false;
  #reading: Promise<void> | undefined;
  #wakeReader: (() => void) | undefined;
  #tickTimer: ReturnType<typeof setTimeout> | undefined;
  #ticking: Promise<void> | undefined;
  /** Failures in a row of the reader and of the periodic work, to report only the first. */
  readonly #failures = { read: 0, tick: 0 };

  constructor(options: StreamConsumerOptions) {
    this.#commands = options.commands;
    this.#blocking = options.blocking;
    this.#queue = options.queue;
    this.#name = options.consumerName;
    this.#prefetch = options.prefetch;
    this.#handler = options.handler;
    this.#settings = options.settings;
    this.#logger = options.logger;
    this.#streams = {
      native: requestQueueName(options.queue, "native"),
      raw: requestQueueName(options.queue, "raw"),
    };
  }

  /** Creates the group where missing, takes over abandoned messages, then starts reading. */
  async start(): Promise<void> {
    await this.#ensureGroups();
    await this.#recover();
    this.#reading = this.#readLoop();
    this.#scheduleTick();
  }

  /** Stops new deliveries; entries read but not handed out yet go back to their stream at once. */
  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    this.#wakeReader?.();
    await closeConnection(this.#blocking);
    await this.#reading;
    const waiting = this.#waiting;
    this.#waiting = [];
    await Promise.all(waiting.map((delivery) => delivery.release())).catch((err) =>
      this.#logger.warn("cannot hand messages back to Redis", errorDetails(err))
    );
  }

  /**
   * Closes for good: stops new deliveries, hands back what is still unsettled,
   * and leaves the group when this consumer holds nothing any more.
   */
  async stop(): Promise<void> {
    await this.close();
    clearTimeout(this.#tickTimer);
    this.#tickTimer = undefined;
    await this.#ticking;
    if (this.#commands.status === "ready") {
      await Promise.all([...this.#unsettled.values()].map((delivery) => delivery.release()))
        .catch((err) => this.#logger.warn("cannot hand messages back to Redis", errorDetails(err)));
      for (const kind of KINDS) {
        await runScript(this.#commands, LEAVE, [this.#streams[kind]], [GROUP, this.#name])
          .catch((err) => this.#logger.debug("cannot leave the consumer group", errorDetails(err)));
      }
    } else if (this.#unsettled.size > 0) {
      this.#logger.warn(
        "closing without a Redis connection: other servers take over the messages still held " +
          "after the recover interval",
        { queue: this.#queue, held: this.#unsettled.size },
      );
    }
    this.#stopped = true;
  }

  /** Frees the delivery's place, then runs its settling script. */
  async settle(delivery: RedisDelivery, work: () => Promise<void>): Promise<void> {
    if (this.#stopped) {
      throw new BrokerError(
        "Cannot settle a delivery after its Redis connection was closed; it will be delivered again",
      );
    }
    this.#unsettled.delete(this.#key(delivery.kind, delivery.id));
    if (delivery.handedOut) this.#handedOut--;
    this.#schedulePump();
    this.#wakeReader?.();
    await work();
  }

  /** Stores the result, pushes it to the caller, acknowledges and deletes the request. */
  async complete(delivery: RedisDelivery, reply: Reply): Promise<void> {
    await this.#run(COMPLETE, [this.#streams[delivery.kind], this.#resultKey(delivery, reply)], [
      GROUP,
      delivery.id,
      reply.body,
      this.#settings.resultTtlMs,
      reply.replyTo ?? "",
    ]);
  }

  /** Moves the request to the dead-letter stream, with an optional error result for the caller. */
  async deadLetter(delivery: RedisDelivery, reason: string, reply?: Reply): Promise<void> {
    await this.#setAside(delivery.kind, delivery.id, delivery.body, reason, reply);
  }

  /** Re-adds the request at the end of its stream, carrying its delivery count. */
  async release(delivery: RedisDelivery): Promise<void> {
    // An entry read but never handed out was not delivered, as far as the server can tell.
    const deliveries = delivery.handedOut ? delivery.attempt : delivery.attempt - 1;
    await this.#run(RELEASE, [this.#streams[delivery.kind]], [
      GROUP,
      this.#name,
      delivery.id,
      delivery.body,
      deliveries,
    ]);
  }

  #key(kind: QueueKind, id: string): string {
    return `${kind} ${id}`;
  }

  #resultKey(delivery: RedisDelivery, reply: Reply): string {
    return `${feedbackName(this.#queue, delivery.kind)}_${reply.messageId}`;
  }

  async #run(code: RedisScript, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await runScript(this.#commands, code, keys, args);
    } catch (err) {
      throw new BrokerError(`Cannot ${code.name} a message in Redis: ${errorText(err)}`, {
        cause: err,
      });
    }
  }

  async #setAside(
    kind: QueueKind,
    id: string,
    body: string,
    reason: string,
    reply: Reply | undefined,
  ): Promise<void> {
    const resultKey = `${feedbackName(this.#queue, kind)}_${reply?.messageId ?? ""}`;
    await this.#run(DEAD_LETTER, [
      this.#streams[kind],
      deadLetterQueueName(this.#queue),
      resultKey,
    ], [
      GROUP,
      id,
      kind,
      body,
      reason,
      isoTimestamp(),
      this.#settings.deadLetterLimit,
      reply?.body ?? "",
      this.#settings.resultTtlMs,
      reply?.replyTo ?? "",
    ]);
  }

  async #ensureGroups(): Promise<void> {
    for (const kind of KINDS) {
      try {
        // From the start of the stream: requests sent before any server ran are kept.
        await this.#commands.xgroup("CREATE", this.#streams[kind], GROUP, "0", "MKSTREAM");
      } catch (err) {
        if (!errorText(err).startsWith("BUSYGROUP")) throw err;
      }
    }
  }

  get #free(): number {
    return this.#prefetch - this.#handedOut - this.#waiting.length;
  }

  async #readLoop(): Promise<void> {
    while (this.#open) {
      const free = this.#free;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.#wakeReader = resolve));
        this.#wakeReader = undefined;
        continue;
      }
      let reply: unknown;
      try {
        reply = await this.#blocking.call(
          "XREADGROUP",
          "GROUP",
          GROUP,
          this.#name,
          "COUNT",
          free,
          "BLOCK",
          BLOCK_MS,
          "STREAMS",
          this.#streams.native,
          this.#streams.raw,
          ">",
          ">",
        );
      } catch (err) {
        if (!this.#open) return;
        await this.#readFailed(err);
        continue;
      }
      this.#failures.read = 0;
      this.#acceptRead(reply);
    }
  }

  async #readFailed(err: unknown): Promise<void> {
    try {
      // Redis restarted empty, or someone deleted the stream: create the group again.
      if (errorText(err).startsWith("NOGROUP")) return await this.#ensureGroups();
    } catch (retryErr) {
      err = retryErr;
    }
    const failures = ++this.#failures.read;
    const log = failures === 1 ? this.#logger.warn : this.#logger.debug;
    log.call(this.#logger, "cannot read requests from Redis; retrying", {
      queue: this.#queue,
      ...errorDetails(err),
    });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.min(50 * 2 ** failures, 2_000));
      this.#wakeReader = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
    this.#wakeReader = undefined;
  }

  /** Takes the entries of an `XREADGROUP` reply, alternating native and raw ones. */
  #acceptRead(reply: unknown): void {
    if (!Array.isArray(reply)) return;
    const byKind: RedisDelivery[][] = [];
    for (const [stream, entries] of reply as [string, [string, unknown][]][]) {
      const kind: QueueKind = stream === this.#streams.native ? "native" : "raw";
      const taken: RedisDelivery[] = [];
      for (const [id, fields] of entries) {
        const delivery = this.#take(kind, id, fields, 1);
        if (delivery !== undefined) taken.push(delivery);
      }
      byKind.push(taken);
    }
    const longest = Math.max(0, ...byKind.map((list) => list.length));
    for (let i = 0; i < longest; i++) {
      for (const list of byKind) {
        const delivery = list[i];
        if (delivery !== undefined) this.#waiting.push(delivery);
      }
    }
    this.#pump();
  }

  /**
   * Turns a stream entry into a delivery. An entry without a `message` field is
   * set aside on the dead-letter stream at once: there is nothing to run or answer.
   */
  #take(
    kind: QueueKind,
    id: string,
    fields: unknown,
    deliveries: number,
  ): RedisDelivery | undefined {
    const values = fieldMap(fields);
    const body = values.get(MESSAGE_FIELD);
    if (body === undefined) {
      const reason = `stream entry ${id} has no field "${MESSAGE_FIELD}"`;
      this.#logger.warn("set aside a stream entry without a message", {
        queue: this.#queue,
        kind,
        reason,
      });
      const asJson = JSON.stringify(Object.fromEntries(values));
      this.#setAside(kind, id, asJson, reason, undefined).catch((err) =>
        this.#logger.warn("cannot set aside a stream entry; it will be tried again", {
          queue: this.#queue,
          ...errorDetails(err),
        })
      );
      return undefined;
    }
    const carried = Number(values.get(DELIVERIES_FIELD) ?? 0);
    const before = Number.isSafeInteger(carried) && carried > 0 ? carried : 0;
    const delivery = new RedisDelivery(this, kind, id, body, deliveries + before);
    this.#unsettled.set(this.#key(kind, id), delivery);
    return delivery;
  }

  /** Hands out waiting deliveries soon, not from inside the settling of another one. */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /** Hands waiting deliveries to the server while it has free places. */
  #pump(): void {
    while (this.#open && this.#handedOut < this.#prefetch) {
      const delivery = this.#waiting.shift();
      if (delivery === undefined) return;
      delivery.handedOut = true;
      this.#handedOut++;
      this.#handler(delivery);
    }
  }

  #scheduleTick(): void {
    this.#tickTimer = setTimeout(() => {
      this.#ticking = this.#tick().finally(() => {
        this.#ticking = undefined;
        if (this.#tickTimer !== undefined) this.#scheduleTick();
      });
    }, this.#settings.heartbeatIntervalMs);
  }

  /** The periodic work: the heartbeat, then recovery while taking new deliveries. */
  async #tick(): Promise<void> {
    try {
      await this.#heartbeat();
      await this.#recover();
      this.#failures.tick = 0;
    } catch (err) {
      if (errorText(err).startsWith("NOGROUP")) return; // the reader creates the group again
      const log = ++this.#failures.tick === 1 ? this.#logger.warn : this.#logger.debug;
      log.call(this.#logger, "cannot keep or recover messages in Redis; retrying", {
        queue: this.#queue,
        ...errorDetails(err),
      });
    }
  }

  /** Re-claims every entry this consumer holds, so that no other server takes it over. */
  async #heartbeat(): Promise<void> {
    for (const kind of KINDS) {
      const ids: string[] = [];
      for (const delivery of this.#unsettled.values()) {
        if (delivery.kind === kind && !delivery.lost) ids.push(delivery.id);
      }
      if (ids.length === 0) continue;
      const lost = await runScript(
        this.#commands,
        HEARTBEAT,
        [this.#streams[kind]],
        [GROUP, this.#name, ...ids],
      );
      for (const id of Array.isArray(lost) ? lost as string[] : []) this.#lose(kind, id);
    }
  }

  /** Another consumer took an entry over: let it be. A running call still stores its result. */
  #lose(kind: QueueKind, id: string): void {
    const key = this.#key(kind, id);
    const delivery = this.#unsettled.get(key);
    if (delivery === undefined) return;
    delivery.lost = true;
    this.#logger.warn("another server took over a message this server holds", {
      queue: this.#queue,
      kind,
      entry: id,
    });
    if (!delivery.handedOut) {
      this.#unsettled.delete(key);
      this.#waiting = this.#waiting.filter((waiting) => waiting !== delivery);
    }
  }

  /** Takes over entries idle longer than the recover interval, as many as there are free places. */
  async #recover(): Promise<void> {
    for (const kind of KINDS) {
      const free = this.#free;
      if (!this.#open || free <= 0) return;
      const taken = await runScript(
        this.#commands,
        RECOVER,
        [this.#streams[kind]],
        [GROUP, this.#name, this.#settings.recoverIntervalMs, free],
      );
      let count = 0;
      const fresh: RedisDelivery[] = [];
      for (const [id, fields, deliveries] of taken as [string, unknown, number][]) {
        // An entry this consumer holds already (it missed a heartbeat) is not delivered twice.
        if (this.#unsettled.has(this.#key(kind, id))) continue;
        count++;
        const delivery = this.#take(kind, id, fields, deliveries);
        if (delivery !== undefined) fresh.push(delivery);
      }
      if (!this.#open) {
        // Closed while taking them over: they go back at once, like entries read but waiting.
        await Promise.all(fresh.map((delivery) => delivery.release()));
        return;
      }
      this.#waiting.push(...fresh);
      if (count > 0) {
        this.#logger.info("took over messages abandoned by another server", {
          queue: this.#queue,
          kind,
          count,
        });
      }
      this.#pump();
    }
  }
}

/** The field-value pairs of a stream entry (the first of repeated fields wins). */
function fieldMap(fields: unknown): Map<string, string> {
  const values = new Map<string, string>();
  if (!Array.isArray(fields)) return values;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = String(fields[i]);
    if (!values.has(name)) values.set(name, String(fields[i + 1]));
  }
  return values;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errorDetails(err: unknown): Record<string, unknown> {
  return { error: errorText(err) };
}
