/**
 * The fuzz part of the conformance suite: thousands of seeded hostile requests
 * thrown at a server through the broker under test, and hostile results thrown
 * at a client's inbox. Each run is reproducible from its seed (in the test
 * name; `PRPC_FUZZ_SEED=<seed>` runs another), and bounded to a few seconds.
 *
 * What must hold afterwards: every request with a readable `message_id` has
 * its result (the exact value for the valid calls among the garbage), every
 * other one is on the dead-letter queue and nothing else is, the server still
 * runs `maxWorkers` calls at once, nothing is left unsettled in the queue,
 * and nothing was logged as an error.
 */

import {
  type Broker,
  type BrokerKind,
  CallTimeoutError,
  connectBroker,
  type DeadLetter,
  type Delivery,
  type QueueKind,
} from "../mod.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { gateFunction, waitFor } from "./support/async.ts";
import {
  echo,
  FuzzRandom,
  type FuzzRequest,
  fuzzSeed,
  GARBAGE_KINDS,
  garbageReplies,
  generateRequests,
  REPLY_KINDS,
  replyForCall,
  summ,
} from "./support/fuzz.ts";
import type { ConformanceTest, Harness } from "./support/harness.ts";
import { RecordingLogger } from "./support/logger.ts";

/**
 * Hostile requests per run, half on each queue: as many as each broker takes
 * in a few seconds. `PRPC_FUZZ_REQUESTS` sets another number for every broker.
 */
const REQUESTS_PER_RUN: Record<BrokerKind, number> = {
  memory: 2_000,
  redis: 2_000,
  amqp: 1_000,
  kafka: 600,
};

/** Worker slots of the fuzzed server; the capacity check needs all of them at once. */
const MAX_WORKERS = 4;
/** How long one wait for the server's answers may take before the run fails. */
const ANSWER_TIMEOUT_MS = 20_000;
/** Sentinel requests per queue kind in the final check: at least one per partition on Kafka. */
const SENTINELS_PER_KIND = 8;
/** Calls of the inbox fuzz that get a right or a hostile result of their own: each kind twice. */
const ANSWERED_CALLS = 2 * REPLY_KINDS;
/** Calls of the inbox fuzz whose deliveries carry garbage to the inbox (each kind thrice); aborted after. */
const CARRIER_CALLS = 3 * GARBAGE_KINDS;

/** The number of hostile requests of one run on `broker`. */
function requestsPerRun(broker: BrokerKind): number {
  const text = Deno.env.get("PRPC_FUZZ_REQUESTS")?.trim();
  if (text === undefined || text === "") return REQUESTS_PER_RUN[broker];
  const count = Number(text);
  if (!Number.isInteger(count) || count < 2) {
    throw new Error(`Cannot use PRPC_FUZZ_REQUESTS ${JSON.stringify(text)}: expected 2 or more`);
  }
  return count;
}

/**
 * Bare broker connections of one test, each with a logger of its own (so
 * that an error the module logs is seen), closed at the end.
 */
class BareBrokers {
  readonly logger = new RecordingLogger();
  readonly #brokers: Broker[] = [];

  constructor(readonly h: Harness) {}

  /** A new connection, used the way a client in another language would. */
  async open(): Promise<Broker> {
    const broker = await connectBroker(this.h.target.broker, {
      url: this.h.url,
      logger: this.logger,
    });
    this.#brokers.push(broker);
    return broker;
  }

  /** Closes every connection, then throws the first failure. */
  async close(): Promise<void> {
    const failures: unknown[] = [];
    for (const broker of this.#brokers) {
      await broker.close().catch((err) => failures.push(err));
    }
    if (failures.length > 0) throw failures[0];
  }
}

/**
 * Proves that the server still has all `MAX_WORKERS` slots: that many calls to
 * `gate` must run at once before any returns; a leaked slot makes them time out.
 */
async function assertFullCapacity(h: Harness): Promise<void> {
  const client = await h.client({ timeoutMs: 5_000 });
  const calls = Array.from({ length: MAX_WORKERS }, () => client.call("gate", [MAX_WORKERS]));
  assertEquals(await Promise.all(calls), Array(MAX_WORKERS).fill(MAX_WORKERS));
}

