/**
 * Worker behaviour beyond the conformance suite: registration checks, start()
 * checks, registerModule, the shared maxWorkers budget, orphaned subprocesses,
 * and thread permissions.
 */
import { AppServer, Client, ConfigError, WorkerCrashedError } from "../mod.ts";
import { WorkerPool } from "../workers/pool.ts";
import type { WorkerHandle, WorkerSpec } from "../workers/handle.ts";
import type { CallOutcome, CallRequest } from "../workers/messages.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./support/assert.ts";
import { deferred, waitFor } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";
import * as funcs from "./fixtures/worker_funcs.ts";
import { neverInThread } from "./fixtures/worker_exit_on_load.ts";

const FUNCS = new URL("./fixtures/worker_funcs.ts", import.meta.url);
const SERVER = new URL("./fixtures/worker_server.ts", import.meta.url).pathname;

function newServer(options: ConstructorParameters<typeof AppServer>[0] = {}): AppServer {
  return new AppServer({
    broker: "memory",
    url: `memory://workers-${crypto.randomUUID()}`,
    queue: "workers",
    handleSignals: false,
    logger: new RecordingLogger(),
    ...options,
  });
}

function processGone(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return false;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return true;
    throw err;
  }
}

Deno.test("register refuses worker options that do not fit the worker type", () => {
  const app = newServer();
  assertThrows(
    () => app.register(funcs.add, { module: FUNCS }),
    ConfigError,
    "option module: it applies to thread and process workers only",
  );
  assertThrows(
    () => app.register(funcs.add, { worker: "thread", module: FUNCS, v8Flags: ["--jitless"] }),
    ConfigError,
    'V8 flags apply to a whole process; use worker "process"',
  );
  assertThrows(
    () => app.register("anonymous", () => 1, { worker: "thread", module: FUNCS }),
    ConfigError,
    "finds the function by its exported name",
  );
  assertThrows(
    () => app.register(funcs.add, { worker: "process", module: "./relative.ts" }),
    ConfigError,
    "expected an absolute URL",
  );
  assertThrows(
    () =>
      app.register(funcs.add, {
        worker: "process",
        module: FUNCS,
        permissions: { disk: true } as never,
      }),
    ConfigError,
    'permission "disk"',
  );
  assertThrows(
    () =>
      app.register(funcs.add, {
        worker: "process",
        module: FUNCS,
        permissions: { net: [1] } as never,
      }),
    ConfigError,
    "expected true, false or a list of non-empty strings",
  );
  assertThrows(
    () => app.register(funcs.add, { worker: "process", module: FUNCS, v8Flags: ["max-old"] }),
    ConfigError,
    "expected a list like",
  );
});

Deno.test("start() fails when a worker could not find the function", async () => {
  function notExported() {
    return 1;
  }
  const cases: [(app: AppServer) => void, string][] = [
    [
      (app) => app.register(notExported, { worker: "thread", module: FUNCS }),
      'calls the export "notExported"',
    ],
    [
      (app) => app.register("add", () => 2, { worker: "process", module: FUNCS, params: [] }),
      "finds the function by its exported name",
    ],
    [
      (app) => app.register(function add() {}, { worker: "process", module: FUNCS }),
      "is another function than the one registered",
    ],
    [
      (app) =>
        app.register(funcs.add, {
          worker: "thread",
          module: new URL("./fixtures/no_such_module.ts", import.meta.url),
        }),
      "does not load",
    ],
    [
      (app) =>
        app.register(funcs.readFile, {
          worker: "thread",
          module: FUNCS,
          permissions: { read: false },
        }),
      "Run the server with --unstable-worker-options",
    ],
  ];
  for (const [register, message] of cases) {
    const app = newServer();
    let registered = true;
    try {
      register(app);
    } catch (err) {
      registered = false;
      assert(err instanceof ConfigError && err.message.includes(message), String(err));
    }
    if (registered) await assertRejects(app.start(), ConfigError, message);
    assertEquals(app.serving, false);
  }
});

Deno.test("registerModule registers every exported function, and they run in workers", async () => {
  const url = `memory://workers-${crypto.randomUUID()}`;
  const app = newServer({ url });
  await app.registerModule(FUNCS, { worker: "thread" });
  assertEquals(app.functions.toSorted(), Object.keys(funcs).toSorted());
  await assertRejects(
    app.registerModule(new URL("./fixtures/worker_no_functions.ts", import.meta.url)),
    ConfigError,
    "exports no function",
  );
  await assertRejects(app.registerModule(FUNCS), ConfigError, "already taken");
  await app.start();
  const client = await Client.connect({ broker: "memory", url, queue: "workers" });
  try {
    assertEquals(await client.call("add", [20, 22]), 42);
    assert(await client.call("pid") === Deno.pid, "a thread worker shares the server's process");
  } finally {
    await client.close();
    await app.stop();
  }
});

