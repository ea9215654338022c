/** Redis broker: URLs and settings (no server needed). */
import { ConfigError } from "../mod.ts";
import { parseRedisUrl } from "../brokers/redis/url.ts";
import {
  checkRecoverAfterHeartbeat,
  readRedisSettings,
  recoverMarginWarning,
} from "../brokers/redis/settings.ts";
import { assert, assertEquals, assertThrows } from "./support/assert.ts";

Deno.test("redis URL: redis:// and rediss:// with user, password, port and db index", () => {
  assertEquals(parseRedisUrl(undefined), {
    host: "localhost",
    port: 6379,
    username: undefined,
    password: undefined,
    db: 0,
    tls: false,
    display: "redis://localhost:6379/0",
  });
  assertEquals(parseRedisUrl("rediss://alice:p%40ss%3Aword@cache.example:6380/3"), {
    host: "cache.example",
    port: 6380,
    username: "alice",
    password: "p@ss:word",
    db: 3,
    tls: true,
    display: "rediss://alice:***@cache.example:6380/3",
  });
  const passwordOnly = parseRedisUrl("redis://:secret@127.0.0.1");
  assertEquals([passwordOnly.username, passwordOnly.password], [undefined, "secret"]);
  assertEquals(passwordOnly.display, "redis://:***@127.0.0.1");
  assertEquals(parseRedisUrl("redis://[::1]:7000/").host, "::1");
  assertEquals(parseRedisUrl("redis://[::1]:7000/").db, 0);
});

Deno.test("redis URL: anything else is a ConfigError that does not show the password", () => {
  const cases: [string, string][] = [
    ["http://localhost:6379", "the scheme is http"],
    ["redis://localhost:6379/zero", 'the database index "zero" is not a whole number'],
    ["redis://localhost:6379/0?ssl=true", "query or fragment"],
    ["not a url", "it is not a URL"],
    ["redis://user:hunter2@host:99999", "it is not a URL"],
  ];
  for (const [url, why] of cases) {
    const error = assertThrows(() => parseRedisUrl(url), ConfigError, why);
    assert(error.message.includes("expected redis://"), error.message);
    assert(!error.message.includes("hunter2"), error.message);
  }
});

Deno.test("redis settings: brokerSettings in ms win; unknown keys and bad values are ConfigErrors", () => {
  assertEquals(
    readRedisSettings({
      resultTtlSec: 60,
      heartbeatIntervalMs: 100,
      recoverIntervalMs: "400",
      deadLetterLimit: 5,
      maxMessageBytes: 2048,
      readCount: 7,
      ignored: undefined,
    }),
    {
      resultTtlMs: 60_000,
      heartbeatIntervalMs: 100,
      recoverIntervalMs: 400,
      deadLetterLimit: 5,
      maxMessageBytes: 2048,
      readCount: 7,
    },
  );
  assertEquals(readRedisSettings({ maxMessageBytes: 2 ** 40 }).maxMessageBytes, 512 * 1024 * 1024);
  assertThrows(
    () => readRedisSettings({ heartbeatIntervalSec: 1 }),
    ConfigError,
    'Cannot use Redis broker setting "heartbeatIntervalSec": known settings are resultTtlSec, heartbeatIntervalMs',
  );
  for (const value of [0, -1, 1.5, "abc", true]) {
    assertThrows(
      () => readRedisSettings({ recoverIntervalMs: value }),
      ConfigError,
      `Cannot use Redis broker setting recoverIntervalMs as a whole number >= 1: current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  assertThrows(() => readRedisSettings({ maxMessageBytes: 100 }), ConfigError, ">= 1024");
});

Deno.test("redis settings: the recover interval must be longer than the heartbeat interval", () => {
  checkRecoverAfterHeartbeat(
    readRedisSettings({ heartbeatIntervalMs: 100, recoverIntervalMs: 101 }),
  );
  assertThrows(
    () =>
      checkRecoverAfterHeartbeat(
        readRedisSettings({ heartbeatIntervalMs: 100, recoverIntervalMs: 100 }),
      ),
    ConfigError,
    "recover interval of 100 ms and a heartbeat interval of 100 ms",
  );
});

Deno.test("redis settings: a recover interval below twice the heartbeat gets a warning", () => {
  assertEquals(
    recoverMarginWarning(readRedisSettings({})),
    undefined,
    "the defaults, 45 s and 15 s",
  );
  assertEquals(
    recoverMarginWarning(readRedisSettings({ heartbeatIntervalMs: 100, recoverIntervalMs: 200 })),
    undefined,
  );
  const warning = recoverMarginWarning(
    readRedisSettings({ heartbeatIntervalMs: 100, recoverIntervalMs: 199 }),
  );
  assert(
    warning?.includes("(199 ms) is shorter than twice the heartbeat interval (100 ms)"),
    warning,
  );
});

async function settingsFromEnv(env: Record<string, string>) {
  const fixture = new URL("./fixtures/redis_settings.ts", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-env", fixture],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("redis settings: PRPC_REDIS_* variables in seconds, and PRPC's defaults", async () => {
  const defaults = await settingsFromEnv({});
  assertEquals(defaults.code, 0, defaults.stderr);
  assertEquals(JSON.parse(defaults.stdout), {
    resultTtlMs: 21_600_000,
    heartbeatIntervalMs: 15_000,
    recoverIntervalMs: 45_000,
    deadLetterLimit: 10_000,
    maxMessageBytes: 16 * 1024 * 1024,
    readCount: 32,
  });
  const run = await settingsFromEnv({
    PRPC_REDIS_EXPIRE_MESSAGE_FEEDBACK_SEC: "60",
    PRPC_REDIS_HEARTBEAT_INTERVAL_SEC: "2",
    PRPC_REDIS_RECOVER_INTERVAL_SEC: "7",
  });
  assertEquals(run.code, 0, run.stderr);
  const settings = JSON.parse(run.stdout);
  assertEquals(
    [settings.resultTtlMs, settings.heartbeatIntervalMs, settings.recoverIntervalMs],
    [60_000, 2_000, 7_000],
  );
  const bad = await settingsFromEnv({ PRPC_REDIS_HEARTBEAT_INTERVAL_SEC: "soon" });
  assertEquals(bad.code, 1);
  assert(
    bad.stderr.includes(
      'Cannot read PRPC_REDIS_HEARTBEAT_INTERVAL_SEC as a whole number >= 1: current value is "soon"',
    ),
    bad.stderr,
  );
});