/** A request in a few words, for failure messages. */
function described(request: FuzzRequest): string {
  const body = request.body.length > 160 ? `${request.body.slice(0, 160)}…` : request.body;
  return `[${request.category}: ${request.what}] ${JSON.stringify(body)}`;
}

/** Why a result does not match what the request must get, or `undefined` when it does. */
function resultProblem(request: FuzzRequest, body: string): string | undefined {
  let result: Record<string, unknown>;
  try {
    result = JSON.parse(body);
  } catch {
    return `the result is not JSON: ${body.slice(0, 200)}`;
  }
  if (result.message_id !== request.messageId) {
    return `the result has message_id ${JSON.stringify(result.message_id)}`;
  }
  const expected = request.expected;
  const info = result.exception_info;
  switch (expected.outcome) {
    case "result": {
      if (info !== null) return `expected the result, got exception_info ${JSON.stringify(info)}`;
      const got = JSON.stringify(result.result);
      if (got !== expected.resultJson) {
        return `expected result ${expected.resultJson.slice(0, 200)}, got ${got?.slice(0, 200)}`;
      }
      return undefined;
    }
    case "error":
      if (typeof info !== "string" || !info.startsWith(expected.exceptionPrefix)) {
        return `expected exception_info starting ${JSON.stringify(expected.exceptionPrefix)}, got ${
          JSON.stringify(typeof info === "string" ? info.slice(0, 300) : info)
        }`;
      }
      if (result.result !== null) {
        return `an error result with result ${JSON.stringify(result.result)}`;
      }
      return undefined;
    case "dead":
      return "it has no readable message_id, yet a result was found for it";
  }
}

/** Fails with the first problems found, and the seed that reproduces them. */
function assertNoProblems(problems: string[], what: string, seed: number): void {
  if (problems.length === 0) return;
  throw new Error(
    `${problems.length} ${what} (seed ${seed}; PRPC_FUZZ_SEED=${seed} reproduces it):\n` +
      problems.slice(0, 15).join("\n"),
  );
}

/** Reads the stored results of `ids`, with one request where the broker can. */
function readStoredResults(
  broker: Broker,
  queue: string,
  ids: readonly string[],
): Promise<(string | null)[]> {
  if (broker.readResults !== undefined) return broker.readResults(queue, "raw", ids);
  return Promise.all(ids.map((id) => broker.readResult(queue, "raw", id)));
}

/** Publishes every body, many at a time (order does not matter, and batching brokers batch them). */
async function publishAll(
  broker: Broker,
  queue: string,
  kind: QueueKind,
  requests: readonly FuzzRequest[],
): Promise<void> {
  const chunk = 100;
  for (let i = 0; i < requests.length; i += chunk) {
    await Promise.all(
      requests.slice(i, i + chunk).map((request) => broker.publish(queue, kind, request.body)),
    );
  }
}

/**
 * Waits until `poll` leaves nothing missing; on timeout, fails with what is
 * still missing and the seed.
 */
async function waitForAll(
  what: string,
  seed: number,
  missing: () => FuzzRequest[],
  poll: () => Promise<void>,
): Promise<void> {
  try {
    await waitFor(
      async () => {
        await poll();
        return missing().length === 0;
      },
      what,
      { timeoutMs: ANSWER_TIMEOUT_MS, intervalMs: 20 },
    );
  } catch (err) {
    const left = missing();
    throw new Error(
      `${
        err instanceof Error ? err.message : err
      }: ${left.length} without an answer (seed ${seed}):\n` +
        left.slice(0, 15).map(described).join("\n"),
    );
  }
}

/**
 * Matches the dead letters to the requests without a readable `message_id`,
 * exactly: each such request once (by queue and body, with its reason), and no
 * other entry.
 */
