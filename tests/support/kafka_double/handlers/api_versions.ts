/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * ApiVersions v2: advertises exactly one version per implemented API (minimum =
 * maximum), so kafkajs, which takes the lower of its newest version and the
 * broker's maximum, uses the versions the double implements.
 *
 * @module
 */

import { Writer } from "../codec.ts";
import { ErrorCode } from "../error_codes.ts";
import type { ApiHandler } from "../server.ts";

/** ApiVersions v2 for the given APIs (which may include this one). */
export function apiVersionsApi(apis: () => readonly ApiHandler[]): ApiHandler {
  return {
    apiKey: 18,
    name: "ApiVersions",
    version: 2,
    handle: () =>
      new Writer()
        .int16(ErrorCode.NONE)
        .array(apis(), (writer, api) => {
          writer.int16(api.apiKey).int16(api.version).int16(api.version);
        })
        .int32(0), // throttle time
  };
}
