/**
 * The floor's server: the round trip of the benchmark written directly with
 * ioredis, doing the job prpc's Redis broker does (a durable request stream
 * read in a consumer group, each result stored under a key with a TTL so that
 * any client could read it, pushed to its caller's pub/sub channel, the request
 * acknowledged and deleted only once its result is stored) in as few Redis
 * commands as that allows, and nothing else: no envelope, no validation, no
 * heartbeat, no recovery of entries left pending, no dead-lettering, no retries.
 * prpc's overhead is read as a ratio against it.
 *
 * Commands, as `INFO commandstats` counts them (commands a script runs count too):
 * - per call: `XADD` (client), `SET` and `PUBLISH` (in the script);
 * - per batch of up to `BENCH_CONCURRENCY` entries: `XREADGROUP`, `EVALSHA`,
 *   `XACK`, `XDEL` (the last two in the script, one each for the whole batch).
 *
 * Once at start: `XGROUP CREATE {stream} g $ MKSTREAM` (`BUSYGROUP` ignored) and
 * `SCRIPT LOAD`. One connection does nothing but the blocking read
 * `XREADGROUP GROUP g c COUNT n BLOCK 0 STREAMS {stream} >` and reads again as
 * soon as a batch arrives; another settles each batch with one `EVALSHA`. At most
 * `BENCH_CONCURRENCY` entries are read and not settled at a time (the `COUNT` of
 * a read is what is left of it, like a prefetch).
 *
 * Keys: the stream is `floor_{BENCH_QUEUE}`, a result `floor_{BENCH_QUEUE}_result_{id}`
 * (the JSON published, kept 3600 s).
 *
 * At least once: a batch is acknowledged by the script that stored its results,
 * after storing them. Entries whose settling failed, or whose read reply was lost
 * when the server stopped, stay pending (the floor recovers nothing).
 *
 * Run by the conductor (see `bench/participant.ts`): prints `READY`, serves until
 * SIGTERM.
 *
 * @module
 */

import { Redis } from "ioredis";
import { env, serveUntilTerminated } from "../participant.ts";

const GROUP = "g";
const CONSUMER = "c";
const RESULT_TTL_S = 3600;

/**
 * Settles one batch. For each entry it stores the result, then publishes it to
 * the caller; then it acknowledges and deletes all the batch's entries at once
 * (in chunks, as `unpack` is limited by Lua's stack; a batch of at most 4000
 * entries is one `XACK` and one `XDEL`).
 *
 * - KEYS[1] the stream, KEYS[1 + i] the result key of entry i
 * - ARGV[1] group, ARGV[2] result TTL in seconds, then per entry i:
 *   ARGV[3i] entry id, ARGV[3i + 1] result JSON, ARGV[3i + 2] reply channel
 * - Reply: the number of entries
 */
const SETTLE_LUA = `
local n = #KEYS - 1
local ids = {}
for i = 1, n do
  local at = 3 * i
  redis.call('SET', KEYS[i + 1], ARGV[at + 1], 'EX', ARGV[2])
  redis.call('PUBLISH', ARGV[at + 2], ARGV[at + 1])
  ids[i] = ARGV[at]
end
for from = 1, n, 4000 do
  local to = math.min(from + 3999, n)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ids, from, to))
  redis.call('XDEL', KEYS[1], unpack(ids, from, to))
end
return n
`;

/** A request as the client adds it (field `m` of the entry). */
interface Request {
  id: string;
  a: number;
  b: number;
  reply: string;
}

const url = env("BENCH_REDIS_URL");
const queue = env("BENCH_QUEUE");
const concurrency = Number(env("BENCH_CONCURRENCY"));
if (!Number.isInteger(concurrency) || concurrency < 1) {
  throw new Error(`Cannot run: BENCH_CONCURRENCY is not a positive integer`);
}
const stream = `floor_${queue}`;
const resultPrefix = `floor_${queue}_result_`;

const commands = new Redis(url);
const reader = new Redis(url);

try {
  await commands.xgroup("CREATE", stream, GROUP, "$", "MKSTREAM");
} catch (err) {
  if (!(err instanceof Error && err.message.startsWith("BUSYGROUP"))) throw err;
}
const sha = String(await commands.script("LOAD", SETTLE_LUA));

let open = true;
/** Entries read and not settled yet. */
let unsettled = 0;
/** Wakes the reader when it waits for room. */
let wake: (() => void) | undefined;
const settling = new Set<Promise<void>>();

/** The entries of an `XREADGROUP` reply for one stream: `[[id, [field, value, ...]], ...]`. */
function entriesOf(reply: unknown): [string, string[]][] {
  if (!Array.isArray(reply)) return []; // null: nothing (cannot happen with BLOCK 0)
  const streamReply: unknown = reply[0];
  if (!Array.isArray(streamReply)) return [];
  const entries: unknown = streamReply[1];
  return Array.isArray(entries) ? entries as [string, string[]][] : [];
}

/** Computes and settles one batch with one script; frees its room once settled. */
function settle(entries: [string, string[]][]): void {
  const keys = [stream];
  const args: (string | number)[] = [GROUP, RESULT_TTL_S];
  for (const [entryId, fields] of entries) {
    const request = JSON.parse(fields[1] ?? "null") as Request;
    const body = JSON.stringify({ id: request.id, r: request.a + request.b });
    keys.push(resultPrefix + request.id);
    args.push(entryId, body, request.reply);
  }
  const done = commands.evalsha(sha, keys.length, ...keys, ...args).then(
    () => {},
    (err: unknown) => {
      // Nothing retries in the floor: its entries stay pending and their callers wait.
      console.error(`Cannot settle ${entries.length} entries: ${String(err)}`);
    },
  ).finally(() => {
    settling.delete(done);
    unsettled -= entries.length;
    wake?.();
  });
  settling.add(done);
}

async function readLoop(): Promise<void> {
  while (open) {
    const room = concurrency - unsettled;
    if (room <= 0) {
      const { promise, resolve } = Promise.withResolvers<void>();
      wake = resolve;
      await promise;
      wake = undefined;
      continue;
    }
    let reply: unknown;
    try {
      reply = await reader.xreadgroup(
        "GROUP",
        GROUP,
        CONSUMER,
        "COUNT",
        room,
        "BLOCK",
        0,
        "STREAMS",
        stream,
        ">",
      );
    } catch (err) {
      if (!open) return; // disconnected to stop
      throw err;
    }
    const entries = entriesOf(reply);
    if (entries.length === 0) continue;
    unsettled += entries.length;
    settle(entries);
  }
}

const reading = readLoop();

await serveUntilTerminated(async () => {
  open = false;
  wake?.();
  reader.disconnect();
  await reading;
  await Promise.all(settling);
  await commands.quit();
});