function deadLetterProblems(
  entries: readonly DeadLetter[],
  expected: readonly { kind: QueueKind; request: FuzzRequest }[],
): string[] {
  const unmatched = new Map<string, { kind: QueueKind; request: FuzzRequest }[]>();
  for (const item of expected) {
    const key = `${item.kind}\n${item.request.body}`;
    unmatched.set(key, [...(unmatched.get(key) ?? []), item]);
  }
  const problems: string[] = [];
  for (const entry of entries) {
    const key = `${entry.kind}\n${entry.body}`;
    const candidates = unmatched.get(key);
    const item = candidates?.shift();
    if (item === undefined) {
      problems.push(
        `an unexpected dead letter (${entry.kind}, ${entry.reason}): ${
          JSON.stringify(entry.body.slice(0, 160))
        }`,
      );
      continue;
    }
    const expectation = item.request.expected;
    if (expectation.outcome === "dead" && !entry.reason.includes(expectation.reasonIncludes)) {
      problems.push(
        `dead letter reason ${JSON.stringify(entry.reason.slice(0, 200))} lacks ${
          JSON.stringify(expectation.reasonIncludes)
        }: ${described(item.request)}`,
      );
    }
  }
  for (const items of unmatched.values()) {
    for (const item of items) {
      problems.push(`not on the dead-letter queue (${item.kind}): ${described(item.request)}`);
    }
  }
  return problems;
}

/**
 * Checks that nothing was left in the request queues: a fresh consumer
 * gets sentinel requests published now, and nothing before them. Brokers
 * deliver what was left unsettled (handed back, or not acknowledged) before
 * anything published later: memory and RabbitMQ put it back at the front,
 * Kafka delivers from the group's committed offset. On Redis, entries left
 * pending with a stopped consumer are only taken over after the recover
 * interval, so this check cannot see them; `redis_fuzz_test.ts` reads `XPENDING`.
 */
async function assertNothingLeftInQueues(h: Harness, bare: BareBrokers): Promise<void> {
  const publisher = await bare.open();
  const consumer = await bare.open();
  const sentinels = new Map<string, QueueKind>();
  for (const kind of ["native", "raw"] as const) {
    for (let i = 0; i < SENTINELS_PER_KIND; i++) {
      sentinels.set(
        JSON.stringify({
          func_name: "fuzz_sentinel",
          func_args: [],
          message_id: crypto.randomUUID(),
        }),
        kind,
      );
    }
  }
  const waiting = new Set(sentinels.keys());
  const leftovers: string[] = [];
  const settling: Promise<void>[] = [];
  const subscription = await consumer.consume(h.queue, (delivery: Delivery) => {
    if (!waiting.delete(delivery.body)) {
      leftovers.push(
        `${delivery.kind} (attempt ${delivery.attempt}): ${delivery.body.slice(0, 160)}`,
      );
    }
    const messageId = sentinels.has(delivery.body)
      ? JSON.parse(delivery.body).message_id as string
      : crypto.randomUUID();
    settling.push(
      delivery.complete({ messageId, body: JSON.stringify({ message_id: messageId }) }),
    );
  }, { prefetch: MAX_WORKERS });
  for (const [body, kind] of sentinels) await publisher.publish(h.queue, kind, body);
  await waitFor(() => waiting.size === 0, "the sentinels to come through", { timeoutMs: 30_000 });
  await subscription.close();
  await Promise.all(settling);
  assertEquals(leftovers, [], "deliveries left in the queues before the sentinels");
}

/** Client log lines that say a reply was dropped: garbage, or for a call nobody waits for. */
function droppedReplies(h: Harness): number {
  return h.logger.lines.filter((line) =>
    line.message === "ignored a reply that is not a prpc result" ||
    line.message === "ignored a result nobody waits for"
  ).length;
}

/**
 * Declares the fuzz tests.
 *
 * @param test Declares one test with a harness.
 */
