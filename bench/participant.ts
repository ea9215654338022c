/**
 * The contract between `bench/roundtrip.ts` (the conductor) and the programs
 * it measures, and its Deno side. Every system is a server program and a client
 * program, run as separate processes (the memory broker, which cannot leave its
 * process, is one client program that also serves).
 *
 * Environment, set by the conductor for both:
 * - `BENCH_REDIS_URL`, `BENCH_AMQP_URL`, `BENCH_KAFKA_URL`: broker URLs.
 * - `BENCH_QUEUE`: a queue name no other run uses.
 * - `BENCH_WORKER`: prpc's worker type (`async`, `thread`, `process`).
 * - `BENCH_CONCURRENCY`: how many calls the server runs at once (the highest level).
 *
 * Server: prints `READY` on its own line once it serves, serves until SIGTERM,
 * then exits.
 *
 * Client: `BENCH_LEVELS` is a list `inFlight:calls,...`. For each level it makes
 * `BENCH_WARMUP` calls at that level, prints `WARM`, waits for `GO` on stdin,
 * makes the calls with `inFlight` callers each awaiting one call at a time,
 * checks every result (`add(i, 1)` must be `i + 1`), prints
 * `RESULT {"calls","seconds","p50Ms","p99Ms"}` and waits for `NEXT`. After the
 * last level it closes and exits when stdin ends. Results are read from /proc
 * and Redis by the conductor between those lines, while nothing else runs.
 *
 * @module
 */

import { readLines } from "./lines.ts";

/** One round-trip call of the benchmark: `add(a, b)` on the server. */
export type AddCall = (a: number, b: number) => Promise<number>;

/** What the client prints after a level. */
export interface LevelResult {
  /** Calls measured. */
  calls: number;
  /** Wall time of the measured calls. */
  seconds: number;
  /** Median latency of one call in milliseconds. */
  p50Ms: number;
  /** 99th percentile latency of one call in milliseconds. */
  p99Ms: number;
}

/**
 * Reads a required environment variable.
 *
 * @param name The variable.
 * @returns Its value.
 * @throws {Error} When it is not set.
 */
export function env(name: string): string {
  const value = Deno.env.get(name);
  if (value === undefined || value === "") throw new Error(`Cannot run: ${name} is not set`);
  return value;
}

/**
 * Parses `BENCH_LEVELS`.
 *
 * @param text `inFlight:calls,...`, e.g. `1:2000,64:20000`.
 * @returns The levels in order.
 */
export function parseLevels(text: string): { inFlight: number; calls: number }[] {
  return text.split(",").map((part) => {
    const [inFlight, calls] = part.split(":").map(Number);
    if (!Number.isInteger(inFlight) || !Number.isInteger(calls) || inFlight! < 1 || calls! < 1) {
      throw new Error(`Cannot read BENCH_LEVELS: "${part}" is not inFlight:calls`);
    }
    return { inFlight: inFlight!, calls: calls! };
  });
}

/**
 * Makes `calls` calls with `inFlight` concurrent callers and times each.
 *
 * @param call The round trip.
 * @param inFlight Concurrent callers.
 * @param calls Total calls.
 * @returns The measurement.
 * @throws {Error} When a result is wrong.
 */
export async function measure(
  call: AddCall,
  inFlight: number,
  calls: number,
): Promise<LevelResult> {
  const latencies = new Float64Array(calls);
  let next = 0;
  const caller = async () => {
    while (next < calls) {
      const i = next++;
      const start = performance.now();
      const result = await call(i, 1);
      latencies[i] = performance.now() - start;
      if (result !== i + 1) throw new Error(`Wrong result: add(${i}, 1) gave ${result}`);
    }
  };
  const begin = performance.now();
  await Promise.all(Array.from({ length: Math.min(inFlight, calls) }, caller));
  const seconds = (performance.now() - begin) / 1000;
  latencies.sort();
  const at = (p: number) => latencies[Math.min(calls - 1, Math.floor(calls * p))]!;
  return { calls, seconds, p50Ms: at(0.5), p99Ms: at(0.99) };
}

/**
 * Runs the client side of the contract.
 *
 * @param call The round trip of the system measured.
 * @param close Closes the system's connections once all levels are done.
 */
export async function runClient(call: AddCall, close: () => Promise<void>): Promise<void> {
  const levels = parseLevels(env("BENCH_LEVELS"));
  const warmup = Number(Deno.env.get("BENCH_WARMUP") ?? "1000");
  const lines = readLines(Deno.stdin.readable);
  const expect = async (word: string) => {
    const line = await lines.next();
    if (line.done) throw new Error(`stdin ended while waiting for ${word}`);
    if (line.value.trim() !== word) throw new Error(`Expected ${word}, got "${line.value}"`);
  };
  for (const [index, { inFlight, calls }] of levels.entries()) {
    if (index > 0) await expect("NEXT");
    if (warmup > 0) await measure(call, inFlight, Math.max(warmup, inFlight));
    console.log("WARM");
    await expect("GO");
    console.log(`RESULT ${JSON.stringify(await measure(call, inFlight, calls))}`);
  }
  await close();
  while (!(await lines.next()).done) { /* wait for the conductor to let go */ }
}

/**
 * Announces a started server and waits for SIGTERM.
 *
 * @param stop Stops the server.
 */
export async function serveUntilTerminated(stop: () => Promise<void>): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", resolve);
  console.log("READY");
  await promise;
  await stop();
  Deno.exit(0);
}

/**
 * The URL of a broker from the conductor's environment.
 *
 * @param broker `redis`, `amqp` or `kafka`.
 * @returns `BENCH_REDIS_URL`, `BENCH_AMQP_URL` or `BENCH_KAFKA_URL`.
 */
export function brokerUrl(broker: string): string {
  return env(`BENCH_${broker.toUpperCase()}_URL`);
}
