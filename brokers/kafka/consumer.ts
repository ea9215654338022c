/**
 * A server's consumer: the servers' group (`prpc_group_consumers` by default)
 * reading `prpc_{queue}` and `prpc_raw_{queue}`, with requests of one
 * partition running at once up to `prefetch`, across partitions.
 *
 * - A request is handed out only after its delivery is committed in the
 *   partition's ledger (`ledger.ts`), so `Delivery.attempt` counts deliveries
 *   to any server of the group, also after a crash.
 * - The committed offset moves only past requests that are done, and a
 *   request is done once its result (or dead letter) is produced; requests
 *   after an unfinished one may finish first: the ledger remembers them, so
 *   whoever owns the partition next skips them.
 * - After a rebalance kafkajs reads again from the committed offset; requests
 *   still running or done here are not handed out again.
 * - `release()` hands a request back: the consumer seeks back to it (while
 *   open), or leaves it to the partition's next owner (while stopping).
 * - No commit goes out while the group is rebalancing (from this member's
 *   JoinGroup to the end of its SyncGroup): a commit sent in that window would
 *   carry the new generation but the old assignment, and could overwrite the
 *   ledger of a partition another server now owns. Commits asked for meanwhile
 *   wait, and go out after the join with what this server still owns.
 * - `start()` resolves only once the group gave this server its partitions,
 *   and fails when kafkajs gives up joining, or when the join has not
 *   succeeded within `joinTimeoutMs` (kafkajs retries some failures, such as
 *   an unavailable coordinator, forever); the error names the last failure
 *   kafkajs reported. When the consumer later fails for
 *   good (kafkajs stops it without restarting, e.g. the group refuses a
 *   rejoin), the failure is logged at `error` and the consumer is started
 *   again with back-off ({@linkcode RESTART_DELAYS_MS}), until it joins or
 *   the consumer is disconnected: a server must not look alive while it
 *   serves nothing.
 *
 * @module
 */

import type { Admin, Consumer, ConsumerRunConfig, EachBatchPayload, KafkaMessage } from "kafkajs";
import type { QueueKind } from "../../protocol/envelope.ts";
import { BrokerError } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/logger.ts";
import type { Delivery, Reply, Subscription } from "../types.ts";
import { requestQueueName } from "../types.ts";
import { roundRobinAssigner, stickyAssigner, type TopicPartitions } from "./assigners.ts";
import { brokerError, errorText, kafkaErrorType, kafkaProtocolError } from "./client.ts";
import { Committer, type PartitionCommit } from "./committer.ts";
import type { KafkaContext } from "./context.ts";
import { PartitionLedger } from "./ledger.ts";
import { messageIdOf, replyPartitionOf, sentMicros } from "./records.ts";
import type { KafkaSettings } from "./settings.ts";
import { Slots } from "./slots.ts";
import { topicOffsets } from "./offsets.ts";

/** How a server's results and dead letters leave; implemented by the broker connection. */
export interface Outbox {
  /** Produces a result to the feedback topic of `kind`, to the caller's partition when given. */
  sendResult(kind: QueueKind, reply: Reply, replyPartition: number | undefined): Promise<void>;
  /** Produces a dead letter to `prpc_dead_{queue}` (`sent`: see `sentMicros`). */
  sendDeadLetter(
    kind: QueueKind,
    body: string,
    reason: string,
    source: string,
    sent: number,
  ): Promise<void>;
}

/** Options of {@linkcode ServerConsumer.start}. */
export interface ServerConsumerOptions extends KafkaContext {
  /** The queue name. */
  queue: string;
  /** Deliveries unsettled at once, at most. */
  prefetch: number;
  /** Where results and dead letters go. */
  outbox: Outbox;
  /** Takes each delivery. */
  handler: (delivery: Delivery) => void;
}

/** Kafka error types by which kafkajs recognises that it must rejoin its group. */
const REJOIN_ERRORS = new Set([
  "REBALANCE_IN_PROGRESS",
  "NOT_COORDINATOR_FOR_GROUP",
  "ILLEGAL_GENERATION",
  "UNKNOWN_MEMBER_ID",
]);

/** Waits before starting a consumer again that kafkajs stopped for good; the last one repeats. */
export const RESTART_DELAYS_MS: readonly number[] = [1_000, 2_000, 5_000, 10_000, 30_000];

/** Commit metadata is never cut below this many characters (see `#sendCommits`). */
const METADATA_CHARS_FLOOR = 100;

