/**
 * Partition assigners (run by the group leader, see kafkajs `partitionAssigners`).
 *
 * - {@linkcode stickyAssigner}, preferred by prpc servers: balances each topic
 *   over the members that read it, and leaves partitions where they are as
 *   far as balance allows, keeping first those where requests are running.
 *   Moving such a partition would make its new owner deliver those requests
 *   again while they still run. Each member tells the leader what it owns and
 *   where it is busy in its join metadata.
 * - {@linkcode roundRobinAssigner}, Kafka's `roundrobin` (same protocol name),
 *   the fallback the group uses when a member does not know the sticky one
 *   (a PRPC server in the same group). kafkajs's own round-robin cannot
 *   serve: it hands the leader's topics to every member, whatever each
 *   subscribed to, and servers of different queues share the group.
 * - {@linkcode privateAssigner} for the readers of feedback and dead-letter
 *   topics, the only member of a group of their own, which read the
 *   partitions they choose.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  type Assigner,
  AssignerProtocol,
  type Cluster,
  type GroupMember,
  type PartitionAssigner,
} from "kafkajs";

const { MemberAssignment, MemberMetadata } = AssignerProtocol;
const NO_USER_DATA = Buffer.alloc(0);

/** Partitions by topic. */
export type TopicPartitions = Record<string, number[]>;

/** What a member tells the leader about itself. */
export interface MemberState {
  /** Its member id in the group. */
  memberId: string;
  /** Topics it reads. */
  topics: string[];
  /** Partitions it owned in the last generation. */
  owned: TopicPartitions;
  /** Of those, the partitions with requests running. */
  busy: TopicPartitions;
}

/**
 * The sticky assignment, per topic: every member that reads the topic gets
 * ⌊P/M⌋ or ⌈P/M⌉ of its P partitions; a member keeps what it owned up to its
 * share, busy partitions first; the rest go to members below their share.
 *
 * @param members The members, with what they own.
 * @param partitions The partitions of every topic.
 * @returns Partitions by topic, by member id.
 */
export function stickyAssignment(
  members: readonly MemberState[],
  partitions: ReadonlyMap<string, readonly number[]>,
): Map<string, TopicPartitions> {
  const result = new Map<string, TopicPartitions>(members.map((m) => [m.memberId, {}]));
  for (const [topic, all] of partitions) {
    const readers = members.filter((m) => m.topics.includes(topic));
    if (readers.length === 0) continue;
    const exists = new Set(all);
    const owned = (m: MemberState) => (m.owned[topic] ?? []).filter((p) => exists.has(p));
    // The larger shares go to the members that own the most already: fewer moves.
    const ranked = [...readers].sort((a, b) =>
      owned(b).length - owned(a).length || compare(a.memberId, b.memberId)
    );
    const share = new Map(ranked.map((m, i) => [
      m.memberId,
      Math.floor(all.length / readers.length) + (i < all.length % readers.length ? 1 : 0),
    ]));
    const taken = new Set<number>();
    const mine = (m: MemberState) => (result.get(m.memberId) ?? {})[topic] ??= [];
    for (const member of ranked) {
      const busy = new Set(member.busy[topic] ?? []);
      const keep = owned(member).sort((a, b) => Number(busy.has(b)) - Number(busy.has(a)) || a - b);
      for (const partition of keep) {
        if (mine(member).length >= (share.get(member.memberId) ?? 0)) break;
        if (taken.has(partition)) continue;
        taken.add(partition);
        mine(member).push(partition);
      }
    }
    const free = [...all].filter((p) => !taken.has(p)).sort((a, b) => a - b);
    const byId = [...readers].sort((a, b) => compare(a.memberId, b.memberId));
    for (const member of byId) {
      while (free.length > 0 && mine(member).length < (share.get(member.memberId) ?? 0)) {
        mine(member).push(free.shift() as number);
      }
    }
    for (const member of readers) mine(member).sort((a, b) => a - b);
  }
  return result;
}

/**
 * Kafka's `roundrobin` assignment: all partitions of all topics, sorted, dealt
 * in turn to the members (sorted by id), skipping members that do not read the topic.
 *
 * @param members Member ids and the topics each reads.
 * @param partitions The partitions of every topic.
 * @returns Partitions by topic, by member id.
 */
export function roundRobinAssignment(
  members: readonly Pick<MemberState, "memberId" | "topics">[],
  partitions: ReadonlyMap<string, readonly number[]>,
): Map<string, TopicPartitions> {
  const ids = members.map((m) => m.memberId).sort(compare);
  const topicsOf = new Map(members.map((m) => [m.memberId, new Set(m.topics)]));
  const result = new Map<string, TopicPartitions>(ids.map((id) => [id, {}]));
  let next = 0;
  for (const topic of [...partitions.keys()].sort(compare)) {
    for (const partition of [...partitions.get(topic) ?? []].sort((a, b) => a - b)) {
      for (let tried = 0; tried < ids.length; tried++) {
        const id = ids[next++ % ids.length] ?? "";
        if (!topicsOf.get(id)?.has(topic)) continue;
        ((result.get(id) ?? {})[topic] ??= []).push(partition);
        break;
      }
    }
  }
  return result;
}

