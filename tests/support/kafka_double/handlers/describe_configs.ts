/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * DescribeConfigs v2, for the one setting the double has: the size limit of a
 * record batch, `message.max.bytes` of the broker and `max.message.bytes` of
 * every topic (the broker's value, as a topic without an override has).
 *
 * @module
 */

import { type Reader, Writer } from "../codec.ts";
import { ErrorCode } from "../error_codes.ts";
import { type BrokerState, NODE_ID } from "../broker.ts";
import type { ApiHandler } from "../server.ts";

const TOPIC = 2;
const BROKER = 4;
/** `config_source` of a value from the broker's static configuration. */
const STATIC_BROKER_CONFIG = 4;
/** `config_source` of a default value. */
const DEFAULT_CONFIG = 5;

interface Entry {
  name: string;
  value: string;
  source: number;
}

/** DescribeConfigs v2. */
export function describeConfigsApi(broker: BrokerState): ApiHandler {
  const limit = String(broker.maxMessageBytes);
  const entriesOf = (type: number, name: string): Entry[] | ErrorCode => {
    if (type === BROKER) {
      if (name !== String(NODE_ID)) return ErrorCode.INVALID_REQUEST;
      return [{ name: "message.max.bytes", value: limit, source: STATIC_BROKER_CONFIG }];
    }
    if (type === TOPIC) {
      if (!broker.log.topicNames().includes(name)) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      return [{ name: "max.message.bytes", value: limit, source: DEFAULT_CONFIG }];
    }
    return ErrorCode.INVALID_REQUEST;
  };
  return {
    apiKey: 32,
    name: "DescribeConfigs",
    version: 2,
    handle: (body: Reader) => {
      const resources = body.array((reader) => ({
        type: reader.int8(),
        name: reader.string(),
        configNames: reader.nullableArray((reader) => reader.string()),
      }));
      body.boolean(); // include_synonyms: the double's settings have none
      return new Writer()
        .int32(0) // throttle time
        .array(resources, (writer, resource) => {
          const entries = entriesOf(resource.type, resource.name);
          const error = typeof entries === "number" ? entries : ErrorCode.NONE;
          const wanted = typeof entries === "number"
            ? []
            : entries.filter((entry) =>
              resource.configNames === null || resource.configNames.includes(entry.name)
            );
          writer
            .int16(error)
            .string(null)
            .int8(resource.type)
            .string(resource.name)
            .array(wanted, (writer, entry) => {
              writer
                .string(entry.name)
                .string(entry.value)
                .boolean(true) // read only
                .int8(entry.source)
                .boolean(false) // sensitive
                .array([], () => {}); // synonyms
            });
        });
    },
  };
}
