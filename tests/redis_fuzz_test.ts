/**
 * Redis fuzz: what only a raw Redis connection can write. Request entries
 * whose `message` holds invalid UTF-8 (stray continuation bytes, overlong
 * forms, encoded surrogates, sequences past U+10FFFF, cut-off sequences),
 * entries without a `message` field, with several fields or two `message`
 * fields, and entries declaring absurd `prpc_deliveries`. Seeded (the seed is
 * in the test name; `PRPC_FUZZ_SEED=<seed>` runs another).
 *
 * Afterwards every entry must be answered (`prpc_feedback_raw_{queue}_{id}`,
 * `prpc_feedback_{queue}_{id}`) or on `prpc_dead_{queue}` (its body exactly as
 * received), nothing may stay pending (`XPENDING`) or in the request streams,
 * the server must still run `maxWorkers` calls at once, and nothing may be
 * logged as an error.
 */

import { Buffer } from "node:buffer";
import { AppServer, Client, type QueueKind } from "../mod.ts";
import { assertEquals } from "./support/assert.ts";
import { gateFunction, waitFor } from "./support/async.ts";
import { echo, FuzzRandom, fuzzSeed, summ } from "./support/fuzz.ts";
import { RecordingLogger } from "./support/logger.ts";
import { PlainRedis, redisForTests } from "./support/redis_server.ts";

const redis = await redisForTests();

/** Stream entries per run. */
const ENTRIES = 1_000;
const MAX_WORKERS = 4;
const GROUP = "prpc_group_consumers";

