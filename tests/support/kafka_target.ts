/**
 * The Kafka the tests run against: a real Kafka (2.1 or newer) when
 * `PRPC_TEST_KAFKA_URL` names one (e.g. `localhost:9092`, or a `kafka://` URL
 * with SASL/TLS settings), else the protocol test double, started here once
 * per test module and left running until the module's process ends. This is
 * the only place the tests know about the double.
 */

let started: Promise<string> | undefined;

/** The broker URL: `PRPC_TEST_KAFKA_URL`, or the address of this module's test double. */
export function kafkaUrl(): Promise<string> {
  started ??= (async () => {
    const real = Deno.env.get("PRPC_TEST_KAFKA_URL")?.trim();
    if (real) return real;
    const { startKafkaDouble } = await import("./kafka_double/mod.ts");
    return (await startKafkaDouble()).url;
  })();
  return started;
}

/**
 * Group timings short enough for tests and accepted by a real Kafka
 * (`group.min.session.timeout.ms` is 6000 by default).
 */
export const FAST_GROUP_SETTINGS = {
  sessionTimeoutMs: 6_000,
  heartbeatIntervalMs: 200,
  rebalanceTimeoutMs: 10_000,
  maxWaitMs: 100,
} as const;

/**
 * A Kafka URL with settings in its query ({@linkcode FAST_GROUP_SETTINGS} and
 * `settings`), for `host:port` and `kafka://` URLs alike.
 *
 * @param url The base URL; its own query parameters are kept unless `settings` replaces them.
 * @param settings More settings, e.g. a `groupId` of the test's own.
 * @returns The URL.
 */
export function testUrl(url: string, settings: Record<string, string | number> = {}): string {
  const at = url.indexOf("?");
  const query = new URLSearchParams(at < 0 ? "" : url.slice(at + 1));
  for (const [key, value] of Object.entries({ ...FAST_GROUP_SETTINGS, ...settings })) {
    query.set(key, String(value));
  }
  return `${at < 0 ? url : url.slice(0, at)}?${query}`;
}
