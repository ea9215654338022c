/**
 * The benchmark's own output: progress lines while it runs, and the SVG chart
 * of calls/s against calls in flight (bench/chart.ts).
 */
import { chartSeries, renderChart } from "../bench/chart.ts";
import { Progress } from "../bench/progress.ts";
import type { LevelReading } from "../bench/run_system.ts";
import { allSystems } from "../bench/systems.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { redisServerInstalled } from "./support/redis_server.ts";

function reading(inFlight: number, callsPerSecond: number): LevelReading {
  return {
    calls: callsPerSecond,
    seconds: 1,
    p50Ms: 1,
    p99Ms: 2,
    inFlight,
    commandsPerCall: null,
    commands: {},
    serverPeak: null,
    clientPeak: null,
    serverCpuUs: null,
    clientCpuUs: null,
    redisCpuUs: null,
    serverRss: null,
    clientRss: null,
  };
}

/** Checks that every tag is closed in order (what an XML parser checks first), and returns the open tags seen. */
function wellFormedTags(svg: string): string[] {
  const stack: string[] = [];
  const seen: string[] = [];
  for (const match of svg.matchAll(/<(\/?)([a-z]+)\b[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = match;
    if (closing) assertEquals(stack.pop(), name, `</${name}> closes ${stack.at(-1)}`);
    else {
      seen.push(name!);
      if (!selfClosing) stack.push(name!);
    }
  }
  assertEquals(stack, [], "unclosed tags");
  return seen;
}

Deno.test("bench chart: one series per system with readings, medians of the runs, well-formed SVG", () => {
  const systems = allSystems("node");
  const levels = [{ inFlight: 1 }, { inFlight: 64 }, { inFlight: 256 }];
  const runs = [
    {
      system: systems[0]!,
      runs: [[reading(1, 100), reading(64, 900)], [reading(1, 300), reading(64, 1100)], [
        reading(1, 200),
        reading(64, 1000),
        reading(256, 5000),
      ]],
      skipped: undefined,
    },
    {
      system: systems[1]!,
      runs: [[reading(1, 50), reading(64, 400), reading(256, 800)]],
      skipped: undefined,
    },
    { system: systems[2]!, runs: [], skipped: "not installed" },
  ];
  const series = chartSeries(levels, runs);
  assertEquals(series, [
    {
      name: systems[0]!.name,
      points: [
        { inFlight: 1, callsPerSecond: 200 },
        { inFlight: 64, callsPerSecond: 1000 },
        { inFlight: 256, callsPerSecond: 5000 },
      ],
    },
    {
      name: systems[1]!.name,
      points: [
        { inFlight: 1, callsPerSecond: 50 },
        { inFlight: 64, callsPerSecond: 400 },
        { inFlight: 256, callsPerSecond: 800 },
      ],
    },
  ]);
  const svg = renderChart(series, "deno task bench <test> & more");
  assert(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), svg.slice(0, 80));
  const tags = wellFormedTags(svg);
  assertEquals(tags.filter((tag) => tag === "polyline").length, 2);
  assertEquals([...svg.matchAll(/<g data-system="([^"]+)">/g)].map((m) => m[1]), [
    systems[0]!.name,
    systems[1]!.name,
  ]);
  assert(svg.includes("deno task bench &lt;test&gt; &amp; more"), "the title is escaped");
  // Whole decades from below the lowest rate (50) to above the highest (5,000).
  assertEquals([...svg.matchAll(/text-anchor="end">([\d,]+)<\/text>/g)].map((m) => m[1]), [
    "10",
    "100",
    "1,000",
    "10,000",
  ]);
});

Deno.test("bench progress: a line per level on a pipe, with step, share done, system, run and level", () => {
  const progress = new Progress(4, false);
  const step = { system: "prpc-async-redis", run: 1, runs: 2, inFlight: 64, calls: 20_000 };
  assert(
    /^\[1\/4 0%, 0:00\] prpc-async-redis run 1\/2: 64 in flight, measuring 20,000 calls$/.test(
      progress.describe({ ...step, phase: "measuring" }),
    ),
  );
  progress.stepDone();
  progress.stepDone();
  assert(progress.describe({ ...step, phase: "warming up", calls: 1000 }).startsWith("[3/4 50%,"));
});

Deno.test({
  name: "bench: deno task bench shows its progress, level by level",
  ignore: !(await redisServerInstalled()),
  fn: async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "--quiet",
        "bench",
        "--reps",
        "1",
        "--levels",
        "1:50,8:100",
        "--warmup",
        "10",
        "--only",
        "prpc-async-memory",
        "--no-flat",
        "--no-write",
      ],
      cwd: new URL("../", import.meta.url),
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assertEquals(output.code, 0, stderr);
    const steps = stderr.split("\n").filter((line) => line.startsWith("["));
    assertEquals(steps.map((line) => line.replace(/, \d+:\d\d\]/, "]")), [
      "[1/2 0%] prpc-async-memory run 1/1: 1 in flight, measuring 50 calls",
      "[2/2 50%] prpc-async-memory run 1/1: 8 in flight, measuring 100 calls",
    ]);
  },
});
