/**
 * The floor's client: the round trip of the benchmark written directly with
 * ioredis (see `floor_server.ts` for what the floor is and the commands it
 * costs). Per call it sends one command,
 * `XADD floor_{BENCH_QUEUE} * m {"id","a","b","reply"}`, and gets the result
 * pushed to a pub/sub channel of its own, `floor_reply_{uuid}`, subscribed once
 * on a second connection; results are matched to waiting calls by id.
 *
 * Run by the conductor (see `bench/participant.ts`).
 *
 * @module
 */

import { Redis } from "ioredis";
import { env, runClient } from "../participant.ts";

const url = env("BENCH_REDIS_URL");
const stream = `floor_${env("BENCH_QUEUE")}`;
const clientId = crypto.randomUUID();
const channel = `floor_reply_${clientId}`;

const commands = new Redis(url);
const subscriber = new Redis(url);

/** Calls waiting for their result, by request id. */
const waiting = new Map<string, (result: number) => void>();
let counter = 0;

subscriber.on("message", (from: string, message: string) => {
  if (from !== channel) return;
  const { id, r } = JSON.parse(message) as { id: string; r: number };
  const resolve = waiting.get(id);
  if (resolve === undefined) return; // a duplicate (at least once)
  waiting.delete(id);
  resolve(r);
});
await subscriber.subscribe(channel);

function add(a: number, b: number): Promise<number> {
  const id = `${clientId}_${counter++}`;
  const { promise, resolve, reject } = Promise.withResolvers<number>();
  waiting.set(id, resolve);
  commands.xadd(stream, "*", "m", JSON.stringify({ id, a, b, reply: channel })).catch(
    (err: unknown) => {
      waiting.delete(id);
      reject(err);
    },
  );
  return promise;
}

await runClient(add, async () => {
  await subscriber.quit();
  await commands.quit();
});
