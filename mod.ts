/**
 * prpc: remote procedure calls through message brokers, for Deno.
 *
 * A server registers plain TypeScript functions; clients call them by name
 * through a broker (the embedded memory broker by default; Redis Streams, Kafka
 * or RabbitMQ selected by `PRPC_TYPE_BROKER`) and await the result, with
 * timeouts and remote errors re-thrown on the caller. Other languages call the
 * same server with plain JSON messages (see `docs/PROTOCOL.md`).
 *
 * @example Server and client in one process
 * ```ts
 * import assert from "node:assert/strict";
 * import { AppServer, Client, RemoteError } from "@prpc/prpc";
 *
 * function summ(a: number, b: number, z = 0.5): number {
 *   return a + b + z;
 * }
 *
 * const app = new AppServer({ queue: "doc_mod", handleSignals: false });
 * app.register(summ);
 * app.register("fail", () => {
 *   throw new TypeError("bad thing");
 * });
 * await app.start();
 *
 * const client = await Client.connect({ queue: "doc_mod" });
 * assert.equal(await client.call("summ", [1, 2], { z: 3 }), 6);
 * const api = client.proxy<{ summ: typeof summ }>();
 * assert.equal(await api.summ(1, 2), 3.5);
 * await assert.rejects(client.call("fail"), (err) => {
 *   return err instanceof RemoteError && err.remoteName === "TypeError";
 * });
 * await client.close();
 * await app.stop();
 * ```
 *
 * @module
 */

export { AppServer, type AppServerOptions, type StopOptions } from "./server/app_server.ts";
export type { RegisterOptions } from "./server/registry.ts";
export { type CallContext, callContext } from "./protocol/call_context.ts";
export { consoleLogger, type Logger, type LogLevel } from "./protocol/logger.ts";
export { type CallOptions, Client, type ClientOptions } from "./client/client.ts";
export type { Decoded, RemoteApi, UntypedApi } from "./client/proxy.ts";
export type { WorkerType } from "./workers/types.ts";
export type { PermissionName, PermissionValue, WorkerPermissions } from "./workers/permissions.ts";
export type { BrokerKind } from "./protocol/env.ts";
export type {
  Broker,
  BrokerConnectOptions,
  BrokerSettings,
  ConnectBroker,
  ConsumeOptions,
  DeadLetter,
  Delivery,
  Inbox,
  Reply,
  Subscription,
} from "./brokers/types.ts";
export { connectBroker } from "./brokers/load.ts";
export {
  ArgumentError,
  BrokerError,
  CallTimeoutError,
  type CallTimeoutErrorOptions,
  ConfigError,
  PayloadTooLargeError,
  type PayloadTooLargeErrorOptions,
  ProtocolError,
  PrpcError,
  type PrpcErrorOptions,
  RemoteError,
  type RemoteErrorOptions,
  SerializationError,
  UnknownFunctionError,
  type WireError,
  type WireErrorType,
  WorkerCrashedError,
  WorkerTimeoutError,
} from "./protocol/errors.ts";
export type { QueueKind, RequestMessage, ResultMessage } from "./protocol/envelope.ts";
export type { PickledEcho } from "./protocol/jsonpickle.ts";
