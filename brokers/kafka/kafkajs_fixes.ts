/**
 * Works around two kafkajs 2.2.4 problems (kafkajs has had no release since
 * 2023). Both are applied once, when the Kafka module loads.
 *
 * **A 1 ms timer loop per connection.** Each kafkajs connection has a request queue, which after every request
 * schedules a check of its pending requests in `throttledUntil - Date.now()`
 * ms. Unthrottled, `throttledUntil` is `-1`, so the delay is a huge negative
 * number; the runtime turns it into 1 ms (and Deno warns once,
 * `TimeoutNegativeWarning`), and the check schedules the next one: an endless
 * 1 ms timer loop per connection, idle or not (about 475 wake-ups a second per
 * connection, measured on Deno 2.9). kafkajs issues #1556, #1704 and #1751
 * describe it; pull requests #1667, #1755 and #1768 are unmerged.
 *
 * The fix: schedule nothing when no request is pending and the queue is not
 * throttled. Nothing is lost by that: a request that has to wait is queued by
 * `push`, which schedules the check again itself, and a throttle reply sets
 * `throttledUntil` before the queue looks again.
 *
 * **A consumer restarted after a crash joins as a stranger.** When kafkajs
 * gives up on a consumer (it cannot find the group's coordinator while a
 * broker restarts, say) and the consumer is run again, kafkajs joins the group
 * with no member id, as a new member. The coordinator still counts the old
 * member, and holds every join of the group back until the old member's
 * session expires (`sessionTimeoutMs`, 30 s by default): a server serves
 * nothing for that long after the broker is back. kafkajs 2.2.4 has no static
 * membership (KIP-345) and no way to name a member id. The fix: a consumer
 * that joins without a member id, but joined before, asks to join under the
 * id it had, once. A coordinator that still knows the member takes it back at
 * once; one that does not answers `UNKNOWN_MEMBER_ID`, on which kafkajs clears
 * the id and joins afresh, as it would have anyway.
 *
 * @module
 */

// kafkajs publishes no types for its internals; the shapes used are declared below.
// @ts-ignore: a CommonJS module of kafkajs without a declaration file
import RequestQueueModule from "kafkajs/src/network/requestQueue/index.js";
// @ts-ignore: a CommonJS module of kafkajs without a declaration file
import ConsumerGroupModule from "kafkajs/src/consumer/consumerGroup.js";

/** The part of kafkajs's `RequestQueue` that the fix touches. */
interface RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  scheduleCheckPendingRequests(): void;
}

const RequestQueueClass = RequestQueueModule as { prototype: RequestQueue };
const FIXED = Symbol.for("prpc.kafkajs.requestQueueFixed");

/** Applies the fix once per process (the module may be loaded more than once). */
function fixRequestQueue(): void {
  const prototype = RequestQueueClass.prototype as RequestQueue & { [FIXED]?: true };
  if (prototype[FIXED]) return;
  const schedule = prototype.scheduleCheckPendingRequests;
  prototype.scheduleCheckPendingRequests = function (this: RequestQueue): void {
    if (this.pending.length === 0 && this.throttledUntil <= Date.now()) return;
    schedule.call(this);
  };
  prototype[FIXED] = true;
}

/** The part of kafkajs's `ConsumerGroup` (one per run of a consumer) that the fix touches. */
interface ConsumerGroup {
  memberId: string | null;
  /** One per kafkajs consumer, shared by the groups of its runs. */
  instrumentationEmitter: object;
}

/** The member id each kafkajs consumer (by its event emitter) last joined under. */
const lastMemberIds = new WeakMap<object, string>();
/** The runs that were offered their consumer's last member id already. */
const offered = new WeakSet<object>();

/** Applies the fix once per process; does nothing if kafkajs's internals are not as expected. */
function fixRejoin(): void {
  const prototype = (ConsumerGroupModule as { prototype: Record<symbol, unknown> }).prototype;
  const join = Object.getOwnPropertySymbols(prototype).find((symbol) =>
    symbol.description === "private:ConsumerGroup:join"
  );
  const original = join === undefined ? undefined : prototype[join];
  if (join === undefined || typeof original !== "function" || prototype[FIXED]) return;
  prototype[join] = async function (this: ConsumerGroup): Promise<void> {
    const consumer = this.instrumentationEmitter;
    // Offered once per run: a coordinator that no longer knows the member answers
    // UNKNOWN_MEMBER_ID, kafkajs clears the id and joins again, and then joins afresh.
    if (this.memberId === null && !offered.has(this)) {
      offered.add(this);
      this.memberId = lastMemberIds.get(consumer) ?? null;
    }
    try {
      await (original as (this: ConsumerGroup) => Promise<void>).call(this);
    } catch (err) {
      if ((err as { type?: unknown }).type === "UNKNOWN_MEMBER_ID") lastMemberIds.delete(consumer);
      throw err;
    }
    if (this.memberId !== null) lastMemberIds.set(consumer, this.memberId);
  };
  // A member that left the group is gone: the next run joins afresh. A leave that failed (the
  // broker is away, as when kafkajs gives up on a consumer) leaves the member in the group.
  const leave = (prototype as { leave?: unknown }).leave;
  if (typeof leave === "function") {
    (prototype as { leave: unknown }).leave = async function (this: ConsumerGroup) {
      const left = await leave.call(this);
      lastMemberIds.delete(this.instrumentationEmitter);
      return left;
    };
  }
  prototype[FIXED] = true;
}

fixRequestQueue();
fixRejoin();
