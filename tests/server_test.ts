import { AppServer, type BrokerKind, Client, ConfigError, connectBroker } from "../mod.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./support/assert.ts";
import { RecordingLogger } from "./support/logger.ts";

const quiet = () => ({ handleSignals: false, logger: new RecordingLogger() });
const isolated = () => `memory://server-test-${crypto.randomUUID()}`;

Deno.test("AppServer.register() refuses duplicates, anonymous functions and non-functions", () => {
  const app = new AppServer(quiet());
  app.register("one", () => 1);
  assertThrows(() => app.register("one", () => 2), ConfigError, "already taken");
  assertThrows(() => app.register((() => () => 1)()), TypeError, "anonymous");
  assertThrows(
    () => app.register("x", 42 as unknown as () => void),
    TypeError,
    "expected a function",
  );
  assertEquals(app.functions, ["one"]);
});

Deno.test("AppServer.register() refuses an unknown worker type", () => {
  const app = new AppServer(quiet());
  assertThrows(
    () => app.register("f", () => 1, { worker: "gpu" as "async" }),
    ConfigError,
    "expected one of thread, process, async",
  );
});

Deno.test("AppServer.register() needs params for functions whose names cannot be read", async () => {
  function add(a: number, b: number) {
    return a + b;
  }
  const bound = add.bind(null);
  const url = isolated();
  const app = new AppServer({ ...quiet(), url, queue: "params" });
  assertThrows(() => app.register("bound", bound), ConfigError, "pass them as params");
  app.register("bound", bound, { params: ["a", "b"] });
  assertThrows(
    () => app.register("bad", bound, { params: ["a", "a"] }),
    TypeError,
    "twice",
  );
  assertThrows(
    () => app.register("bad", bound, { params: ["not a name"] }),
    TypeError,
    "parameter name",
  );
  // A native function without parameters passes positional arguments through.
  app.register("list", Array.of.bind(Array));
  await app.start();
  const client = await Client.connect({ url, queue: "params", logger: new RecordingLogger() });
  try {
    assertEquals(await client.call("bound", [], { b: 2, a: 1 }), 3);
    assertEquals(await client.call("list", [3, 9, 4]), [3, 9, 4]);
  } finally {
    await client.close();
    await app.stop();
  }
});

Deno.test("AppServer validates its options when it is created", () => {
  assertThrows(() => new AppServer({ maxWorkers: 0 }), ConfigError, "option maxWorkers");
  assertThrows(() => new AppServer({ maxWorkers: 1.5 }), ConfigError, "current value is 1.5");
  assertThrows(() => new AppServer({ workerTimeoutMs: -1 }), ConfigError, "workerTimeoutMs");
  assertThrows(() => new AppServer({ maxDeliveries: 0 }), ConfigError, "maxDeliveries");
  assertThrows(() => new AppServer({ maxMessageBytes: 10 }), ConfigError, "maxMessageBytes");
  assertThrows(() => new AppServer({ queue: "bad name" }), ConfigError, "option queue");
  assertThrows(
    () => new AppServer({ broker: "nats" as "memory" }),
    ConfigError,
    "expected one of memory, redis, kafka, amqp",
  );
  assertThrows(
    () => new AppServer({ defaultWorker: "fiber" as "async" }),
    ConfigError,
    "defaultWorker",
  );
  new AppServer({ workerTimeoutMs: null, ...quiet() });
});

Deno.test("AppServer.start() twice fails; stop() is idempotent and shared", async () => {
  const app = new AppServer({ ...quiet(), url: isolated() });
  await app.stop(); // not started: nothing to do
  await app.start();
  assert(app.serving);
  await assertRejects(app.start(), ConfigError, "serving");
  const first = app.stop();
  const second = app.stop();
  assertEquals(first, second);
  await first;
  assertEquals(app.serving, false);
  // A stopped server can start again.
  await app.start();
  await app.stop();
});

Deno.test("AppServer.stop() during start() stops once the start is done", async () => {
  const app = new AppServer({ ...quiet(), url: isolated() });
  const started = app.start();
  const stopped = app.stop();
  await started;
  await stopped;
  assertEquals(app.serving, false);
});

Deno.test("connectBroker() refuses a broker kind it does not know", async () => {
  await assertRejects(
    connectBroker("nats" as BrokerKind, {}),
    ConfigError,
    'Cannot use broker "nats": it is not one prpc knows',
  );
});

Deno.test("register() and registerModule() refuse a server that has started", async () => {
  const app = new AppServer({ ...quiet(), url: isolated() });
  await app.start();
  try {
    assertThrows(
      () => app.register("late", () => 1),
      ConfigError,
      "register functions before start()",
    );
    await assertRejects(
      app.registerModule(new URL("./fixtures/worker_funcs.ts", import.meta.url)),
      ConfigError,
      "register functions before start()",
    );
    assertEquals(app.functions, []);
  } finally {
    await app.stop();
  }
});

Deno.test("a second close() resolves only once the waiting calls are rejected", async () => {
  const url = isolated();
  const app = new AppServer({ ...quiet(), url, queue: "close_twice" });
  app.register("hold", () => new Promise(() => {}));
  await app.start();
  const client = await Client.connect({ url, queue: "close_twice", logger: new RecordingLogger() });
  try {
    let settled = false;
    const call = client.call("hold").catch(() => settled = true);
    const first = client.close();
    await client.close();
    assertEquals(client.pendingCalls, 0, "the second close() waited for the first");
    assertEquals(settled, true);
    await Promise.all([first, call]);
  } finally {
    await app.stop({ graceMs: 0 });
  }
});