/** Byte sequences that are not UTF-8, each with what it is. */
const INVALID_UTF8: readonly [string, readonly number[]][] = [
  ["a lone continuation byte", [0x80]],
  ["0xff", [0xff]],
  ["0xfe 0xfe", [0xfe, 0xfe]],
  ["an overlong '/'", [0xc0, 0xaf]],
  ["an overlong three-byte form", [0xe0, 0x80, 0xaf]],
  ["an encoded high surrogate", [0xed, 0xa0, 0x80]],
  ["an encoded surrogate pair", [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]],
  ["past U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
  ["a five-byte form", [0xf8, 0x88, 0x80, 0x80, 0x80]],
  ["a cut-off three-byte sequence", [0xe2, 0x82]],
  ["a cut-off two-byte sequence", [0xc3]],
  ["DEL and 0xff", [0x7f, 0xff]],
];

/** What must become of one entry. */
interface EntryCase {
  readonly what: string;
  readonly kind: QueueKind;
  /** Field-value pairs for `XADD`, as text or raw bytes. */
  readonly fields: readonly (string | Uint8Array)[];
  /** Results that must be stored, by canonical `message_id`. */
  readonly answers: readonly {
    messageId: string;
    resultJson?: string;
    exceptionPrefix?: string;
  }[];
  /** `message_id`s that must get no result (a second `message` field is ignored). */
  readonly unanswered: readonly string[];
  /** The dead letter it must become: its exact body bytes and a part of its reason. */
  readonly dead?: { body: Uint8Array; reasonIncludes: string };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 text and raw bytes, joined. */
function bytes(...parts: (string | readonly number[])[]): Uint8Array {
  const chunks = parts.map((part) =>
    typeof part === "string" ? encoder.encode(part) : Uint8Array.from(part)
  );
  const joined = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    joined.set(chunk, at);
    at += chunk.length;
  }
  return joined;
}

/**
 * The value a server reads from bytes: invalid UTF-8 replaced with U+FFFD, as
 * every UTF-8 decoder of the platform does (WHATWG's rules).
 */
function readAs(body: Uint8Array): Record<string, unknown> {
  return JSON.parse(decoder.decode(body));
}

/** One entry of a seeded kind. */
function entryCase(r: FuzzRandom): EntryCase {
  const kind = r.pick(["native", "raw"] as const);
  const id = r.uuid();
  const [invalidWhat, invalid] = r.pick(INVALID_UTF8);
  const answered = (
    what: string,
    body: Uint8Array,
    answer: { resultJson?: string; exceptionPrefix?: string },
    more: (string | Uint8Array)[] = [],
  ): EntryCase => ({
    what,
    kind,
    fields: ["message", body, ...more],
    answers: [{ messageId: id, ...answer }],
    unanswered: [],
  });
  const setAside = (what: string, body: Uint8Array, reasonIncludes: string): EntryCase => ({
    what,
    kind,
    fields: ["message", body],
    answers: [],
    unanswered: [],
    dead: { body, reasonIncludes },
  });
  const idField = `"message_id":"${id}"`;
  switch (r.int(0, 13)) {
    case 0:
    case 1: {
      const body = bytes(`{"func_name":"echo",${idField},"func_args":["a`, invalid, `b"]}`);
      const value = (readAs(body).func_args as unknown[])[0];
      return answered(`${invalidWhat} in an argument`, body, {
        resultJson: JSON.stringify(value),
      });
    }
    case 2: {
      const body = bytes(
        `{"func_name":"echo",${idField},"func_kwargs":{"value":{"`,
        invalid,
        `":1}}}`,
      );
      const value = (readAs(body).func_kwargs as Record<string, unknown>).value;
      return answered(`${invalidWhat} in a key of an argument`, body, {
        resultJson: JSON.stringify(value),
      });
    }
    case 3:
      return answered(
        `${invalidWhat} in func_name`,
        bytes(`{"func_name":"summ`, invalid, `",${idField},"func_args":[1,2]}`),
        { exceptionPrefix: "UnknownFunctionError: " },
      );
    case 4:
      return answered(
        `${invalidWhat} in a keyword name`,
        bytes(
          `{"func_name":"summ",${idField},"func_args":[1,2],"func_kwargs":{"`,
          invalid,
          `":1}}`,
        ),
        { exceptionPrefix: "ArgumentError: summ() got an unexpected keyword argument" },
      );
    case 5:
      return answered(
        `${invalidWhat} in date_create_message`,
        bytes(
          `{"func_name":"summ",${idField},"func_args":[1,2],"date_create_message":"`,
          invalid,
          `"}`,
        ),
        { resultJson: "3.5" },
      );
    case 6: {
      const at = r.int(1, 35);
      return setAside(
        `${invalidWhat} in message_id`,
        bytes(
          `{"func_name":"summ","func_args":[1,2],"message_id":"${id.slice(0, at)}`,
          invalid,
          `${id.slice(at + 1)}"}`,
        ),
        "field message_id must be a UUID",
      );
    }
    case 7:
      return setAside(
        `${invalidWhat} between tokens`,
        bytes(`{"func_name":"summ",`, invalid, `${idField},"func_args":[1,2]}`),
        "message is not JSON",
      );
    case 8: {
      const noise = Array.from({ length: r.int(1, 64) }, () => r.pick([0x00, r.int(0x80, 0xff)]));
      return setAside("random high bytes", bytes([0xff], noise), "message is not JSON");
    }
    case 9: {
      const more = r.pick([
        ["other", "x"],
        ["prpc_deliveries", r.pick(["abc", "-5", "1e400", "0", "9007199254740993", ""])],
        ["message_id", r.uuid()],
        [encoder.encode("\u00e9"), Uint8Array.from(invalid)],
      ]);
      return answered(
        `several fields (${typeof more[0] === "string" ? more[0] : "bytes"})`,
        bytes(`{"func_name":"summ",${idField},"func_args":[2,2]}`),
        { resultJson: "4.5" },
        more,
      );
    }
    case 10: {
      const second = r.uuid();
      return {
        what: "two message fields: the first counts",
        kind,
        fields: [
          "message",
          `{"func_name":"summ",${idField},"func_args":[3,3]}`,
          "message",
          `{"func_name":"summ","message_id":"${second}","func_args":[4,4]}`,
        ],
        answers: [{ messageId: id, resultJson: "6.5" }],
        unanswered: [second],
      };
    }
    case 11: {
      // The delivery count an entry declares is added to Redis's own: far past maxDeliveries.
      const declared = r.pick(["5", "99", "4294967296", "9007199254740991"]);
      const attempt = Number(declared) + 1;
      return {
        what: `prpc_deliveries ${declared}`,
        kind,
        fields: [
          "message",
          `{"func_name":"summ",${idField},"func_args":[1,1]}`,
          "prpc_deliveries",
          declared,
        ],
        answers: [{
          messageId: id,
          exceptionPrefix:
            `ProtocolError: the message was set aside: delivered ${attempt} times without completing`,
        }],
        unanswered: [],
        dead: {
          body: bytes(`{"func_name":"summ",${idField},"func_args":[1,1]}`),
          reasonIncludes: `delivered ${attempt} times`,
        },
      };
    }
    case 12: {
      const name = r.pick(["MESSAGE", "msg", "body", " message", "message "]);
      const value = `{"func_name":"summ",${idField},"func_args":[1,2]}`;
      return {
        what: `no message field, only ${JSON.stringify(name)}`,
        kind,
        fields: [name, value],
        answers: [],
        unanswered: [id],
        dead: {
          body: encoder.encode(JSON.stringify({ [name]: value })),
          reasonIncludes: 'has no field "message"',
        },
      };
    }
    default:
      return setAside("an empty message", new Uint8Array(), "message is not JSON");
  }
}

/** The field values of a stream entry read as bytes, by name (the first of repeated names). */
function fieldsOf(flat: Buffer[]): Map<string, Buffer> {
  const fields = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!.toString("latin1");
    if (!fields.has(name)) fields.set(name, flat[i + 1]!);
  }
  return fields;
}

