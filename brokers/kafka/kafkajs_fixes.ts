/**
 * Works around a kafkajs 2.2.4 bug that costs CPU on every connection, for as
 * long as the connection is open (kafkajs has had no release since 2023).
 *
 * Each kafkajs connection has a request queue, which after every request
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
 * @module
 */

// kafkajs publishes no types for its internals; the shape used is declared below.
// @ts-ignore: a CommonJS module of kafkajs without a declaration file
import RequestQueueModule from "kafkajs/src/network/requestQueue/index.js";

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

fixRequestQueue();
