/**
 * `deno task bench`: the side-by-side round-trip benchmark. A trivial
 * `add(a, b)` is called through prpc (Redis with each worker type, the memory
 * broker, RabbitMQ when reachable, Kafka when `PRPC_BENCH_KAFKA_URL` names
 * one), the same round trip written directly with ioredis (the floor), BullMQ
 * and Moleculer, at several numbers of calls in flight, server and client in
 * separate processes, on one Redis. Each system runs several times, in turns,
 * and the report takes the median. It writes `bench/RESULTS.md` (between its
 * markers, keeping the rest of the file) and `bench/results.svg` (calls/s
 * against calls in flight, one line per system), and prints the same tables.
 * While it runs, it shows on standard error which system, run and level it
 * measures and how far along it is.
 *
 * Options:
 * - `--reps N` repetitions (default 3)
 * - `--levels 1:2000,64:20000,256:20000` calls in flight : calls measured
 * - `--warmup N` warm-up calls before each level (default 1000)
 * - `--only a,b` run only these systems (names as in the report)
 * - `--flat-rounds N` rounds of the memory run with 10,000 calls in flight (default 20)
 * - `--no-flat` skip the memory run
 * - `--no-write` print only
 * - `--chart-only` write `bench/results.svg` but leave `bench/RESULTS.md` as it is
 *
 * Environment: `PRPC_BENCH_REDIS_URL` (default: a `redis-server` of its own on
 * a free port), `PRPC_BENCH_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672`),
 * `PRPC_BENCH_KAFKA_URL` (no default: there is no Kafka here).
 *
 * @module
 */

import { Redis } from "ioredis";
import { RedisTestServer } from "../tests/support/redis_server.ts";
import { chartSeries, renderChart } from "./chart.ts";
import { FLAT_IN_FLIGHT, runFlat } from "./flat.ts";
import { type Environment, renderReport, type SystemRuns, writeReport } from "./report.ts";
import { Progress } from "./progress.ts";
import { type LevelReading, runSystem } from "./run_system.ts";
import { allSystems, type System } from "./systems.ts";

const root = new URL("..", import.meta.url).pathname;

function option(name: string): string | undefined {
  const index = Deno.args.indexOf(`--${name}`);
  return index < 0 ? undefined : Deno.args[index + 1];
}

const reps = Number(option("reps") ?? 3);
const levels = (option("levels") ?? "1:2000,64:20000,256:20000").split(",").map((part) => {
  const [inFlight, calls] = part.split(":").map(Number);
  return { inFlight: inFlight!, calls: calls! };
});
const warmup = Number(option("warmup") ?? 1000);
const only = option("only")?.split(",");