/** Most partitions whose batches are taken at once. */
const MAX_CONCURRENT_PARTITIONS = 64;

/** A request handed to the server and not settled yet. */
interface Running {
  readonly key: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly deliveries: number;
  /** Its key in `#replyPartitions`, when it is there. */
  readonly replyKey: string | undefined;
}

/** See the module docs. */
export class ServerConsumer implements Subscription {
  readonly #consumer: Consumer;
  readonly #admin: Admin;
  readonly #settings: KafkaSettings;
  readonly #logger: Logger;
  readonly #outbox: Outbox;
  readonly #handler: (delivery: Delivery) => void;
  readonly #kinds: ReadonlyMap<string, QueueKind>;
  readonly #slots: Slots;
  readonly #committer: Committer;
  /** Partitions assigned in the current generation (`topic/partition`). */
  #assigned = new Set<string>();
  /** This server's member id in the group; a new one means the group went on without it. */
  #memberId: string | undefined;
  /** Ledgers of assigned partitions, loaded on their first batch after being assigned. */
  readonly #ledgers = new Map<string, PartitionLedger>();
  readonly #loading = new Map<string, Promise<PartitionLedger>>();
  /** Requests running here, by `topic/partition@offset`; survives rebalances. */
  readonly #running = new Map<string, Running>();
  readonly #queue: string;
  readonly #runConfig: ConsumerRunConfig;
  #open = true;
  #connected = true;
  /** Set by `disconnect()`: no start or restart goes on after it. */
  #stopping = false;
  /** While `start()` waits for the first join: how to end the wait. */
  #firstJoin: { resolve(): void; reject(err: unknown): void } | undefined;
  /** From this member's JoinGroup until its GROUP_JOIN (or a crash): commits wait for it. */
  #rejoin: { done: Promise<void>; end(): void } | undefined;
  #starting: Promise<void> | undefined;
  #restarting: Promise<void> | undefined;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #restarts = 0;
  /** The last failure kafkajs reported and retries, while `start()` waits for the first join. */
  #lastJoinError: Error | undefined;
  /** Whether the floor of `#metadataChars` has been logged since it was last raised. */
  #metadataFloorLogged = false;
  /** Reply partitions of redelivered requests running here, by `kind/message_id`. */
  readonly #replyPartitions = new Map<string, number>();
  /** Longest ledger metadata sent; halved when Kafka refuses it as too large. */
  #metadataChars: number;

