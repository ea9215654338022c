/**
 * A server's consumer of one queue name: reads both request streams in the
 * consumer group, hands deliveries to the server, keeps them claimed while they
 * run (heartbeat), takes over messages abandoned by other servers (recovery),
 * and settles deliveries with one atomic script each.
 *
 * A reply lost with a connection can leave entries pending for this consumer
 * that it never received (a read) or does not know the fate of (a settling
 * script). After every reconnect, and when it stops, the consumer hands back
 * the entries pending for it that it does not hold, so that they are served at
 * once instead of after the recover interval.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { QueueKind } from "../../protocol/envelope.ts";
import { isoTimestamp } from "../../protocol/envelope.ts";
import { BrokerError } from "../../protocol/errors.ts";
import { ChurnMap, ChurnSet, type ChurnSetEntry } from "../../protocol/churn.ts";
import type { Logger } from "../../protocol/logger.ts";
import {
  deadLetterQueueName,
  type Delivery,
  feedbackName,
  type Reply,
  requestQueueName,
  type Subscription,
} from "../types.ts";
import {
  BLOCK_MS,
  BLOCKING_GRACE_MS,
  emptyAfter,
  NoReplyError,
  NotConnectedError,
  type RedisConnection,
  ReplyLostError,
} from "./connection.ts";
import {
  COMPLETE,
  DEAD_LETTER,
  HAND_BACK,
  HEARTBEAT,
  LEAVE,
  RECOVER,
  type RedisScript,
  RELEASE,
  runScript,
} from "./scripts.ts";
import type { RedisSettings } from "./settings.ts";
import { type Completion, CompletionBatcher } from "./completions.ts";

/** How many entries an `XREADGROUP` reply carries, over all its streams. */
function entryCount(reply: unknown): number {
  if (!Array.isArray(reply)) return 0;
  let count = 0;
  for (const stream of reply as unknown[]) {
    const entries = Array.isArray(stream) ? stream[1] : undefined;
    if (Array.isArray(entries)) count += entries.length;
  }
  return count;
}

/** The consumer group every prpc (and PRPC) server of a queue reads in. */
export const GROUP = "prpc_group_consumers";

/** Field of a request entry that carries the message. */
const MESSAGE_FIELD = "message";
/** Field of a re-added request entry: how often it was delivered before. */
const DELIVERIES_FIELD = "prpc_deliveries";
/** Longest each step of stopping waits for Redis; what is left is taken over after the recover interval. */
const STOP_STEP_MS = 2_000;

const KINDS: readonly QueueKind[] = ["native", "raw"];

/** What a {@linkcode StreamConsumer} needs. */
export interface StreamConsumerOptions {
  /** The broker's connection for short commands. */
  commands: RedisConnection;
  /** A connection of this consumer's own, for the blocking read. */
  blocking: RedisConnection;
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

  /** Whether it was settled (its script may still be running). */
  get settled(): boolean {
    return this.#settled;
  }

  complete(reply: Reply): Promise<void> {
    return this.#settle(() => this.consumer.complete(this, reply));
  }

  deadLetter(reason: string, reply?: Reply): Promise<void> {
    return this.#settle(() => this.consumer.deadLetter(this, reason, reply));
  }

  release(): Promise<void> {
    return this.#settle(() => this.consumer.release(this));
  }

