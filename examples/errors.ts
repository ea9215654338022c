/**
 * What a caller gets when things go wrong, over the memory broker:
 * `deno task example:errors`. Every failure is a typed error; remote errors
 * keep the name, message, `code` and `data` the function gave them.
 */
import {
  AppServer,
  ArgumentError,
  CallTimeoutError,
  Client,
  consoleLogger,
  RemoteError,
  UnknownFunctionError,
} from "@prpc/prpc";

const app = new AppServer({ queue: "errors_example", logger: consoleLogger("warn") });
app.register("withdraw", (account: string, amount: number) => {
  if (amount > 100) {
    throw Object.assign(new RangeError(`cannot withdraw ${amount} from ${account}`), {
      code: "E_LIMIT",
      data: { limit: 100 },
    });
  }
  return amount;
});
app.register("slow", (ms: number) => new Promise((resolve) => setTimeout(resolve, ms, ms)));
await app.start();

const client = await Client.connect({ queue: "errors_example", timeoutMs: 5_000 });
try {
  await client.call("withdraw", ["acc-1", 500]);
} catch (error) {
  if (error instanceof RemoteError) {
    // RangeError cannot withdraw 500 from acc-1 E_LIMIT { limit: 100 }
    console.log(error.remoteName, error.remoteMessage, error.code, error.data);
  }
}
for (
  const attempt of [
    () => client.call("withdraw", ["acc-1"]), // ArgumentError: missing required argument "amount"
    () => client.call("withdrw", ["acc-1", 5]), // UnknownFunctionError
    () => client.call("slow", [2_000], {}, { timeoutMs: 100 }), // CallTimeoutError after 100 ms
    () => client.call("slow", [2_000], {}, { signal: AbortSignal.timeout(50) }), // CallTimeoutError
  ]
) {
  try {
    await attempt();
  } catch (error) {
    const kind = error instanceof ArgumentError
      ? "ArgumentError"
      : error instanceof UnknownFunctionError
      ? "UnknownFunctionError"
      : error instanceof CallTimeoutError
      ? "CallTimeoutError"
      : "other";
    console.log(kind, (error as Error).message);
  }
}
await client.close();
await app.stop({ graceMs: 0 }); // the slow calls still running are handed back, not awaited