  /**
   * Creates the consumer; nothing connects until {@linkcode ServerConsumer.start}.
   *
   * @param options Connection, queue, prefetch, where results go, and the handler.
   */
  constructor(options: ServerConsumerOptions) {
    const { settings } = options;
    this.#consumer = options.kafka.consumer({
      groupId: settings.groupId,
      partitionAssigners: [stickyAssigner(() => this.#joining()), roundRobinAssigner],
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      rebalanceTimeout: settings.rebalanceTimeoutMs,
      maxWaitTimeInMs: settings.maxWaitMs,
      metadataMaxAge: settings.metadataMaxAgeMs,
      allowAutoTopicCreation: false,
    });
    this.#admin = options.admin;
    this.#settings = settings;
    this.#logger = options.logger;
    this.#outbox = options.outbox;
    this.#handler = options.handler;
    this.#queue = options.queue;
    this.#kinds = new Map<string, QueueKind>([
      [requestQueueName(options.queue, "native"), "native"],
      [requestQueueName(options.queue, "raw"), "raw"],
    ]);
    this.#slots = new Slots(options.prefetch);
    this.#metadataChars = settings.offsetMetadataMaxChars;
    this.#committer = new Committer((keys) => this.#sendCommits(keys));
    this.#runConfig = {
      autoCommit: false,
      eachBatchAutoResolve: false,
      // The batches of different partitions are taken at once: each waits for the commit of
      // its delivery counts, and those commits coalesce into one (see committer.ts). One at a
      // time, a fetch of N partitions took N commit round trips before the last one ran.
      partitionsConsumedConcurrently: Math.min(options.prefetch, MAX_CONCURRENT_PARTITIONS),
      eachBatch: (payload) => this.#onBatch(payload),
    };
    const consumer = this.#consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.#joined(payload.memberId, payload.memberAssignment);
      this.#restarts = 0;
      this.#firstJoin?.resolve();
    });
    consumer.on(
      consumer.events.CRASH,
      ({ payload }) => this.#crashed(payload.error, payload.restart),
    );
  }

  /**
   * Joins the servers' group and starts handing out requests. Resolves once
   * the group gave this server its partitions.
   *
   * @throws {BrokerError} When the group cannot be joined (kafkajs gave up, or
   *   `disconnect()` came first).
   */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const consumer = this.#consumer;
    const joined = new Promise<void>((resolve, reject) => {
      this.#firstJoin = { resolve, reject };
    });
    joined.catch(() => {}); // awaited below; may be settled before that
    const { joinTimeoutMs } = this.#settings;
    let deadline: ReturnType<typeof setTimeout> | undefined;
    try {
      this.#checkNotStopping();
      await consumer.connect();
      this.#checkNotStopping();
      // Requests sent before the group first read a partition are served too.
      await consumer.subscribe({ topics: [...this.#kinds.keys()], fromBeginning: true });
      this.#checkNotStopping();
      deadline = setTimeout(() => this.#firstJoin?.reject(this.#joinTimeoutError()), joinTimeoutMs);
      // Resolves after the first join, also when it failed (kafkajs reports that as a crash),
      // but not while a JoinGroup waits: the deadline (or disconnect()) ends that wait.
      const running = consumer.run(this.#runConfig);
      running.catch(() => {}); // its failure is a crash event, which settles `joined`
      await Promise.race([running, joined]);
      await joined;
    } catch (err) {
      this.#connected = false;
      await consumer.disconnect().catch(() => {});
      throw brokerError(`Cannot join the Kafka consumer group ${this.#settings.groupId}`, err);
    } finally {
      clearTimeout(deadline);
      this.#firstJoin = undefined;
      this.#lastJoinError = undefined;
    }
  }

  #joinTimeoutError(): BrokerError {
    const last = this.#lastJoinError;
    return new BrokerError(
      `Cannot join the Kafka consumer group ${this.#settings.groupId} within joinTimeoutMs ` +
        `(${this.#settings.joinTimeoutMs} ms): ${
          last === undefined
            ? "kafkajs reported no error; the group's rebalance did not complete"
            : `the last error kafkajs reported was ${errorText(last)}`
        }`,
      last === undefined ? undefined : { cause: last },
    );
  }

  #checkNotStopping(): void {
    if (this.#stopping) throw new BrokerError("the consumer was disconnected while starting");
  }

  /**
   * kafkajs stopped the consumer. While starting, a failure it does not retry
   * fails `start()`; later, the consumer is started again with back-off.
   */
  #crashed(error: Error, restarting: boolean): void {
    this.#rejoin?.end();
    const details = { queue: this.#queue, error: errorText(error) };
    if (this.#stopping) {
      this.#logger.debug("the Kafka consumer stopped while disconnecting", details);
    } else if (restarting) {
      if (this.#firstJoin !== undefined) this.#lastJoinError = error;
      this.#logger.warn("the Kafka consumer failed; kafkajs restarts it", details);
    } else if (this.#firstJoin !== undefined) {
      this.#firstJoin.reject(error);
    } else {
      const delay = RESTART_DELAYS_MS[Math.min(this.#restarts, RESTART_DELAYS_MS.length - 1)] ??
        1_000;
      this.#restarts++;
      this.#logger.error(
        "the Kafka consumer failed and stopped; the server serves nothing until it starts again",
        { ...details, restartInMs: delay },
      );
      this.#restartTimer = setTimeout(() => {
        this.#restartTimer = undefined;
        this.#restarting = this.#restart().finally(() => (this.#restarting = undefined));
      }, delay);
    }
  }

  /** Starts the consumer again after kafkajs stopped it for good. */
  async #restart(): Promise<void> {
    if (this.#stopping) return;
    try {
      await this.#consumer.connect();
      if (this.#stopping) return;
      // A failed join ends in another crash event, which schedules the next attempt.
      await this.#consumer.run(this.#runConfig);
    } catch (err) {
      this.#crashed(err instanceof Error ? err : new Error(String(err)), false);
    }
  }

  /**
   * This member is joining the group (kafkajs asks the assigners for their
   * metadata): commits wait until the join ends.
   */
  #joining(): { owned: TopicPartitions; busy: TopicPartitions } {
    if (this.#rejoin === undefined) {
      let end!: () => void;
      const done = new Promise<void>((resolve) => (end = resolve));
      const rejoin = {
        done,
        end: () => {
          if (this.#rejoin === rejoin) this.#rejoin = undefined;
          end();
        },
      };
      this.#rejoin = rejoin;
    }
    return this.#ownership();
  }

  /**
   * Sends the partitions' commits as they stand now, after a join under way
   * (see the module docs); partitions this server no longer owns are left out.
   */
  async #sendCommits(keys: readonly string[]): Promise<void> {
    while (true) {
      while (this.#rejoin !== undefined) await this.#rejoin.done;
      const commits = keys.map((key) => this.#snapshot(key)).filter((c) => c !== undefined);
      if (commits.length === 0) return;
      try {
        await this.#consumer.commitOffsets(commits);
        this.#metadataFloorLogged = false;
        return;
      } catch (err) {
        // Kafka's offset.metadata.max.bytes is below offsetMetadataMaxChars: send less.
        if (kafkaErrorType(err) !== "OFFSET_METADATA_TOO_LARGE") throw err;
        if (this.#metadataChars <= METADATA_CHARS_FLOOR) {
          this.#logMetadataFloor(err);
          throw err;
        }
        this.#metadataChars = Math.max(METADATA_CHARS_FLOOR, Math.floor(this.#metadataChars / 2));
        this.#logger.warn(
          "Kafka refused the commit metadata as too large; sending less (set offsetMetadataMaxChars)",
          { queue: this.#queue, offsetMetadataMaxChars: this.#metadataChars },
        );
      }
    }
  }

  /**
   * Kafka refuses even the shortest commit metadata: no commit goes through,
   * so finished requests run again after a rebalance. Logged at `error` once,
   * until a commit succeeds again.
   */
  #logMetadataFloor(err: unknown): void {
    if (this.#metadataFloorLogged) return;
    this.#metadataFloorLogged = true;
    this.#logger.error(
      "Kafka refuses even the shortest commit metadata; offsets are not committed, so " +
        "finished requests will run again (raise Kafka's offset.metadata.max.bytes)",
      {
        queue: this.#queue,
        offsetMetadataMaxChars: this.#metadataChars,
        error: errorText(err),
      },
    );
  }

  /**
   * The partition of the feedback topic a redelivered request running here
   * named for its result (see `Broker.readResult`).
   *
   * @param queue The queue name.
   * @param kind Which of the queue's topics.
   * @param messageId The request's canonical `message_id`.
   * @returns The partition, or `undefined` when the request named none or does not run here.
   */
  replyPartitionFor(queue: string, kind: QueueKind, messageId: string): number | undefined {
    return queue === this.#queue ? this.#replyPartitions.get(`${kind}/${messageId}`) : undefined;
  }

  /** What this server owns, and where requests run, for the sticky assigner. */
  #ownership(): { owned: TopicPartitions; busy: TopicPartitions } {
    const owned: TopicPartitions = {};
    for (const key of this.#assigned) {
      const [topic, partition] = splitKey(key);
      (owned[topic] ??= []).push(partition);
    }
    const busy: TopicPartitions = {};
    for (const running of this.#running.values()) {
      const list = busy[running.topic] ??= [];
      if (!list.includes(running.partition)) list.push(running.partition);
    }
    return { owned, busy };
  }

  /** Stops handing out requests; those handed out can still be settled. */
  close(): Promise<void> {
    if (!this.#open) return Promise.resolve();
    this.#open = false;
    this.#slots.wake();
    this.#pauseAll();
    return Promise.resolve();
  }

  /**
   * Commits what is done and leaves the group; requests still unsettled go to
   * the partitions' next owners. Settling afterwards fails.
   */
  async disconnect(): Promise<void> {
    await this.close();
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    this.#firstJoin?.reject(new BrokerError("the consumer was disconnected while starting"));
    // A start or restart under way ends first (a join round at most), so nothing is left behind.
    await this.#starting?.catch(() => {});
    await this.#restarting;
    this.#rejoin?.end();
    await this.#committer.idle();
    this.#connected = false;
    await this.#consumer.disconnect().catch((err) =>
      this.#logger.debug("cannot leave the Kafka consumer group cleanly", {
        error: errorText(err),
      })
    );
    this.#running.clear();
    this.#replyPartitions.clear();
  }

  #pauseAll(): void {
    try {
      this.#consumer.pause([...this.#kinds.keys()].map((topic) => ({ topic })));
    } catch {
      // Not running (yet or any more): nothing to pause.
    }
  }

  /**
   * A new generation. Ledgers of partitions kept are still right (only this
   * server committed them meanwhile); those of partitions gained are loaded
   * again, since another server may have owned them.
   */
  #joined(memberId: string, assignment: Record<string, number[]>): void {
    const next = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) next.add(partitionKey(topic, partition));
    }
    const rejoined = this.#memberId !== undefined && this.#memberId !== memberId;
    this.#memberId = memberId;
    for (const key of [...this.#ledgers.keys(), ...this.#loading.keys()]) {
      if (rejoined || !next.has(key)) {
        this.#ledgers.delete(key);
        this.#loading.delete(key);
      }
    }
    this.#assigned = next;
    // Commits that failed in the last generation go again in this one.
    for (const key of this.#ledgers.keys()) {
      this.#committer.commit(key).catch((err) =>
        this.#logger.debug("cannot commit after a rebalance", { error: errorText(err) })
      );
    }
    if (!this.#open) this.#pauseAll();
    this.#rejoin?.end();
  }

  #snapshot(key: string): PartitionCommit | undefined {
    const ledger = this.#assigned.has(key) ? this.#ledgers.get(key) : undefined;
    if (ledger === undefined) return undefined;
    const [topic, partition] = splitKey(key);
    return {
      topic,
      partition,
      offset: String(ledger.base),
      metadata: ledger.encode(this.#metadataChars),
    };
  }

  /** The partition's ledger, loaded from the group's commit on the partition's first batch. */
  async #ledger(key: string): Promise<PartitionLedger> {
    const loaded = this.#ledgers.get(key);
    if (loaded !== undefined) return loaded;
    let loading = this.#loading.get(key);
    if (loading === undefined) {
      loading = this.#loadLedger(key);
      this.#loading.set(key, loading);
    }
    try {
      const ledger = await loading;
      if (this.#loading.get(key) === loading) {
        this.#loading.delete(key);
        this.#ledgers.set(key, ledger);
      }
      return ledger;
    } catch (err) {
      if (this.#loading.get(key) === loading) this.#loading.delete(key);
      throw err;
    }
  }

  /**
   * Loads a ledger from the group's commit. Offsets below the partition's log
   * start are gone (retention); the first offset of a batch would not do, since
   * a seek left over from before a rebalance may have moved reading past
   * requests that are not done.
   */
  async #loadLedger(key: string): Promise<PartitionLedger> {
    const [topic, partition] = splitKey(key);
    const [offsets, ends] = await Promise.all([
      this.#admin.fetchOffsets({ groupId: this.#settings.groupId, topics: [topic] }),
      topicOffsets(this.#admin, topic),
    ]);
    const committed = offsets.find((t) => t.topic === topic)?.partitions
      .find((p) => p.partition === partition);
    const logStart = Number(ends.find((p) => p.partition === partition)?.low ?? 0);
    const offset = committed === undefined ? null : Number(committed.offset);
    const ledger = PartitionLedger.fromCommit(offset, committed?.metadata ?? null, logStart);
    // Requests still running here from before the partition moved away and back; adopted
    // first, so that skipping to the log start does not pass them.
    for (const running of this.#running.values()) {
      if (running.key === key) ledger.adoptRunning(running.offset, running.deliveries);
    }
    ledger.skipTo(logStart);
    return ledger;
  }

  async #onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const { topic, partition, messages } = batch;
    const key = partitionKey(topic, partition);
    const kind = this.#kinds.get(topic);
    const first = messages[0];
    if (kind === undefined || first === undefined || !this.#open || !this.#assigned.has(key)) {
      return;
    }
    const ledger = await this.#ledger(key);
    // A rebalance (seen by another fetcher) or close() may come during any wait.
    const current = () =>
      this.#open && isRunning() && !isStale() && this.#ledgers.get(key) === ledger;
    let i = 0;
    while (i < messages.length) {
      if (!current()) return;
      const message = messages[i] as KafkaMessage;
      if (this.#needsNoDelivery(key, ledger, message)) {
        resolveOffset(message.offset);
        i++;
        continue;
      }
      while (this.#slots.free === 0) {
        await this.#slots.changed(this.#settings.heartbeatIntervalMs);
        if (!current()) return;
        await heartbeat();
      }
      const round: { message: KafkaMessage; attempt: number }[] = [];
      for (; i < messages.length && this.#slots.free > 0; i++) {
        const next = messages[i] as KafkaMessage;
        if (this.#needsNoDelivery(key, ledger, next)) continue;
        this.#slots.take();
        round.push({ message: next, attempt: ledger.markDelivered(Number(next.offset)) });
      }
      const undo = () => {
        for (const { message: taken } of round) {
          ledger.unmarkDelivered(Number(taken.offset));
          this.#slots.give();
        }
      };
      try {
        // The delivery count must be in Kafka before the request runs, or a crash loses it.
        await this.#committer.commit(key);
      } catch (err) {
        undo();
        throw rejoinError(err);
      }
      if (!current()) {
        undo();
        return;
      }
      resolveOffset((messages[i - 1] as KafkaMessage).offset);
      for (const { message: taken, attempt } of round) {
        this.#deliver(kind, topic, partition, taken, attempt);
      }
    }
  }

  #needsNoDelivery(key: string, ledger: PartitionLedger, message: KafkaMessage): boolean {
    const offset = Number(message.offset);
    return ledger.isDone(offset) || this.#running.has(`${key}@${offset}`);
  }

  #deliver(
    kind: QueueKind,
    topic: string,
    partition: number,
    message: KafkaMessage,
    attempt: number,
  ): void {
    const offset = Number(message.offset);
    const body = message.value?.toString("utf8") ?? "";
    const replyPartition = replyPartitionOf(message);
    // A redelivery may have its result already, in the partition its request named.
    const messageId = attempt > 1 && replyPartition !== undefined ? messageIdOf(body) : null;
    const replyKey = messageId === null ? undefined : `${kind}/${messageId}`;
    if (replyKey !== undefined) this.#replyPartitions.set(replyKey, replyPartition as number);
    const running: Running = {
      key: partitionKey(topic, partition),
      topic,
      partition,
      offset,
      deliveries: attempt,
      replyKey,
    };
    const id = `${running.key}@${offset}`;
    this.#running.set(id, running);
    const sent = sentMicros(message);
    let settled = false;
    const claim = () => {
      if (settled) throw new BrokerError("Cannot settle a Kafka delivery twice");
      if (!this.#connected) {
        throw new BrokerError("Cannot settle a Kafka delivery after its connection closed");
      }
      settled = true;
    };
    const settle = async (send: () => Promise<void>) => {
      claim();
      try {
        await send();
      } catch (err) {
        await this.#finish(id, running, "released");
        throw err;
      }
      await this.#finish(id, running, "done");
    };
    this.#handler({
      kind,
      body,
      attempt,
      complete: (reply) => settle(() => this.#outbox.sendResult(kind, reply, replyPartition)),
      deadLetter: (reason, reply) =>
        settle(async () => {
          const source = `${topic}/${partition}/${offset}`;
          await this.#outbox.sendDeadLetter(kind, body, reason, source, sent);
          if (reply !== undefined) await this.#outbox.sendResult(kind, reply, replyPartition);
        }),
      release: async () => {
        claim();
        await this.#finish(id, running, "released");
      },
    });
  }

  async #finish(id: string, running: Running, outcome: "done" | "released"): Promise<void> {
    if (this.#running.get(id) !== running) return;
    this.#running.delete(id);
    if (running.replyKey !== undefined) this.#replyPartitions.delete(running.replyKey);
    this.#slots.give();
    const ledger = this.#assigned.has(running.key) ? this.#ledgers.get(running.key) : undefined;
    if (ledger === undefined) return; // the partition moved: its new owner delivers it again
    if (outcome === "released") {
      ledger.markReleased(running.offset);
      const from = ledger.lowestWaiting();
      if (this.#open && from !== undefined) {
        this.#consumer.seek({
          topic: running.topic,
          partition: running.partition,
          offset: String(from),
        });
      }
      return;
    }
    ledger.markDone(running.offset);
    await this.#committer.commit(running.key).catch((err) =>
      // The next generation commits it again (see #joined), or the next owner runs it again.
      this.#logger.debug("cannot commit a finished request yet", { error: errorText(err) })
    );
  }
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}

function splitKey(key: string): [string, number] {
  const slash = key.lastIndexOf("/");
  return [key.slice(0, slash), Number(key.slice(slash + 1))];
}

/**
 * The error to throw out of `eachBatch` when a commit failed: the Kafka
 * protocol error itself when it means "rejoin the group" (kafkajs rejoins
 * only for the bare error, not for the one it wrapped it in after retrying),
 * so the consumer rejoins instead of giving up.
 */
function rejoinError(err: unknown): unknown {
  const protocolError = kafkaProtocolError(err);
  return protocolError !== undefined && REJOIN_ERRORS.has(protocolError.type) ? protocolError : err;
}