const seed = fuzzSeed();

/** What a test works with: its queue, a plain connection and the server's logger. */
interface FuzzSetup {
  queue: string;
  plain: PlainRedis;
  logger: RecordingLogger;
  app: AppServer;
}

/**
 * Runs `body` with a server on a queue of its own: `summ`, `echo` and `gate`,
 * `maxWorkers` 4, and the default heartbeat and recover intervals, so that no
 * take-over within the test can hide an entry a server left pending.
 */
async function withFuzzServer(body: (setup: FuzzSetup) => Promise<void>): Promise<void> {
  const queue = `fuzz_${crypto.randomUUID().slice(0, 8)}`;
  const plain = new PlainRedis(redis.url ?? "");
  const logger = new RecordingLogger();
  const app = new AppServer({
    broker: "redis",
    url: redis.url,
    queue,
    handleSignals: false,
    logger,
    maxWorkers: MAX_WORKERS,
  });
  app.register(summ);
  app.register(echo);
  app.register("gate", gateFunction());
  try {
    await app.start();
    await body({ queue, plain, logger, app });
  } finally {
    await app.stop({ graceMs: 0 });
    await plain.close();
  }
}

/** Adds an entry with a plain `XADD`, its values as text or raw bytes. */
async function addEntry(
  plain: PlainRedis,
  queue: string,
  kind: QueueKind,
  fields: readonly (string | Uint8Array)[],
): Promise<void> {
  const stream = kind === "native" ? `prpc_${queue}` : `prpc_raw_${queue}`;
  const values = fields.map((value) => typeof value === "string" ? value : Buffer.from(value));
  await plain.redis.xadd(stream, "*", ...values);
}

/** The dead letters of a queue with their fields as bytes. */
async function deadLetters(
  plain: PlainRedis,
  queue: string,
): Promise<{ kind: string; body: Buffer; reason: string }[]> {
  const entries = await plain.redis.xrangeBuffer(`prpc_dead_${queue}`, "-", "+");
  return entries.map(([, flat]) => {
    const fields = fieldsOf(flat);
    return {
      kind: fields.get("kind")?.toString() ?? "",
      body: fields.get("body") ?? Buffer.alloc(0),
      reason: fields.get("reason")?.toString() ?? "",
    };
  });
}

