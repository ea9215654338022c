/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * Every API version the double implements, which is also what ApiVersions
 * advertises: the newest non-flexible versions kafkajs 2.2.4 has.
 *
 * @module
 */

import type { BrokerState } from "../broker.ts";
import type { ApiHandler } from "../server.ts";
import { apiVersionsApi } from "./api_versions.ts";
import {
  describeGroupsApi,
  findCoordinatorApi,
  heartbeatApi,
  joinGroupApi,
  leaveGroupApi,
  syncGroupApi,
} from "./consumer_groups.ts";
import { describeConfigsApi } from "./describe_configs.ts";
import { fetchApi } from "./fetch.ts";
import { listOffsetsApi } from "./list_offsets.ts";
import { metadataApi } from "./metadata.ts";
import { offsetCommitApi, offsetFetchApi } from "./offsets.ts";
import { produceApi } from "./produce.ts";
import { createPartitionsApi, createTopicsApi, deleteTopicsApi } from "./topics.ts";

/** The handlers of every implemented API, for `broker`. */
export function createApis(broker: BrokerState): ApiHandler[] {
  const apis: ApiHandler[] = [
    produceApi(broker),
    fetchApi(broker),
    listOffsetsApi(broker),
    metadataApi(broker),
    offsetCommitApi(broker),
    offsetFetchApi(broker),
    findCoordinatorApi(broker),
    joinGroupApi(broker),
    heartbeatApi(broker),
    leaveGroupApi(broker),
    syncGroupApi(broker),
    describeGroupsApi(broker),
    createTopicsApi(broker),
    deleteTopicsApi(broker),
    createPartitionsApi(broker),
    describeConfigsApi(broker),
  ];
  apis.push(apiVersionsApi(() => apis));
  return apis;
}