Deno.test("maxWorkers caps the workers of all kinds together; an idle worker is reused", async () => {
  const url = `memory://workers-${crypto.randomUUID()}`;
  const app = newServer({ url, maxWorkers: 1 });
  app.register(funcs.pid, { worker: "process", module: FUNCS });
  app.register(funcs.add, { worker: "thread", module: FUNCS });
  await app.start();
  const client = await Client.connect({ broker: "memory", url, queue: "workers" });
  try {
    const first = await client.call("pid") as number;
    assertEquals(await client.call("pid"), first, "the subprocess started once serves both calls");
    assertEquals(await client.call("add", [1, 2]), 3);
    assert(processGone(first), "the idle subprocess made room for the thread worker");
    const second = await client.call("pid") as number;
    assert(second !== first);
  } finally {
    await client.close();
    await app.stop();
  }
});

class FakeWorker implements WorkerHandle {
  alive = true;
  readonly ready = Promise.resolve();
  readonly ended = new Promise<string>(() => {});
  readonly calls: CallRequest[] = [];
  readonly #answers: ((outcome: CallOutcome) => void)[] = [];
  constructor(readonly spec: WorkerSpec) {}
  run(request: CallRequest): Promise<CallOutcome> {
    this.calls.push(request);
    return new Promise((resolve) => this.#answers.push(resolve));
  }
  answer(value: unknown): void {
    const id = this.calls[this.calls.length - this.#answers.length]!.id;
    this.#answers.shift()!({ id, ok: true, value });
  }
  terminate(): Promise<void> {
    this.alive = false;
    return Promise.resolve();
  }
}

Deno.test("a pool at its limit queues calls until a worker is free, then ends idle workers of another kind", async () => {
  const started: FakeWorker[] = [];
  const pool = new WorkerPool(1, new RecordingLogger(), (spec) => {
    const worker = new FakeWorker(spec);
    started.push(worker);
    return worker;
  });
  const spec = (type: "thread" | "process"): WorkerSpec => ({
    type,
    module: FUNCS.href,
    permissions: undefined,
    v8Flags: [],
    key: type,
  });
  const request = {
    exportName: "add",
    funcName: "add",
    args: [],
    messageId: "m",
    attempt: 1,
    deadline: null,
  };
  const options = () => ({ timeoutMs: null, signal: new AbortController().signal });
  const first = pool.run(spec("thread"), request, options());
  const second = pool.run(spec("thread"), request, options());
  const third = pool.run(spec("process"), request, options());
  assertEquals(started.length, 1, "one worker at the limit of one");
  await waitFor(() => started[0]!.calls.length === 1, "the first call");
  started[0]!.answer("a");
  assertEquals(await first, "a");
  await waitFor(() => started[0]!.calls.length === 2, "the queued call");
  started[0]!.answer("b");
  assertEquals(await second, "b");
  await waitFor(() => started.length === 2, "a process worker");
  assertEquals(started[0]!.alive, false, "the idle thread worker made room");
  started[1]!.answer("c");
  assertEquals(await third, "c");
  assertEquals(pool.size, 1);
  await pool.close();
  assertEquals(pool.size, 0);
});

Deno.test("a subprocess whose server was killed ends itself, even in an endless loop", async () => {
  for (const signal of ["SIGKILL", "SIGTERM"] as const) {
    const server = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", SERVER, "orphans"],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let output = "";
    while (!output.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) break;
      output += value;
    }
    const pid = Number(/pid (\d+)/.exec(output)?.[1]);
    assert(pid > 0, `no pid in ${JSON.stringify(output)}`);
    const exited = deferred<void>();
    server.status.then(() => exited.resolve());
    server.kill(signal);
    await exited.promise;
    await lines.cancel();
    await waitFor(() => processGone(pid), `subprocess ${pid} to end after ${signal}`);
  }
});

Deno.test("thread workers get their own permissions under --unstable-worker-options", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--unstable-worker-options", SERVER, "thread-permissions"],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assertEquals(output.code, 0, stderr);
  assertEquals(JSON.parse(new TextDecoder().decode(output.stdout)), {
    name: "RemoteError",
    remoteName: "NotCapable",
  });
});

/** A memory-broker server and client on a hub of their own; both closed by the returned function. */
async function serve(
  register: (app: AppServer) => void,
  options: ConstructorParameters<typeof AppServer>[0] = {},
): Promise<{ app: AppServer; client: Client; logger: RecordingLogger; close(): Promise<void> }> {
  const url = `memory://workers-${crypto.randomUUID()}`;
  const logger = new RecordingLogger();
  const app = newServer({ url, logger, ...options });
  register(app);
  await app.start();
  const client = await Client.connect({ broker: "memory", url, queue: "workers", logger });
  return {
    app,
    client,
    logger,
    async close() {
      await client.close();
      await app.stop({ graceMs: 0 });
    },
  };
}