/**
 * The sticky assigner of the servers' group.
 *
 * @param state What this member owns and where it is busy, asked at each join.
 * @returns The assigner.
 */
export function stickyAssigner(
  state: () => { owned: TopicPartitions; busy: TopicPartitions },
): PartitionAssigner {
  return ({ cluster }) => ({
    name: "prpc-sticky",
    version: 0,
    async assign({ members }) {
      const states = members.map((member) => readMemberState(member));
      const partitions = await partitionsOf(cluster, states.flatMap((s) => s.topics));
      return encodeAssignment(stickyAssignment(states, partitions));
    },
    protocol({ topics }) {
      const userData = Buffer.from(JSON.stringify(state()));
      return {
        name: "prpc-sticky",
        metadata: MemberMetadata.encode({ version: 0, topics, userData }),
      };
    },
  });
}

/**
 * Kafka's `roundrobin` assigner, see {@linkcode roundRobinAssignment}.
 *
 * @param config What kafkajs gives an assigner; the cluster gives partition counts.
 * @returns The assigner.
 */
export function roundRobinAssigner({ cluster }: { cluster: Cluster }): Assigner {
  return {
    name: "roundrobin",
    version: 0,
    async assign({ members }) {
      const states = members.map((member) => readMemberState(member));
      const partitions = await partitionsOf(cluster, states.flatMap((s) => s.topics));
      return encodeAssignment(roundRobinAssignment(states, partitions));
    },
    protocol({ topics }) {
      return {
        name: "roundrobin",
        metadata: MemberMetadata.encode({ version: 0, topics, userData: NO_USER_DATA }),
      };
    },
  };
}

/**
 * An assigner for a group with one member that reads `partitions` of `topic`
 * (all of them when `"all"`, including partitions added later).
 *
 * @param topic The topic.
 * @param partitions The partitions to read.
 * @returns The assigner.
 */
export function privateAssigner(
  topic: string,
  partitions: "all" | readonly number[],
): PartitionAssigner {
  return ({ cluster }) => ({
    name: "prpc-private",
    version: 0,
    assign({ members }) {
      const existing = cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId);
      const mine = partitions === "all" ? existing : partitions.filter((p) => existing.includes(p));
      return Promise.resolve(members.map((member, i) => ({
        memberId: member.memberId,
        memberAssignment: MemberAssignment.encode({
          version: 0,
          assignment: i === 0 ? { [topic]: mine } : {},
          userData: NO_USER_DATA,
        }),
      })));
    },
    protocol({ topics }) {
      return {
        name: "prpc-private",
        metadata: MemberMetadata.encode({ version: 0, topics, userData: NO_USER_DATA }),
      };
    },
  });
}

/** A member's topics, and what it owns when its metadata says so (sticky members do). */
function readMemberState(member: GroupMember): MemberState {
  const metadata = MemberMetadata.decode(member.memberMetadata);
  const state: MemberState = {
    memberId: member.memberId,
    topics: metadata?.topics ?? [],
    owned: {},
    busy: {},
  };
  const userData = metadata?.userData;
  if (userData === undefined || userData.length === 0) return state;
  try {
    const data = JSON.parse(userData.toString("utf8")) as { owned?: unknown; busy?: unknown };
    state.owned = topicPartitions(data.owned);
    state.busy = topicPartitions(data.busy);
  } catch {
    // Not ours: the member owns nothing as far as stickiness goes.
  }
  return state;
}

function topicPartitions(value: unknown): TopicPartitions {
  const result: TopicPartitions = {};
  if (typeof value !== "object" || value === null) return result;
  for (const [topic, list] of Object.entries(value)) {
    if (Array.isArray(list)) result[topic] = list.filter((p) => Number.isSafeInteger(p));
  }
  return result;
}

/** The partitions of the topics; the leader may read only some of them itself. */
async function partitionsOf(cluster: Cluster, topics: string[]): Promise<Map<string, number[]>> {
  const unique = [...new Set(topics)];
  await cluster.addMultipleTargetTopics(unique);
  return new Map(
    unique.map((
      topic,
    ) => [topic, cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId)]),
  );
}

function encodeAssignment(assignment: Map<string, TopicPartitions>) {
  return [...assignment].map(([memberId, topics]) => ({
    memberId,
    memberAssignment: MemberAssignment.encode({
      version: 0,
      assignment: topics,
      userData: NO_USER_DATA,
    }),
  }));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
