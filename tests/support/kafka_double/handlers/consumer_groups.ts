/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * The group membership APIs, on top of the coordinator of `groups.ts`:
 * FindCoordinator v2 (the single node, for groups only: there are no
 * transactions), JoinGroup v5 (with MEMBER_ID_REQUIRED for a first join, as
 * Kafka does since v4), SyncGroup v3, Heartbeat v3, LeaveGroup v3 and
 * DescribeGroups v2. Static membership (`group_instance_id`) is read and ignored.
 *
 * @module
 */

import { type Reader, Writer } from "../codec.ts";
import { ErrorCode } from "../error_codes.ts";
import { type BrokerState, NODE_ID } from "../broker.ts";
import type { ApiHandler, RequestContext } from "../server.ts";

const GROUP_KEY_TYPE = 0;

/** FindCoordinator v2. */
export function findCoordinatorApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 10,
    name: "FindCoordinator",
    version: 2,
    handle: (body: Reader) => {
      body.string(); // key: the group id, all groups live on the single node
      const keyType = body.int8();
      const writer = new Writer().int32(0); // throttle time
      if (keyType !== GROUP_KEY_TYPE) {
        return writer
          .int16(ErrorCode.COORDINATOR_NOT_AVAILABLE)
          .string("the Kafka test double has no transaction coordinator")
          .int32(-1)
          .string("")
          .int32(-1);
      }
      return writer.int16(ErrorCode.NONE).string(null).int32(NODE_ID).string(broker.host)
        .int32(broker.port);
    },
  };
}

/** JoinGroup v5; the response waits for the rebalance to complete. */
export function joinGroupApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 11,
    name: "JoinGroup",
    version: 5,
    handle: async (body: Reader, context: RequestContext) => {
      const groupId = body.string();
      const sessionTimeoutMs = body.int32();
      const rebalanceTimeoutMs = body.int32();
      const memberId = body.string();
      body.nullableString(); // group instance id: static membership is not implemented
      const protocolType = body.string();
      const protocols = body.array((reader) => ({
        name: reader.string(),
        metadata: reader.bytes().slice(),
      }));
      const result = await broker.groups.join({
        groupId,
        sessionTimeoutMs,
        rebalanceTimeoutMs,
        memberId,
        protocolType,
        protocols,
        clientId: context.clientId,
        clientHost: context.clientHost,
      });
      return new Writer()
        .int32(0) // throttle time
        .int16(result.errorCode)
        .int32(result.generationId)
        .string(result.protocolName)
        .string(result.leaderId)
        .string(result.memberId)
        .array(result.members, (writer, member) => {
          writer.string(member.memberId).string(null).bytes(member.metadata);
        });
    },
  };
}

/** SyncGroup v3; a follower's response waits for the leader's assignments. */
export function syncGroupApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 14,
    name: "SyncGroup",
    version: 3,
    handle: async (body: Reader) => {
      const groupId = body.string();
      const generationId = body.int32();
      const memberId = body.string();
      body.nullableString(); // group instance id
      const assignments = new Map(
        body.array((reader) => [reader.string(), reader.bytes().slice()] as const),
      );
      const result = await broker.groups.sync(groupId, generationId, memberId, assignments);
      return new Writer()
        .int32(0) // throttle time
        .int16(result.errorCode)
        .bytes(result.assignment);
    },
  };
}

/** Heartbeat v3. */
export function heartbeatApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 12,
    name: "Heartbeat",
    version: 3,
    handle: (body: Reader) => {
      const groupId = body.string();
      const generationId = body.int32();
      const memberId = body.string();
      body.nullableString(); // group instance id
      const errorCode = broker.groups.heartbeat(groupId, generationId, memberId);
      return new Writer().int32(0).int16(errorCode); // throttle time, error
    },
  };
}

/** LeaveGroup v3 (a batch of members). */
export function leaveGroupApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 13,
    name: "LeaveGroup",
    version: 3,
    handle: (body: Reader) => {
      const groupId = body.string();
      const members = body.array((reader) => {
        const memberId = reader.string();
        reader.nullableString(); // group instance id
        return memberId;
      });
      return new Writer()
        .int32(0) // throttle time
        .int16(ErrorCode.NONE)
        .array(members, (writer, memberId) => {
          const errorCode = broker.groups.leave(groupId, memberId);
          writer.string(memberId).string(null).int16(errorCode);
        });
    },
  };
}

/** DescribeGroups v2; an unknown group is reported in state "Dead", as Kafka does. */
export function describeGroupsApi(broker: BrokerState): ApiHandler {
  return {
    apiKey: 15,
    name: "DescribeGroups",
    version: 2,
    handle: (body: Reader) => {
      const groupIds = body.array((reader) => reader.string());
      return new Writer()
        .int32(0) // throttle time
        .array(groupIds, (writer, groupId) => {
          const group = broker.groups.describe(groupId);
          writer
            .int16(ErrorCode.NONE)
            .string(groupId)
            .string(group.state)
            .string(group.protocolType)
            .string(group.protocolName)
            .array(group.members, (writer, member) => {
              writer
                .string(member.memberId)
                .string(member.clientId)
                .string(member.clientHost)
                .bytes(member.metadata)
                .bytes(member.assignment);
            });
        });
    },
  };
}
