/**
 * A server in a terminal of its own, on the broker `PRPC_TYPE_BROKER` names
 * (`deno task example:redis-server`, `example:amqp-server`, `example:kafka-server`).
 * It serves until Ctrl+C, then finishes the calls it is running.
 */
import { AppServer } from "@prpc/prpc";

// broker, url and queue default to PRPC_TYPE_BROKER, PRPC_URL_BROKER and PRPC_QUEUE_NAME
// ("task_prpc"); write them here instead, e.g. { broker: "redis", url: "redis://localhost:6379/0" }.
const app = new AppServer();

export function summ(a: number, b: number, z = 0.5): number {
  return a + b + z;
}

export async function slowEcho(text: string, ms = 500): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return text;
}

app.register(summ);
app.register(slowEcho);

if (import.meta.main) await app.start();
