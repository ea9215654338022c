/**
 * Builds the kafkajs client from the resolved settings, routes kafkajs's own
 * log lines to prpc's logger (at `debug`: kafkajs is chatty, and prpc reports
 * what matters itself), and turns kafkajs errors into prpc's.
 *
 * @module
 */

import { Kafka, type KafkaConfig, logLevel } from "kafkajs";
import "./kafkajs_fixes.ts";
import { BrokerError, ConfigError, PrpcError } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/logger.ts";
import type { KafkaSettings } from "./settings.ts";

/**
 * Creates the kafkajs client. TLS files are read here.
 *
 * @param settings The resolved settings.
 * @param logger Where kafkajs's log lines go, at `debug`.
 * @returns The client; it opens connections only when its producers, consumers and admin connect.
 * @throws {ConfigError} When a TLS file cannot be read.
 */
export function createKafka(settings: KafkaSettings, logger: Logger): Kafka {
  return new Kafka(kafkaConfig(settings, logger));
}

/**
 * The kafkajs client configuration of the settings: brokers, timeouts,
 * retries, logging, and SASL and TLS when the settings ask for them.
 *
 * @param settings The resolved settings.
 * @param logger Where kafkajs's log lines go, at `debug`.
 * @returns The configuration.
 * @throws {ConfigError} When a TLS file cannot be read.
 */
export function kafkaConfig(settings: KafkaSettings, logger: Logger): KafkaConfig {
  const config: KafkaConfig = {
    brokers: settings.brokers,
    clientId: settings.clientId,
    connectionTimeout: settings.connectionTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    retry: { retries: settings.retries },
    logLevel: logLevel.INFO,
    logCreator: () => ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, logger: _name, ...details } = log;
      logger.debug(`kafkajs ${namespace}: ${message}`, { level: logLevel[level], ...details });
    },
  };
  if (settings.tls !== undefined) {
    const tls = settings.tls;
    config.ssl = {
      rejectUnauthorized: tls.rejectUnauthorized,
      ...(tls.caFile === undefined ? {} : { ca: [readPem(tls.caFile, "sslCaFile")] }),
      ...(tls.certFile === undefined ? {} : { cert: readPem(tls.certFile, "sslCertFile") }),
      ...(tls.keyFile === undefined ? {} : { key: readPem(tls.keyFile, "sslKeyFile") }),
    };
  }
  const sasl = settings.sasl;
  if (sasl !== undefined) {
    const { username, password } = sasl;
    config.sasl = sasl.mechanism === "plain"
      ? { mechanism: "plain", username, password }
      : sasl.mechanism === "scram-sha-256"
      ? { mechanism: "scram-sha-256", username, password }
      : { mechanism: "scram-sha-512", username, password };
  }
  return config;
}

function readPem(path: string, setting: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    throw new ConfigError(
      `Cannot read the Kafka setting ${setting} ${JSON.stringify(path)}: ${errorText(err)}`,
      { cause: err },
    );
  }
}

/**
 * The Kafka protocol error inside a kafkajs error (kafkajs wraps them, e.g. in
 * `KafkaJSNonRetriableError` after retrying).
 *
 * @param err What kafkajs threw.
 * @returns The error with the Kafka error code name in `type`, or `undefined`.
 */
export function kafkaProtocolError(err: unknown): (Error & { type: string }) | undefined {
  for (let current = err, depth = 0; current instanceof Error && depth < 5; depth++) {
    if (typeof (current as Error & { type?: unknown }).type === "string") {
      return current as Error & { type: string };
    }
    current = current.cause;
  }
  return undefined;
}

/**
 * The Kafka error code name (e.g. `"MESSAGE_TOO_LARGE"`) of a kafkajs error.
 *
 * @param err What kafkajs threw.
 * @returns The code name, or `undefined` when the error carries none.
 */
export function kafkaErrorType(err: unknown): string | undefined {
  return kafkaProtocolError(err)?.type;
}

/**
 * Wraps a kafkajs failure as a `BrokerError` that says what was being done;
 * prpc's own errors pass through unchanged.
 *
 * @param doing What prpc was doing, e.g. `"Cannot publish to prpc_jobs"`.
 * @param err What was thrown.
 * @returns The error to throw.
 */
export function brokerError(doing: string, err: unknown): PrpcError {
  if (err instanceof PrpcError) return err;
  return new BrokerError(`${doing}: ${errorText(err)}`, { cause: err });
}

/** The message of an error, with the Kafka code name when kafkajs gave one. */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const type = kafkaErrorType(err);
  return type === undefined || err.message.includes(type)
    ? err.message
    : `${err.message} (${type})`;
}
