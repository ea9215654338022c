/**
 * The Node.js side of the benchmark contract: a port of `../participant.ts`
 * (read its module doc for the contract itself) for the peer programs that run
 * under Node. Same environment, same handshake, same measurement, same output.
 *
 * @module
 */

import { performance } from "node:perf_hooks";

/**
 * Reads a required environment variable.
 *
 * @param {string} name The variable.
 * @returns {string} Its value.
 * @throws {Error} When it is not set.
 */
export function env(name) {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new Error(`Cannot run: ${name} is not set`);
  }
  return value;
}

/**
 * Parses `BENCH_LEVELS`.
 *
 * @param {string} text `inFlight:calls,...`, e.g. `1:2000,64:20000`.
 * @returns {{ inFlight: number, calls: number }[]} The levels in order.
 */
export function parseLevels(text) {
  return text.split(",").map((part) => {
    const [inFlight, calls] = part.split(":").map(Number);
    if (
      !Number.isInteger(inFlight) || !Number.isInteger(calls) || inFlight < 1 ||
      calls < 1
    ) {
      throw new Error(
        `Cannot read BENCH_LEVELS: "${part}" is not inFlight:calls`,
      );
    }
    return { inFlight, calls };
  });
}

/**
 * Makes `calls` calls with `inFlight` concurrent callers and times each.
 *
 * @param {(a: number, b: number) => Promise<number>} call The round trip.
 * @param {number} inFlight Concurrent callers.
 * @param {number} calls Total calls.
 * @returns {Promise<{ calls: number, seconds: number, p50Ms: number, p99Ms: number }>}
 *   The measurement.
 * @throws {Error} When a result is wrong.
 */
export async function measure(call, inFlight, calls) {
  const latencies = new Float64Array(calls);
  let next = 0;
  const caller = async () => {
    while (next < calls) {
      const i = next++;
      const start = performance.now();
      const result = await call(i, 1);
      latencies[i] = performance.now() - start;
      if (result !== i + 1) {
        throw new Error(`Wrong result: add(${i}, 1) gave ${result}`);
      }
    }
  };
  const begin = performance.now();
  await Promise.all(Array.from({ length: Math.min(inFlight, calls) }, caller));
  const seconds = (performance.now() - begin) / 1000;
  latencies.sort();
  const at = (p) => latencies[Math.min(calls - 1, Math.floor(calls * p))];
  return { calls, seconds, p50Ms: at(0.5), p99Ms: at(0.99) };
}

/**
 * Splits stdin into lines (without their line endings), like `../lines.ts`.
 *
 * @returns {AsyncGenerator<string>} The lines, the last one also when it has no ending.
 */
async function* stdinLines() {
  let buffered = "";
  process.stdin.setEncoding("utf8");
  for await (const text of process.stdin) {
    buffered += text;
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, end).replace(/\r$/, "");
      buffered = buffered.slice(end + 1);
    }
  }
  if (buffered !== "") yield buffered;
}

/**
 * Runs the client side of the contract.
 *
 * @param {(a: number, b: number) => Promise<number>} call The round trip of the system measured.
 * @param {() => Promise<void>} close Closes the system's connections once all levels are done.
 * @returns {Promise<void>} When stdin has ended.
 */
export async function runClient(call, close) {
  const levels = parseLevels(env("BENCH_LEVELS"));
  const warmup = Number(process.env.BENCH_WARMUP ?? "1000");
  const lines = stdinLines();
  const expect = async (word) => {
    const line = await lines.next();
    if (line.done) throw new Error(`stdin ended while waiting for ${word}`);
    if (line.value.trim() !== word) {
      throw new Error(`Expected ${word}, got "${line.value}"`);
    }
  };
  for (const [index, { inFlight, calls }] of levels.entries()) {
    if (index > 0) await expect("NEXT");
    if (warmup > 0) await measure(call, inFlight, Math.max(warmup, inFlight));
    console.log("WARM");
    await expect("GO");
    console.log(
      `RESULT ${JSON.stringify(await measure(call, inFlight, calls))}`,
    );
  }
  await close();
  while (!(await lines.next()).done) { /* wait for the conductor to let go */ }
}

/**
 * Announces a started server and waits for SIGTERM, then stops it and exits 0.
 *
 * @param {() => Promise<void>} stop Stops the server.
 * @returns {Promise<never>} Never settles: the process exits.
 */
export async function serveUntilTerminated(stop) {
  const terminated = new Promise((resolve) => process.once("SIGTERM", resolve));
  console.log("READY");
  await terminated;
  await stop();
  process.exit(0);
}
