/**
 * A client in a second terminal: calls the functions of `server.ts`
 * (`deno task example:redis-client`, `example:amqp-client`, `example:kafka-client`).
 */
import { Client } from "@prpc/prpc";
import type * as server from "./server.ts";

// The same defaults as the server's: PRPC_TYPE_BROKER, PRPC_URL_BROKER, PRPC_QUEUE_NAME.
const client = await Client.connect({ timeoutMs: 10_000 });
const api = client.proxy<typeof server>();

console.log(await api.summ(1, 2)); // 3.5
console.log(await client.call("summ", [1, 2], { z: 3 })); // 6
console.log(await Promise.all([api.slowEcho("a"), api.slowEcho("b")])); // [ "a", "b" ]

await client.close();