Deno.test({
  name:
    `redis fuzz (seed ${seed}): invalid UTF-8 and odd stream entries are each answered or set aside, and none stays pending`,
  ignore: redis.ignore !== undefined,
  fn: () =>
    withFuzzServer(async ({ queue, plain, logger, app }) => {
      const r = new FuzzRandom(seed).fork();
      const cases = Array.from({ length: ENTRIES }, () => entryCase(r));
      for (let i = 0; i < cases.length; i += 100) {
        await Promise.all(
          cases.slice(i, i + 100).map((entry) => addEntry(plain, queue, entry.kind, entry.fields)),
        );
      }

      // Every answer is stored.
      const resultKey = (kind: QueueKind, id: string) =>
        `${kind === "native" ? `prpc_feedback_${queue}` : `prpc_feedback_raw_${queue}`}_${id}`;
      const answers = cases.flatMap((entry) =>
        entry.answers.map((answer) => ({
          entry,
          answer,
          key: resultKey(entry.kind, answer.messageId),
        }))
      );
      const stored = new Map<string, string>();
      try {
        await waitFor(
          async () => {
            const missing = answers.filter(({ key }) => !stored.has(key));
            if (missing.length === 0) return true;
            const bodies = await plain.redis.mget(missing.map(({ key }) => key));
            missing.forEach(({ key }, i) => {
              const body = bodies[i];
              if (body !== null && body !== undefined) stored.set(key, body);
            });
            return stored.size === answers.length;
          },
          "every answer",
          { timeoutMs: 20_000, intervalMs: 20 },
        );
      } catch (err) {
        const missing = answers.filter(({ key }) => !stored.has(key)).slice(0, 15);
        throw new Error(
          `${err} (seed ${seed}):\n${
            missing.map(({ entry }) => `${entry.kind}: ${entry.what}`).join("\n")
          }`,
        );
      }
      const problems: string[] = [];
      for (const { entry, answer, key } of answers) {
        const result = JSON.parse(stored.get(key)!);
        const where = `${entry.kind}: ${entry.what}`;
        if (result.message_id !== answer.messageId) {
          problems.push(`${where}: message_id ${result.message_id}`);
        }
        if (answer.resultJson !== undefined) {
          if (
            result.exception_info !== null || JSON.stringify(result.result) !== answer.resultJson
          ) {
            problems.push(
              `${where}: expected ${answer.resultJson}, got ${
                JSON.stringify(result.result)
              } / ${result.exception_info}`,
            );
          }
        } else if (
          typeof result.exception_info !== "string" ||
          !result.exception_info.startsWith(answer.exceptionPrefix!)
        ) {
          problems.push(
            `${where}: expected ${answer.exceptionPrefix}, got ${result.exception_info}`,
          );
        }
      }

      const expectedDead = cases.filter((entry) => entry.dead !== undefined);
      await waitFor(
        async () => (await plain.redis.xlen(`prpc_dead_${queue}`)) >= expectedDead.length,
        `${expectedDead.length} dead letters`,
        { timeoutMs: 20_000, intervalMs: 20 },
      );

      // Full capacity: maxWorkers calls at once.
      const client = await Client.connect({
        broker: "redis",
        url: redis.url,
        queue,
        logger,
        timeoutMs: 5_000,
      });
      try {
        const gates = Array.from({ length: MAX_WORKERS }, () => client.call("gate", [MAX_WORKERS]));
        assertEquals(await Promise.all(gates), Array(MAX_WORKERS).fill(MAX_WORKERS));
      } finally {
        await client.close();
      }

      // Nothing pending, nothing left in the request streams, while the server runs and after.
      const streams = [`prpc_${queue}`, `prpc_raw_${queue}`];
      for (const stream of streams) {
        const [pending] = await plain.redis.xpending(stream, GROUP) as [number];
        assertEquals(pending, 0, `entries pending on ${stream}`);
        assertEquals(await plain.redis.xlen(stream), 0, `entries left on ${stream}`);
      }
      await app.stop();
      for (const stream of streams) {
        const [pending] = await plain.redis.xpending(stream, GROUP) as [number];
        assertEquals(pending, 0, `entries pending on ${stream} after the stop`);
      }

      // A second message field was never run.
      for (const entry of cases) {
        for (const id of entry.unanswered) {
          if (await plain.redis.exists(resultKey(entry.kind, id))) {
            problems.push(`${entry.kind}: ${entry.what}: ${id} was answered`);
          }
        }
      }

      // Each entry to set aside is on the dead-letter stream once, and nothing else is. Bodies
      // are compared as the server reads them (invalid UTF-8 as U+FFFD); the test below holds
      // the bytes themselves to "exactly as received".
      const unmatched = [...expectedDead];
      for (const { kind, body, reason } of await deadLetters(plain, queue)) {
        const at = unmatched.findIndex((entry) =>
          entry.kind === kind && decoder.decode(entry.dead!.body) === decoder.decode(body)
        );
        if (at < 0) {
          problems.push(
            `a dead letter that matches no entry (${kind}, ${reason}): ${
              JSON.stringify(decoder.decode(body).slice(0, 160))
            }`,
          );
          continue;
        }
        const [entry] = unmatched.splice(at, 1);
        if (!reason.includes(entry!.dead!.reasonIncludes)) {
          problems.push(`${entry!.kind}: ${entry!.what}: reason ${reason}`);
        }
      }
      for (const entry of unmatched) problems.push(`not set aside: ${entry.kind}: ${entry.what}`);
      if (problems.length > 0) {
        throw new Error(
          `${problems.length} problems (seed ${seed}; PRPC_FUZZ_SEED=${seed} reproduces them):\n${
            problems.slice(0, 20).join("\n")
          }`,
        );
      }
      assertEquals(logger.at("error"), [], "errors logged");
    }),
});

Deno.test({
  name: "redis fuzz: a dead letter keeps the body exactly as received, invalid UTF-8 included",
  ignore: redis.ignore !== undefined,
  fn: () =>
    withFuzzServer(async ({ queue, plain, logger }) => {
      // One entry per invalid sequence, where it makes the body unreadable: nobody to answer.
      const bodies = INVALID_UTF8.map(([, invalid]) =>
        bytes('{"func_name":"summ",', invalid, '"func_args":[1,2]}')
      );
      for (const body of bodies) await addEntry(plain, queue, "raw", ["message", body]);
      const entries = await waitFor(async () => {
        const entries = await deadLetters(plain, queue);
        return entries.length >= bodies.length && entries;
      }, `${bodies.length} dead letters`);
      const hex = (body: Uint8Array) => Buffer.from(body).toString("hex");
      assertEquals(
        entries.map((entry) => hex(entry.body)).sort(),
        bodies.map(hex).sort(),
        "dead-letter bodies, as hex",
      );
      assertEquals(logger.at("error"), [], "errors logged");
    }),
});