  /** Lets the delivery go without telling Redis: it stays pending and is taken over later. */
  abandon(): Promise<void> {
    return this.#settle(() => Promise.resolve());
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
  readonly #commands: RedisConnection;
  readonly #blocking: RedisConnection;
  readonly #queue: string;
  readonly #name: string;
  readonly #prefetch: number;
  readonly #handler: (delivery: Delivery) => void;
  readonly #settings: RedisSettings;
  readonly #logger: Logger;
  readonly #streams: Record<QueueKind, string>;

  /**
   * Read and not settled yet, by stream and id: handed out, waiting for a free
   * place, or with its settling script still under way. The heartbeat keeps
   * these claimed, and recovery and handing back leave them alone.
   */
  readonly #unsettled = new ChurnMap<RedisDelivery>();
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
  /** Settling scripts under way. */
  readonly #settling = new ChurnSet<Promise<void>>();
  /** The last of the runs of recovery and handing back, which must not overlap. */
  #claiming: Promise<unknown> = Promise.resolve();
  /** The blocking connection's client id (`null` when Redis would not tell), per session. */
  #blockingClient: { id: number | null; session: number } | undefined;
  /**
   * The connection sessions after whose start lost entries were handed back;
   * `undefined` when entries may have been lost since (a reply that came too late).
   */
  #handedBackIn: { commands: number; blocking: number } | undefined = { commands: 0, blocking: 0 };
  /** A step of stopping got no reply in time: Redis does not answer, so the later steps are skipped. */
  #unanswered = false;
  /** Failures in a row of the reader and of the periodic work, to report only the first. */
  readonly #failures = { read: 0, tick: 0, handBack: 0 };
  /** Removes the reconnect listeners. */
  readonly #stopListening: (() => void)[];
  /** Completions made together, settled by one script run. */
  readonly #completions = new CompletionBatcher(
    (items) => this.#completeBatch(items),
    () => this.#betweenReads,
  );
  /** A read's reply came, and the next read is about to be sent: completions can go with it. */
  #betweenReads = false;

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
    // After a reconnect the reader hands back what was lost, then reads, without waiting for
    // its pause between failed reads to end.
    const wake = () => this.#wakeReader?.();
    this.#stopListening = [this.#commands.onReconnect(wake), this.#blocking.onReconnect(wake)];
  }

  /**
   * Creates the group where missing, hands back entries left to this consumer
   * name by an earlier run, takes over abandoned messages, then starts reading.
   */
  async start(): Promise<void> {
    await this.#ensureGroups();
    await this.#warnOfNamesake();
    await this.#handBackLost({ discount: 0 });
    await this.#exclusively(() => this.#recover());
    this.#reading = this.#readLoop();
    this.#scheduleTick();
  }

  /**
   * Stops new deliveries; entries read but not handed out yet go back to their
   * stream at once, and so do entries whose delivery to this consumer was cut off.
   */
  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    this.#wakeReader?.();
    await this.#endReading();
    const waiting = this.#waiting;
    this.#waiting = [];
    await this.#releaseAll(waiting);
    await this.#handBackWhileStopping();
  }

  /**
   * Closes for good: stops new deliveries, waits briefly for settling scripts,
   * hands back what is still unsettled, and leaves the group when this consumer
   * holds nothing any more. Without a connection it does not wait: other servers
   * take the messages over after the recover interval.
   */
  async stop(): Promise<void> {
    await this.close();
    clearTimeout(this.#tickTimer);
    this.#tickTimer = undefined;
    // Each command of a tick has a time limit; this bounds the wait should Redis not answer.
    await settledWithin(this.#ticking, STOP_STEP_MS);
    await settledWithin(Promise.allSettled(this.#settling.values()), STOP_STEP_MS);
    await this.#releaseAll(this.#unsettled.values().filter((delivery) => !delivery.settled));
    await this.#handBackWhileStopping();
    if (this.#answering) {
      for (const kind of KINDS) {
        await this.#commands.sendNow(
          (redis) => runScript(redis, LEAVE, [this.#streams[kind]], [GROUP, this.#name]),
          STOP_STEP_MS,
        ).catch((err) => this.#stopStepFailed("cannot leave the consumer group", err));
      }
    }
    for (const stopListening of this.#stopListening) stopListening();
    this.#stopped = true;
  }

  /** Frees the delivery's place, then runs its settling script; it stays held until the script ends. */
  settle(delivery: RedisDelivery, work: () => Promise<void>): Promise<void> {
    if (this.#stopped) {
      return Promise.reject(
        new BrokerError(
          "Cannot settle a delivery after its Redis connection was closed; it will be delivered again",
        ),
      );
    }
    if (delivery.handedOut) this.#handedOut--;
    this.#schedulePump();
    this.#wakeReader?.();
    // The callbacks run after the entry exists: a promise's reactions never run synchronously.
    const settling: Promise<void> = work().then(
      () => this.#settled(delivery, entry),
      (err: unknown) => {
        this.#settled(delivery, entry);
        throw err;
      },
    );
    const entry = this.#settling.add(settling);
    return settling;
  }

  /** A settling script ended: the delivery is no longer held. */
  #settled(delivery: RedisDelivery, settling: ChurnSetEntry): void {
    settling.remove();
    const key = this.#key(delivery.kind, delivery.id);
    if (this.#unsettled.get(key) === delivery) this.#unsettled.delete(key);
  }

  /**
   * Stores the result, pushes it to the caller, acknowledges and deletes the
   * request, together with the other results finished in the same turn.
   */
  complete(delivery: RedisDelivery, reply: Reply): Promise<void> {
    return this.#completions.add({
      stream: this.#streams[delivery.kind],
      id: delivery.id,
      resultKey: this.#resultKey(delivery, reply),
      body: reply.body,
      replyTo: reply.replyTo ?? "",
    });
  }

  /** Runs the `COMPLETE` script for a batch of completions. */
  async #completeBatch(items: Completion[]): Promise<void> {
    await this.#run(COMPLETE, ...completeArguments(items, this.#settings.resultTtlMs));
  }

  /**
   * Runs the `COMPLETE` script on the reading connection, written together with
   * the read that follows it; should that fail, the usual way.
   */
  async #completeBatchBeforeRead(items: Completion[]): Promise<void> {
    const [keys, args] = completeArguments(items, this.#settings.resultTtlMs);
    try {
      await this.#blocking.send((redis) => runScript(redis, COMPLETE, keys, args));
    } catch {
      // Cut off with the reading connection, say: the script may run again without harm.
      await this.#run(COMPLETE, keys, args);
    }
  }

  /** Moves the request to the dead-letter stream, with an optional error result for the caller. */
  async deadLetter(delivery: RedisDelivery, reason: string, reply?: Reply): Promise<void> {
    await this.#setAside(delivery.kind, delivery.id, delivery.body, reason, reply);
  }

  /**
   * Re-adds the request at the end of its stream, carrying its delivery count.
   * Does not wait for a connection that is down, and never fails: a request
   * that cannot be handed back is taken over after the recover interval.
   */
  async release(delivery: RedisDelivery): Promise<void> {
    // An entry read but never handed out was not delivered, as far as the server can tell.
    const deliveries = delivery.handedOut ? delivery.attempt : delivery.attempt - 1;
    try {
      await this.#commands.sendNow(
        (redis) =>
          runScript(redis, RELEASE, [this.#streams[delivery.kind]], [
            GROUP,
            this.#name,
            delivery.id,
            delivery.body,
            deliveries,
          ]),
        STOP_STEP_MS,
      );
    } catch (err) {
      if (err instanceof NoReplyError) this.#unanswered = true;
      this.#logger.warn(
        "cannot hand a message back to Redis; it is taken over after the recover interval",
        { queue: this.#queue, kind: delivery.kind, entry: delivery.id, ...errorDetails(err) },
      );
    }
  }

  #key(kind: QueueKind, id: string): string {
    return `${kind} ${id}`;
  }

  #resultKey(delivery: RedisDelivery, reply: Reply): string {
    return `${feedbackName(this.#queue, delivery.kind)}_${reply.messageId}`;
  }

  /** The ids of the entries of one stream this consumer holds. */
  #held(kind: QueueKind): string[] {
    const ids: string[] = [];
    for (const delivery of this.#unsettled.values()) {
      if (delivery.kind === kind) ids.push(delivery.id);
    }
    return ids;
  }

  /**
   * Runs a settling script; it waits for a connection that is down. The
   * settling scripts may run twice (they store the same result again, or find
   * the entry settled), so a script whose reply was lost is sent again. It
   * gives up after the recover interval: the delivery is no longer re-claimed
   * then, and another server (or this one) takes it over later.
   */
  async #run(code: RedisScript, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await this.#commands.sendRepeatable((redis) => runScript(redis, code, keys, args), {
        timeoutMs: this.#settings.recoverIntervalMs,
      });
    } catch (err) {
      const unknown = err instanceof ReplyLostError
        ? "; if it did not run, the message is delivered again"
        : "";
      throw new BrokerError(`Cannot ${code.name} a message in Redis: ${errorText(err)}${unknown}`, {
        cause: err,
      });
    }
  }

  /** Runs recovery and handing back one at a time: each must see what the other has taken. */
  #exclusively<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#claiming.then(work, work);
    this.#claiming = run.catch(() => {});
    return run;
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
        await this.#commands.send((redis) =>
          redis.xgroup("CREATE", this.#streams[kind], GROUP, "0", "MKSTREAM")
        );
      } catch (err) {
        if (!errorText(err).startsWith("BUSYGROUP")) throw err;
      }
    }
  }

  /**
   * Hands back the entries pending for this consumer that it does not hold
   * (see the module docs). Runs only while no read is under way: the entries of
   * a read whose reply is on its way are pending, and not held yet.
   */
  async #handBackLost(
    { timeoutMs = this.#settings.heartbeatIntervalMs, discount = 1 } = {},
  ): Promise<void> {
    const sessions = { commands: this.#commands.sessions, blocking: this.#blocking.sessions };
    await this.#exclusively(async () => {
      for (const kind of KINDS) {
        const count = await this.#commands.sendNow(
          (redis) =>
            runScript(redis, HAND_BACK, [this.#streams[kind]], [
              GROUP,
              this.#name,
              discount,
              ...this.#held(kind),
            ]),
          timeoutMs,
        );
        if (typeof count === "number" && count > 0) {
          this.#logger.info("handed back messages whose delivery to this server was cut off", {
            queue: this.#queue,
            kind,
            count,
          });
        }
      }
    });
    // Only now: a hand-back that failed is tried again before the next read.
    this.#handedBackIn = sessions;
  }

  /** Whether Redis is taken to answer while stopping: connected, and no step went unanswered. */
  get #answering(): boolean {
    return this.#commands.ready && !this.#unanswered;
  }

  /**
   * Hands back lost entries while closing or stopping, waiting at most
   * {@linkcode STOP_STEP_MS} for recovery or an earlier hand-back under way.
   */
  async #handBackWhileStopping(): Promise<void> {
    if (!this.#answering) return;
    if (!(await settledWithin(this.#claiming, STOP_STEP_MS))) {
      this.#unanswered = true;
      this.#cannotHandBack(new NoReplyError(`Redis did not answer within ${STOP_STEP_MS} ms`));
      return;
    }
    await this.#handBackLost({ timeoutMs: STOP_STEP_MS })
      .catch((err) => this.#stopStepFailed(null, err));
  }

  /** Reports a failed step of stopping (`null`: handing back); without a reply, later steps are skipped. */
  #stopStepFailed(what: string | null, err: unknown): void {
    if (err instanceof NoReplyError) this.#unanswered = true;
    if (what === null) this.#cannotHandBack(err);
    else this.#logger.debug(what, errorDetails(err));
  }

  /**
   * Warns when a live consumer of the group (one that read lately) already has
   * this server's name: two servers of one name hand back each other's running
   * messages, which then run twice.
   */
  async #warnOfNamesake(): Promise<void> {
    for (const kind of KINDS) {
      let consumers: unknown;
      try {
        consumers = await this.#commands.sendNow(
          (redis) => redis.call("XINFO", "CONSUMERS", this.#streams[kind], GROUP),
          this.#settings.heartbeatIntervalMs,
        );
      } catch (err) {
        this.#logger.debug("cannot list the consumers of the group", errorDetails(err));
        return;
      }
      for (const consumer of Array.isArray(consumers) ? consumers : []) {
        const fields = fieldMap(consumer);
        const idleMs = Number(fields.get("idle"));
        if (fields.get("name") !== this.#name || !(idleMs < BLOCK_MS + BLOCKING_GRACE_MS)) continue;
        this.#logger.warn(
          "another server of this queue read requests moments ago under this server's name " +
            "(PRPC_INSTANCE_NAME); two servers of one name hand back each other's running " +
            "messages, which then run twice: give each server its own name",
          { queue: this.#queue, instance: this.#name, idleMs },
        );
        return;
      }
    }
  }

  #cannotHandBack(err: unknown): void {
    this.#logger.warn(
      "cannot hand back messages whose delivery to this server was cut off; they are taken " +
        "over after the recover interval",
      { queue: this.#queue, ...errorDetails(err) },
    );
  }

  /** Whether a connection came back since lost entries were last handed back. */
  get #reconnected(): boolean {
    return this.#handedBackIn === undefined ||
      this.#commands.sessions !== this.#handedBackIn.commands ||
      this.#blocking.sessions !== this.#handedBackIn.blocking;
  }

  /** Hands deliveries back, or lets them go at once (with one warning) when Redis is away. */
  async #releaseAll(deliveries: RedisDelivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    if (this.#answering) {
      await Promise.all(deliveries.map((delivery) => delivery.release()));
      return;
    }
    this.#logger.warn(
      "closing without a Redis connection: other servers take over the messages still held " +
        "after the recover interval",
      { queue: this.#queue, held: deliveries.length },
    );
    await Promise.all(deliveries.map((delivery) => delivery.abandon()));
  }

  /**
   * Ends the blocking read for good. Redis drops the reading client first, so no
   * entry can be delivered to it after the entries it was delivered are handed
   * back; without its id (or without a connection) closing it has to do.
   */
  async #endReading(): Promise<void> {
    const client = this.#blockingClient;
    const id = client?.session === this.#blocking.sessions && this.#blocking.ready
      ? client.id
      : null;
    const killed = id !== null && this.#answering
      ? this.#commands.sendNow(
        (redis) => redis.call("CLIENT", "KILL", "ID", String(id)),
        STOP_STEP_MS,
      ).catch((err) => this.#stopStepFailed("cannot end the blocking read", err))
      : undefined;
    await this.#blocking.close();
    await killed;
    await this.#reading;
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
      // Once both connections are up again (the commands connection may be back later).
      if (this.#reconnected && this.#commands.ready) {
        await this.#handBackLost().then(
          () => (this.#failures.handBack = 0),
          (err) => {
            if (++this.#failures.handBack === 1) this.#cannotHandBack(err);
            else this.#logger.debug("cannot hand back lost messages; retrying", errorDetails(err));
          },
        );
      }
      let reply: unknown;
      let sent = 0;
      try {
        if (this.#blockingClient?.session !== this.#blocking.sessions) {
          await this.#learnBlockingClient();
        }
        sent = Date.now();
        this.#betweenReads = false;
        reply = await this.#blocking.together(() => {
          this.#completions.flush((items) => this.#completeBatchBeforeRead(items));
          const read = this.#blocking.send((redis) =>
            redis.call(
              "XREADGROUP",
              "GROUP",
              GROUP,
              this.#name,
              "COUNT",
              Math.min(free, this.#settings.readCount),
              "BLOCK",
              BLOCK_MS,
              "STREAMS",
              this.#streams.native,
              this.#streams.raw,
              ">",
              ">",
            )
          );
          return emptyAfter(read, BLOCK_MS + BLOCKING_GRACE_MS);
        });
      } catch (err) {
        if (!this.#open) return;
        await this.#readFailed(err);
        continue;
      }
      this.#failures.read = 0;
      // The results of a read of several requests wait for the next read, to leave with it in
      // one write; a lone request's result leaves at once, on the commands connection.
      this.#betweenReads = entryCount(reply) > 1;
      if (reply === null && Date.now() - sent >= BLOCK_MS + BLOCKING_GRACE_MS) {
        // No reply came in time: the entries a late reply would carry stay pending for this
        // consumer. Hand them back, and read on a new socket: this one may be dead.
        this.#handedBackIn = undefined;
        if (this.#open) {
          this.#logger.warn("Redis did not answer a read in time; connecting again", {
            queue: this.#queue,
            waitedMs: Date.now() - sent,
          });
          this.#blocking.reconnect();
        }
      }
      // Let this turn's calls finish first, so that their results leave with the next read. Set
      // before the calls run, so that this comes before their batch's own fallback.
      const turnEnded = new Promise((resolve) => setImmediate(resolve));
      this.#acceptRead(reply);
      await turnEnded;
    }
  }

  /** Asks Redis for the blocking connection's client id once per session, for {@linkcode #endReading}. */
  async #learnBlockingClient(): Promise<void> {
    const session = this.#blocking.sessions;
    if (this.#blockingClient?.session === session) return;
    try {
      const id = await this.#blocking.send((redis) => redis.call("CLIENT", "ID"));
      this.#blockingClient = { id: Number(id), session };
    } catch (err) {
      // Redis answered with an error (an ACL without CLIENT, say): reading works without it.
      if (!(err instanceof Error && err.name === "ReplyError")) throw err;
      this.#blockingClient = { id: null, session };
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
    // The two fields read, without a map of all of them (this runs for every request).
    let body: string | undefined;
    let carriedText: string | undefined;
    if (Array.isArray(fields)) {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const name = String(fields[i]);
        if (name === MESSAGE_FIELD) body ??= String(fields[i + 1]);
        else if (name === DELIVERIES_FIELD) carriedText ??= String(fields[i + 1]);
      }
    }
    if (body === undefined) {
      const values = fieldMap(fields);
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
    const carried = Number(carriedText ?? 0);
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

  /**
   * The periodic work: the heartbeat, then recovery while taking new
   * deliveries. Skipped while the connection is down (its loss is reported once
   * already); the next tick tries again.
   */
  async #tick(): Promise<void> {
    if (!this.#commands.ready) return;
    try {
      await this.#heartbeat();
      await this.#exclusively(() => this.#recover());
      this.#failures.tick = 0;
    } catch (err) {
      if (errorText(err).startsWith("NOGROUP")) return; // the reader creates the group again
      // A dropped connection is reported once already; Redis not answering is not.
      const connection = (err instanceof ReplyLostError && !(err instanceof NoReplyError)) ||
        err instanceof NotConnectedError;
      const log = ++this.#failures.tick === 1 && !connection
        ? this.#logger.warn
        : this.#logger.debug;
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
      const lost = await this.#commands.sendNow(
        (redis) => runScript(redis, HEARTBEAT, [this.#streams[kind]], [GROUP, this.#name, ...ids]),
        this.#settings.heartbeatIntervalMs,
      );
      for (const id of Array.isArray(lost) ? lost as string[] : []) this.#lose(kind, id);
    }
  }

  /** Another consumer took an entry over: let it be. A running call still stores its result. */
  #lose(kind: QueueKind, id: string): void {
    const key = this.#key(kind, id);
    const delivery = this.#unsettled.get(key);
    // A delivery being settled is gone from the pending list once its script has run.
    if (delivery === undefined || delivery.settled) return;
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
      let taken: unknown;
      try {
        taken = await this.#commands.sendNow(
          (redis) =>
            runScript(redis, RECOVER, [this.#streams[kind]], [
              GROUP,
              this.#name,
              this.#settings.recoverIntervalMs,
              free,
              ...this.#held(kind),
            ]),
          this.#settings.heartbeatIntervalMs,
        );
      } catch (err) {
        // It may still run and claim entries for this consumer: hand them back before reading.
        if (err instanceof ReplyLostError) this.#handedBackIn = undefined;
        throw err;
      }
      let count = 0;
      const fresh: RedisDelivery[] = [];
      for (const [id, fields, deliveries] of taken as [string, unknown, number][]) {
        // Read meanwhile by this consumer (the script leaves only what it held when it ran).
        if (this.#unsettled.has(this.#key(kind, id))) continue;
        count++;
        const delivery = this.#take(kind, id, fields, deliveries);
        if (delivery !== undefined) fresh.push(delivery);
      }
      if (!this.#open) {
        // Closed while taking them over: they go back at once, like entries read but waiting.
        await this.#releaseAll(fresh);
        return;
      }
      this.#waiting.push(...fresh);
      if (count > 0) {
        this.#logger.info("took over messages idle for longer than the recover interval", {
          queue: this.#queue,
          kind,
          count,
        });
      }
      this.#pump();
    }
  }
}

/** KEYS and ARGV of the `COMPLETE` script for a batch. */
function completeArguments(
  items: Completion[],
  resultTtlMs: number,
): [string[], (string | number)[]] {
  const keys: string[] = [];
  const args: (string | number)[] = [GROUP, resultTtlMs];
  for (const item of items) {
    keys.push(item.stream, item.resultKey);
    args.push(item.id, item.body, item.replyTo);
  }
  return [keys, args];
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

/** Waits for `promise` to settle, at most `timeoutMs`; tells whether it settled. */
async function settledWithin(
  promise: Promise<unknown> | undefined,
  timeoutMs: number,
): Promise<boolean> {
  if (promise === undefined) return true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = await Promise.race([
    promise.then(() => true, () => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
  ]);
  clearTimeout(timer);
  return settled;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errorDetails(err: unknown): Record<string, unknown> {
  return { error: errorText(err) };
}
