/**
 * Runs one system once: starts its server and client programs, steps the
 * client through the levels of {@link ./participant.ts}, and takes the
 * readings (Redis command counts, resident memory) between the client's
 * lines, while no call is running.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { readLines } from "./lines.ts";
import type { LevelResult } from "./participant.ts";
import { resetPeaks, treeCpuSeconds, treeMemory } from "./procfs.ts";
import type { System } from "./systems.ts";

/** The readings of one level of one run. */
export interface LevelReading extends LevelResult {
  /** Calls in flight. */
  inFlight: number;
  /** Redis commands per call (every command Redis ran, scripts' own included), or `null`. */
  commandsPerCall: number | null;
  /** Redis commands by name, per call. */
  commands: Record<string, number>;
  /** Peak resident bytes of the server's process tree during the level, or `null`. */
  serverPeak: number | null;
  /** Peak resident bytes of the client process during the level, or `null`. */
  clientPeak: number | null;
  /** CPU microseconds per call of the server's process tree, or `null`. */
  serverCpuUs: number | null;
  /** CPU microseconds per call of the client process, or `null`. */
  clientCpuUs: number | null;
  /** CPU microseconds per call of Redis, or `null`. */
  redisCpuUs: number | null;
  /** Resident bytes of the server's tree right after the level, or `null`. */
  serverRss: number | null;
  /** Resident bytes of the client right after the level, or `null`. */
  clientRss: number | null;
}

/** How to run a system. */
export interface RunOptions {
  /** The levels, as `BENCH_LEVELS` spells them. */
  levels: { inFlight: number; calls: number }[];
  /** Warm-up calls before each level. */
  warmup: number;
  /** The environment of both programs. */
  env: Record<string, string>;
  /** A connection for reading Redis's command counts, when the system uses Redis. */
  redis: Redis | undefined;
  /** The project's root, where the programs run. */
  cwd: string;
  /** The longest a level may take. */
  levelTimeoutMs: number;
  /** Told when a level starts its warm-up and its measurement, and when it is done. */
  onLevel?: (index: number, phase: "warming up" | "measuring" | "done") => void;
}

/** Waits for a line from a program, or fails after a time limit. */
async function nextLine(
  lines: AsyncGenerator<string>,
  label: string,
  timeoutMs: number,
  accept: (line: string) => boolean,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${label}: no answer within ${timeoutMs} ms`)),
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      const next = await Promise.race([lines.next(), timeout]);
      if (next.done) throw new Error(`${label}: ended before answering`);
      if (accept(next.value)) return next.value;
      console.error(`[${label}] ${next.value}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

function spawn(command: string[], options: RunOptions, stdin: boolean): Deno.ChildProcess {
  const [program, ...args] = command;
  return new Deno.Command(program!, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

async function commandCounts(redis: Redis): Promise<Record<string, number>> {
  const info = await redis.info("commandstats");
  const counts: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = match[1]!;
    // The conductor's own readings.
    if (name === "info" || name.startsWith("config")) continue;
    counts[name] = Number(match[2]);
  }
  return counts;
}

async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const seconds = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1]);
  return seconds("used_cpu_user") + seconds("used_cpu_sys");
}

/** CPU seconds used since `before`, per call, in microseconds. */
function perCallUs(before: number | null, after: number | null, calls: number): number | null {
  return before === null || after === null ? null : ((after - before) / calls) * 1e6;
}

async function stopServer(server: Deno.ChildProcess): Promise<void> {
  try {
    server.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  const timer = setTimeout(() => {
    try {
      server.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, 15_000);
  await server.status;
  clearTimeout(timer);
}

/**
 * Runs one system through every level.
 *
 * @param system What to run.
 * @param options How.
 * @returns One reading per level.
 * @throws {Error} When a program fails, answers wrongly or takes too long.
 */
export async function runSystem(system: System, options: RunOptions): Promise<LevelReading[]> {
  const env = {
    ...options.env,
    ...system.env,
    BENCH_LEVELS: options.levels.map((l) => `${l.inFlight}:${l.calls}`).join(","),
    BENCH_WARMUP: String(options.warmup),
  };
  const spawnOptions = { ...options, env };
  let server: Deno.ChildProcess | undefined;
  let client: Deno.ChildProcess | undefined;
  const readings: LevelReading[] = [];
  try {
    if (system.server !== undefined) {
      server = spawn(system.server, spawnOptions, false);
      const serverLines = readLines(server.stdout);
      await nextLine(serverLines, `${system.name} server`, 120_000, (l) => l === "READY");
      // Keep reading so a chatty server never blocks on a full pipe.
      (async () => {
        for await (const line of serverLines) console.error(`[${system.name} server] ${line}`);
      })();
    }
    client = spawn(system.client, spawnOptions, true);
    const lines = readLines(client.stdout);
    const writer = client.stdin.getWriter();
    const say = (word: string) => writer.write(new TextEncoder().encode(`${word}\n`));
    const label = `${system.name} client`;
    for (const [index, level] of options.levels.entries()) {
      if (index > 0) await say("NEXT");
      options.onLevel?.(index, "warming up");
      await nextLine(lines, label, options.levelTimeoutMs, (l) => l === "WARM");
      options.onLevel?.(index, "measuring");
      if (options.redis !== undefined) await options.redis.config("RESETSTAT");
      resetPeaks(client.pid);
      if (server !== undefined) resetPeaks(server.pid);
      const cpuBefore = {
        server: server === undefined ? null : treeCpuSeconds(server.pid),
        client: treeCpuSeconds(client.pid),
        redis: options.redis === undefined ? null : await redisCpuSeconds(options.redis),
      };
      await say("GO");
      const line = await nextLine(
        lines,
        label,
        options.levelTimeoutMs,
        (l) => l.startsWith("RESULT "),
      );
      const result = JSON.parse(line.slice("RESULT ".length)) as LevelResult;
      const cpuAfter = {
        server: server === undefined ? null : treeCpuSeconds(server.pid),
        client: treeCpuSeconds(client.pid),
        redis: options.redis === undefined ? null : await redisCpuSeconds(options.redis),
      };
      const counts = options.redis === undefined ? {} : await commandCounts(options.redis);
      const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
      const serverMemory = server === undefined ? null : treeMemory(server.pid);
      const clientMemory = treeMemory(client.pid);
      readings.push({
        ...result,
        inFlight: level.inFlight,
        commandsPerCall: options.redis === undefined ? null : total / result.calls,
        commands: Object.fromEntries(
          Object.entries(counts).map(([name, n]) => [name, n / result.calls]),
        ),
        serverCpuUs: perCallUs(cpuBefore.server, cpuAfter.server, result.calls),
        clientCpuUs: perCallUs(cpuBefore.client, cpuAfter.client, result.calls),
        redisCpuUs: perCallUs(cpuBefore.redis, cpuAfter.redis, result.calls),
        serverPeak: serverMemory?.peak ?? null,
        clientPeak: clientMemory?.peak ?? null,
        serverRss: serverMemory?.rss ?? null,
        clientRss: clientMemory?.rss ?? null,
      });
      options.onLevel?.(index, "done");
    }
    await writer.close();
    const status = await client.status;
    client = undefined;
    if (!status.success) throw new Error(`${label} exited with code ${status.code}`);
    return readings;
  } finally {
    if (client !== undefined) {
      try {
        client.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await client.status;
    }
    if (server !== undefined) await stopServer(server);
  }
}