export function fuzzConformance(test: ConformanceTest): void {
  const seed = fuzzSeed();

  test(`fuzz (seed ${seed}): hostile requests on both queues are each answered or set aside, and the server keeps every slot`, async (h) => {
    const bare = new BareBrokers(h);
    try {
      const app = await h.server((app) => {
        app.register(summ);
        app.register(echo);
        app.register("gate", gateFunction());
      }, { maxWorkers: MAX_WORKERS });
      const broker = await bare.open();
      // Native requests name this inbox; their results arrive here, by message_id.
      const nativeResults = new Map<string, string[]>();
      const strangeReplies: string[] = [];
      const inbox = await broker.openInbox((body) => {
        let id: unknown;
        try {
          id = JSON.parse(body).message_id;
        } catch {
          id = undefined;
        }
        if (typeof id !== "string") strangeReplies.push(body.slice(0, 200));
        else nativeResults.set(id, [...(nativeResults.get(id) ?? []), body]);
      });

      const count = requestsPerRun(h.target.broker);
      const random = new FuzzRandom(seed);
      const raw = generateRequests(random.fork(), Math.ceil(count / 2));
      const native = generateRequests(random.fork(), Math.floor(count / 2), {
        replyTo: inbox.address,
      });
      await publishAll(broker, h.queue, "raw", raw);
      await publishAll(broker, h.queue, "native", native);

      // Every request with a readable message_id is answered: raw ones by a stored result,
      // native ones in the inbox.
      const rawResults = new Map<string, string>();
      const rawAnswered = raw.filter((request) => request.messageId !== null);
      await waitForAll(
        "the results of the raw requests",
        seed,
        () => rawAnswered.filter((request) => !rawResults.has(request.messageId!)),
        async () => {
          const ids = rawAnswered.map((request) => request.messageId!)
            .filter((id) => !rawResults.has(id));
          for (let i = 0; i < ids.length; i += 500) {
            const part = ids.slice(i, i + 500);
            const bodies = await readStoredResults(broker, h.queue, part);
            part.forEach((id, j) => {
              const body = bodies[j];
              if (body !== null && body !== undefined) rawResults.set(id, body);
            });
          }
        },
      );
      const nativeAnswered = native.filter((request) => request.messageId !== null);
      await waitForAll(
        "the results of the native requests",
        seed,
        () => nativeAnswered.filter((request) => !nativeResults.has(request.messageId!)),
        () => Promise.resolve(),
      );
      const problems: string[] = [];
      for (const request of rawAnswered) {
        const problem = resultProblem(request, rawResults.get(request.messageId!)!);
        if (problem !== undefined) problems.push(`raw: ${problem}: ${described(request)}`);
      }
      for (const request of nativeAnswered) {
        const bodies = nativeResults.get(request.messageId!)!;
        const problem = resultProblem(request, bodies[0]!);
        if (problem !== undefined) problems.push(`native: ${problem}: ${described(request)}`);
        // At-least-once: a second answer may come, but never a different one.
        if (bodies.some((body) => body !== bodies[0])) {
          problems.push(`native: answered differently twice: ${described(request)}`);
        }
      }
      assertNoProblems(problems, "requests got the wrong result", seed);
      assertEquals(strangeReplies, [], "inbox replies without a message_id");

      // Every request without one is on the dead-letter queue, and nothing else is.
      const dead = [
        ...raw.filter((request) => request.messageId === null).map((request) => ({
          kind: "raw" as const,
          request,
        })),
        ...native.filter((request) => request.messageId === null).map((request) => ({
          kind: "native" as const,
          request,
        })),
      ];
      const readDead = () => broker.readDeadLetters(h.queue, dead.length + 100);
      try {
        await waitFor(async () => (await readDead()).length >= dead.length, "the dead letters", {
          timeoutMs: ANSWER_TIMEOUT_MS,
          intervalMs: 50,
        });
      } catch (err) {
        const problems = deadLetterProblems(await readDead(), dead);
        assertNoProblems(problems, `dead-letter problems after ${err}`, seed);
        throw err;
      }

      await assertFullCapacity(h);
      await app.stop();
      // Read after the stop: nothing set aside late.
      assertNoProblems(deadLetterProblems(await readDead(), dead), "dead-letter problems", seed);
      await assertNothingLeftInQueues(h, bare);

      assertEquals(h.logger.at("error"), [], "errors logged by the server");
      assertEquals(bare.logger.at("error"), [], "errors logged by the bare connections");
      assertEquals(({} as Record<string, unknown>).polluted, undefined, "Object.prototype");
    } finally {
      await bare.close();
    }
  });

  test(`fuzz (seed ${seed}): a client drops garbage in its inbox and each call gets its own result or a clear error`, async (h) => {
    const bare = new BareBrokers(h);
    try {
      const random = new FuzzRandom(seed).fork();
      // The test is the server: a bare consumer that holds every request until all are in.
      const hostile = await bare.open();
      const deliveries: Delivery[] = [];
      await hostile.consume(h.queue, (delivery) => deliveries.push(delivery), {
        prefetch: ANSWERED_CALLS + CARRIER_CALLS,
      });
      const client = await h.client({ timeoutMs: 10_000 });
      type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };
      const settle = (call: Promise<unknown>): Promise<Outcome> =>
        call.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }));
      const answered = Array.from(
        { length: ANSWERED_CALLS },
        (_, i) => settle(client.call("answered", [i])),
      );
      // A delivery settles once, with one body: garbage travels on calls of their own,
      // which are aborted once the client has dropped it all.
      const aborts = Array.from({ length: CARRIER_CALLS }, () => new AbortController());
      const carriers = aborts.map((abort, i) =>
        settle(client.call("carrier", [i], {}, { signal: abort.signal }))
      );
      await waitFor(
        () => deliveries.length >= ANSWERED_CALLS + CARRIER_CALLS,
        "every request at the hostile server",
      );
      const requests = deliveries.map((delivery) => ({
        delivery,
        request: JSON.parse(delivery.body),
      }));

      const garbage = garbageReplies(random, CARRIER_CALLS);
      const carried = requests.filter(({ request }) => request.func_name === "carrier");
      for (const [i, { delivery, request }] of carried.entries()) {
        await delivery.complete({
          messageId: request.message_id,
          body: garbage[i]!.body,
          replyTo: request.reply_to,
        });
      }
      await waitFor(
        () => droppedReplies(h) >= CARRIER_CALLS,
        `the client to drop all ${CARRIER_CALLS} garbage replies`,
      );
      for (const abort of aborts) abort.abort(new Error("its garbage was delivered"));

      const plans: {
        index: number;
        what: string;
        expected: ReturnType<typeof replyForCall>["expected"];
      }[] = [];
      for (const { delivery, request } of requests) {
        if (request.func_name !== "answered") continue;
        const reply = replyForCall(random, request.message_id, request.func_name, plans.length);
        plans.push({ index: request.func_args[0], what: reply.what, expected: reply.expected });
        await delivery.complete({
          messageId: request.message_id,
          body: reply.body,
          replyTo: request.reply_to,
        });
      }
      const outcomes = await Promise.all(answered);
      const problems: string[] = [];
      for (const plan of plans) {
        const outcome = outcomes[plan.index]!;
        const expected = plan.expected;
        if (expected.outcome === "resolves") {
          if (!outcome.ok) problems.push(`${plan.what}: rejected with ${outcome.error}`);
          else if (JSON.stringify(outcome.value) !== expected.resultJson) {
            problems.push(
              `${plan.what}: resolved with ${JSON.stringify(outcome.value)?.slice(0, 200)}`,
            );
          }
        } else if (outcome.ok) {
          problems.push(`${plan.what}: resolved, expected ${expected.errorName}`);
        } else {
          const error = outcome.error;
          if (
            !(error instanceof Error) || error.name !== expected.errorName ||
            !error.message.includes(expected.includes)
          ) {
            problems.push(
              `${plan.what}: expected ${expected.errorName} with ${
                JSON.stringify(expected.includes)
              }, got ${error}`,
            );
          }
        }
      }
      assertNoProblems(problems, "calls came to the wrong end", seed);
      for (const outcome of await Promise.all(carriers)) {
        assert(
          !outcome.ok && outcome.error instanceof CallTimeoutError,
          `a carrier call: ${JSON.stringify(outcome)}`,
        );
        assert(outcome.error.message.includes("aborted"), outcome.error.message);
      }
      assertEquals(client.pendingCalls, 0);
      assertEquals(
        droppedReplies(h),
        CARRIER_CALLS,
        "each garbage reply dropped once, nothing else",
      );
      assertEquals(h.logger.at("error"), [], "errors logged by the client");
      assertEquals(bare.logger.at("error"), [], "errors logged by the hostile server's connection");
      assertEquals(({} as Record<string, unknown>).polluted, undefined, "Object.prototype");
    } finally {
      await bare.close();
    }
  });
}