async function output(program: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(program, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

async function reachable(url: string, port: number): Promise<boolean> {
  try {
    const parsed = new URL(url);
    const connection = await Deno.connect({
      hostname: parsed.hostname,
      port: Number(parsed.port || port),
    });
    connection.close();
    return true;
  } catch {
    return false;
  }
}

/** Installs the peers (BullMQ, Moleculer) into bench/peers when missing; false when it cannot. */
async function peersReady(): Promise<string | null> {
  const node = await output("node", ["--version"]);
  if (node === null) return "node is not installed";
  try {
    await Deno.stat(`${root}bench/peers/node_modules/bullmq`);
    await Deno.stat(`${root}bench/peers/node_modules/moleculer`);
    return null;
  } catch {
    console.error("== installing the peers with npm ci in bench/peers");
    const install = await new Deno.Command("npm", {
      args: ["ci", "--no-audit", "--no-fund"],
      cwd: `${root}bench/peers`,
      stdout: "inherit",
      stderr: "inherit",
    }).output().catch(() => null);
    return install?.success ? null : "npm ci in bench/peers failed";
  }
}

const externalRedis = Deno.env.get("PRPC_BENCH_REDIS_URL");
const ownRedis = externalRedis ? undefined : await RedisTestServer.start();
const redisUrl = externalRedis || ownRedis!.url;
const amqpUrl = Deno.env.get("PRPC_BENCH_AMQP_URL") || "amqp://guest:guest@127.0.0.1:5672";
const kafkaUrl = Deno.env.get("PRPC_BENCH_KAFKA_URL");
const redis = new Redis(redisUrl, { lazyConnect: true });
await redis.connect();

const skipped = new Map<string, string>();
// Only a run that includes a peer installs them.
const needsPeers = allSystems("node").some((system) =>
  (only === undefined || only.includes(system.name)) && system.server?.[0] === "node"
);
const peersProblem = needsPeers ? await peersReady() : null;
const systems: System[] = [];
for (const system of allSystems("node")) {
  if (only !== undefined && !only.includes(system.name)) continue;
  let why: string | undefined;
  if (system.transport === "amqp" && !(await reachable(amqpUrl, 5672))) {
    why = `RabbitMQ is not reachable at ${new URL(amqpUrl).host}`;
  } else if (system.transport === "kafka" && !kafkaUrl) {
    why = "no Kafka broker: set PRPC_BENCH_KAFKA_URL to include it";
  } else if (system.server?.[0] === "node" && peersProblem !== null) {
    why = peersProblem;
  }
  if (why === undefined) systems.push(system);
  else skipped.set(system.name, why);
}

const concurrency = Math.max(...levels.map((l) => l.inFlight));
const baseEnv: Record<string, string> = {
  BENCH_REDIS_URL: redisUrl,
  BENCH_AMQP_URL: amqpUrl,
  BENCH_CONCURRENCY: String(concurrency),
  NO_COLOR: "1",
  ...(kafkaUrl ? { BENCH_KAFKA_URL: kafkaUrl } : {}),
};

const runs = new Map<string, LevelReading[][]>(systems.map((s) => [s.name, []]));
const failures = new Map<string, string>();
const progress = new Progress(systems.length * reps * levels.length);
for (let rep = 0; rep < reps; rep++) {
  // Turns rotate, so no system always runs right after the same one.
  const order = systems.map((_, i) => systems[(i + rep) % systems.length]!);
  for (const system of order) {
    if (failures.has(system.name)) continue;
    progress.log(`== ${system.name}, run ${rep + 1} of ${reps}`);
    let levelsDone = 0;
    try {
      const readings = await runSystem(system, {
        levels,
        warmup,
        env: { ...baseEnv, BENCH_QUEUE: `bench_${system.name}_${rep}_${Date.now()}` },
        redis: system.transport === "redis" ? redis : undefined,
        cwd: root,
        levelTimeoutMs: 600_000,
        onLevel: (index, phase) => {
          const level = levels[index]!;
          if (phase === "done") {
            levelsDone++;
            progress.stepDone();
            return;
          }
          progress.show({
            system: system.name,
            run: rep + 1,
            runs: reps,
            inFlight: level.inFlight,
            calls: phase === "measuring" ? level.calls : warmup,
            phase,
          });
        },
      });
      runs.get(system.name)!.push(readings);
      progress.log(
        readings.map((r) =>
          `   ${r.inFlight} in flight: ${Math.round(r.calls / r.seconds)} calls/s, p50 ${
            r.p50Ms.toFixed(3)
          } ms, CPU µs/call ${
            [r.serverCpuUs, r.clientCpuUs, r.redisCpuUs].map((us) => us?.toFixed(0) ?? "–").join(
              " / ",
            )
          }`
        ).join("\n"),
      );
    } catch (err) {
      failures.set(system.name, err instanceof Error ? err.message : String(err));
      // The steps of the levels it will not run count as done.
      for (let i = levelsDone; i < levels.length * (reps - rep); i++) progress.stepDone();
      progress.log(`   failed: ${failures.get(system.name)}`);
    }
    if (ownRedis !== undefined) await redis.flushall();
  }
}

const flat = Deno.args.includes("--no-flat") || (only !== undefined && !only.includes("flat"))
  ? undefined
  : await runFlat(systems, {
    env: { ...baseEnv, BENCH_CONCURRENCY: String(FLAT_IN_FLIGHT) },
    redis,
    cwd: root,
    flush: ownRedis !== undefined,
    rounds: Number(option("flat-rounds") ?? 20),
  });

const environment: Environment = {
  command: `deno task bench ${Deno.args.join(" ")}`.trim(),
  date: new Date().toISOString(),
  cpus: navigator.hardwareConcurrency,
  memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
  deno: Deno.version.deno,
  node: (await output("node", ["--version"])) ?? "not installed",
  redis: (await redis.info("server")).match(/redis_version:(\S+)/)?.[1] ?? "?",
  reps,
  warmup,
};
const systemRuns: SystemRuns[] = allSystems("node").map((system) => ({
  system,
  runs: runs.get(system.name) ?? [],
  skipped: skipped.get(system.name) ?? failures.get(system.name),
})).filter((entry) => only === undefined || only.includes(entry.system.name));
const report = renderReport(environment, levels, systemRuns, flat);
console.log(report);
if (!Deno.args.includes("--no-write")) {
  if (!Deno.args.includes("--chart-only")) await writeReport(`${root}bench/RESULTS.md`, report);
  const chart = renderChart(
    chartSeries(levels, systemRuns),
    `${environment.command}, ${environment.date.slice(0, 16).replace("T", " ")} UTC`,
  );
  await Deno.writeTextFile(`${root}bench/results.svg`, chart);
}

redis.disconnect();
await ownRedis?.stop();
