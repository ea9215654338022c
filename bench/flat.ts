/**
 * The memory run: prpc over Redis (and the floor, for scale) with 10,000 calls
 * in flight, several rounds in a row, reading resident memory after each. Flat
 * means the later rounds need no more memory than the first.
 *
 * @module
 */

import type { Redis } from "ioredis";
import { type LevelReading, runSystem } from "./run_system.ts";
import { BASELINE, type System } from "./systems.ts";

/** Calls in flight at once in the memory run. */
export const FLAT_IN_FLIGHT = 10_000;

/**
 * The rounds of the memory run: 10,000 calls each, all in flight at once.
 *
 * @param rounds How many rounds.
 * @returns The levels, as the contract spells them.
 */
export function flatLevels(rounds: number): { inFlight: number; calls: number }[] {
  return Array.from(
    { length: rounds },
    () => ({ inFlight: FLAT_IN_FLIGHT, calls: FLAT_IN_FLIGHT }),
  );
}

/** The memory run of one system. */
export interface FlatRun {
  /** The system. */
  system: System;
  /** One reading per round, or why there are none. */
  readings: LevelReading[] | string;
}

/**
 * Runs the memory rounds for prpc over Redis and the floor, when selected.
 *
 * @param systems The systems of this benchmark run.
 * @param options Environment, Redis connection, working directory, and whether
 *   to empty Redis after each system (only a Redis of the benchmark's own).
 * @returns One run per system measured.
 */
export async function runFlat(
  systems: System[],
  options: {
    env: Record<string, string>;
    redis: Redis;
    cwd: string;
    flush: boolean;
    rounds: number;
  },
): Promise<FlatRun[]> {
  const chosen = systems.filter((s) => s.name === BASELINE || s.name === "floor-ioredis");
  const runs: FlatRun[] = [];
  for (const system of chosen) {
    console.error(`== ${system.name}, memory with 10,000 calls in flight`);
    try {
      const readings = await runSystem(system, {
        levels: flatLevels(options.rounds),
        warmup: 0,
        env: { ...options.env, BENCH_QUEUE: `bench_flat_${system.name}_${Date.now()}` },
        redis: options.redis,
        cwd: options.cwd,
        levelTimeoutMs: 600_000,
      });
      runs.push({ system, readings });
    } catch (err) {
      runs.push({ system, readings: err instanceof Error ? err.message : String(err) });
    }
    if (options.flush) await options.redis.flushall();
  }
  return runs;
}
