/** The kafkajs work-arounds of brokers/kafka/kafkajs_fixes.ts, on a live connection. */
import { connectBroker } from "../mod.ts";
// @ts-ignore: a CommonJS module of kafkajs without a declaration file
import RequestQueueModule from "kafkajs/src/network/requestQueue/index.js";
import { assert } from "./support/assert.ts";
import { kafkaUrl, testUrl } from "./support/kafka_target.ts";
import { RecordingLogger } from "./support/logger.ts";

const url = await kafkaUrl();

Deno.test("an idle kafkajs connection runs no 1 ms timer loop (kafkajs #1556, #1751)", async () => {
  const prototype = (RequestQueueModule as {
    prototype: { checkPendingRequests(): void };
  }).prototype;
  const check = prototype.checkPendingRequests;
  let checks = 0;
  prototype.checkPendingRequests = function (this: unknown) {
    checks++;
    return check.call(this);
  };
  const broker = await connectBroker("kafka", {
    url: testUrl(url),
    logger: new RecordingLogger(),
  });
  try {
    // Some traffic first: every request used to start the loop on its connection.
    await broker.publish(`fix_${crypto.randomUUID().slice(0, 8)}`, "raw", "{}");
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = checks;
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Unfixed, each open connection checks its queue every 1-2 ms: hundreds in 500 ms.
    assert(checks - before < 20, `${checks - before} queue checks in 500 ms of idling`);
  } finally {
    prototype.checkPendingRequests = check;
    await broker.close();
  }
});