Deno.test("a forged message frame from a process worker ends that worker, not the server", async () => {
  const { client, close } = await serve((app) => {
    app.register(funcs.forgeFrame, { worker: "process", module: FUNCS });
    app.register(funcs.add, { worker: "process", module: FUNCS });
  }, { maxWorkers: 1 });
  try {
    await assertRejects(client.call("forgeFrame"), WorkerCrashedError, "could not be read");
    assertEquals(await client.call("add", [1, 1]), 2);
  } finally {
    await close();
  }
});

Deno.test("a process the function started does not delay the crash report or stop()", async () => {
  const pidFile = await Deno.makeTempFile();
  const { app, client, close } = await serve((app) => {
    app.register(funcs.startSleeper, { worker: "process", module: FUNCS });
  }, { workerTimeoutMs: null });
  try {
    // It ends its worker with code 5 while `sleep 60` still holds the worker's pipes.
    await assertRejects(
      client.call("startSleeper", [pidFile, 5]),
      WorkerCrashedError,
      "exited with code 5",
    );
    await client.call("startSleeper", [pidFile]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stopped = await Promise.race([
      app.stop({ graceMs: 0 }).then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 20_000)),
    ]);
    clearTimeout(timer);
    assert(stopped, "stop() waited for a process the function started");
  } finally {
    await close();
    const pids = (await Deno.readTextFile(pidFile)).split("\n").filter((line) => line !== "");
    for (const pid of pids) Deno.kill(Number(pid), "SIGKILL");
    await Deno.remove(pidFile);
  }
});

Deno.test("a thread worker that ends itself while loading its module fails the call at once", async () => {
  const { client, close } = await serve((app) => {
    app.register(neverInThread, {
      worker: "thread",
      module: new URL("./fixtures/worker_exit_on_load.ts", import.meta.url),
    });
  });
  try {
    await assertRejects(client.call("neverInThread"), WorkerCrashedError, "Deno.exit(4)");
  } finally {
    await close();
  }
});

Deno.test("registerModule works with async functions, and registers all or none", async () => {
  const url = `memory://workers-${crypto.randomUUID()}`;
  const app = newServer({ url });
  await app.registerModule(FUNCS);
  await app.start();
  const client = await Client.connect({ broker: "memory", url, queue: "workers" });
  const close = async () => {
    await client.close();
    await app.stop({ graceMs: 0 });
  };
  try {
    assertEquals(await client.call("add", [5, 6]), 11, "async by default");
    assertEquals(await client.call("pid"), Deno.pid);
    const other = newServer();
    other.register("spin", () => 0);
    await assertRejects(
      other.registerModule(FUNCS, { worker: "thread" }),
      ConfigError,
      "already taken",
    );
    assertEquals(other.functions, ["spin"], "nothing of the module was added");
  } finally {
    await close();
  }
});

Deno.test("a server script that starts without import.meta.main fails clearly instead of hanging", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("./fixtures/worker_unguarded.ts", import.meta.url).pathname,
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assertEquals(output.code, 1);
  assert(stderr.includes("Put start() behind if (import.meta.main)"), stderr);
});

Deno.test("process workers use the project's deno.json (import map)", async () => {
  const project = new URL("./fixtures/worker_project/", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--config", `${project}deno.json`, `${project}server.ts`],
    cwd: project,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assertEquals(output.code, 0, stderr);
  assertEquals(new TextDecoder().decode(output.stdout).trim(), "42");
});

Deno.test("a permission the server holds only in part is not passed on to process workers", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--deny-read=/etc/hostname",
      "--allow-env",
      new URL("./fixtures/permission_flags.ts", import.meta.url).pathname,
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(output.code, 0, new TextDecoder().decode(output.stderr));
  assertEquals(JSON.parse(new TextDecoder().decode(output.stdout)), ["--allow-env"]);
});

Deno.test("a call waiting for a free worker gives up when its signal aborts", async () => {
  const started: FakeWorker[] = [];
  const pool = new WorkerPool(1, new RecordingLogger(), (spec) => {
    const worker = new FakeWorker(spec);
    started.push(worker);
    return worker;
  });
  const spec: WorkerSpec = {
    type: "thread",
    module: FUNCS.href,
    permissions: undefined,
    v8Flags: [],
    key: "thread",
  };
  const request = {
    exportName: "add",
    funcName: "add",
    args: [],
    messageId: "m",
    attempt: 1,
    deadline: null,
  };
  const busy = pool.run(spec, request, { timeoutMs: null, signal: new AbortController().signal });
  const controller = new AbortController();
  const waiting = pool.run(spec, request, { timeoutMs: null, signal: controller.signal });
  controller.abort(new Error("gave up"));
  await assertRejects(waiting, Error, "gave up");
  await waitFor(() => started[0]!.calls.length === 1, "the first call");
  started[0]!.answer("done");
  assertEquals(await busy, "done");
  assertEquals(started[0]!.calls.length, 1, "the aborted call never reached a worker");
  await pool.close();
});
