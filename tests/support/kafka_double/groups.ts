/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * The group coordinator: consumer groups with Kafka's state machine (Empty,
 * PreparingRebalance, CompletingRebalance, Stable), generation ids, the leader
 * that gets every member's metadata and hands out assignments in SyncGroup,
 * rebalance timeouts that drop members who did not rejoin, session timeouts
 * that evict members who stopped heartbeating (a closed connection just stops
 * the heartbeats, as in Kafka), and committed offsets that outlive members.
 *
 * Differences from Kafka, on purpose: any JoinGroup in a Stable or
 * CompletingRebalance group starts a rebalance (Kafka answers a follower that
 * rejoins with unchanged metadata without one); there is no initial rebalance
 * delay for a new group (`group.initial.rebalance.delay.ms`, 3 s in Kafka);
 * session timeouts may be as short as 1 ms (Kafka's default minimum is 6 s);
 * static membership (`group.instance.id`) is not implemented, such members are
 * treated as dynamic ones; offsets never expire.
 *
 * @module
 */

import { ErrorCode } from "./error_codes.ts";

/** Like Kafka's `group.max.session.timeout.ms` default. */
const MAX_SESSION_TIMEOUT_MS = 1_800_000;
const EMPTY = new Uint8Array(0);

/** States of a group, named as Kafka's DescribeGroups reports them. */
export type GroupState = "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable";

/** A partition assignment protocol a member supports, with its metadata. */
export interface GroupProtocol {
  readonly name: string;
  readonly metadata: Uint8Array;
}

/** A JoinGroup request. */
export interface JoinRequest {
  readonly groupId: string;
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  /** `""` for a member joining the first time. */
  readonly memberId: string;
  readonly protocolType: string;
  readonly protocols: readonly GroupProtocol[];
  readonly clientId: string;
  readonly clientHost: string;
}

/** What JoinGroup answers. */
export interface JoinResult {
  readonly errorCode: ErrorCode;
  readonly generationId: number;
  readonly protocolName: string;
  readonly leaderId: string;
  readonly memberId: string;
  /** Every member with its metadata for the chosen protocol; only for the leader. */
  readonly members: readonly { readonly memberId: string; readonly metadata: Uint8Array }[];
}

/** What SyncGroup answers. */
export interface SyncResult {
  readonly errorCode: ErrorCode;
  readonly assignment: Uint8Array;
}

/** An offset committed for a partition. */
export interface CommittedOffset {
  readonly offset: number;
  readonly metadata: string | null;
}

/** A member as DescribeGroups reports it. */
export interface MemberDescription {
  readonly memberId: string;
  readonly clientId: string;
  readonly clientHost: string;
  readonly metadata: Uint8Array;
  readonly assignment: Uint8Array;
}

/** A group as DescribeGroups reports it; `state` is `"Dead"` for an unknown group. */
export interface GroupDescription {
  readonly state: GroupState | "Dead";
  readonly protocolType: string;
  readonly protocolName: string;
  readonly members: readonly MemberDescription[];
}

class Member {
  sessionTimeoutMs = 0;
  rebalanceTimeoutMs = 0;
  protocols: readonly GroupProtocol[] = [];
  clientId = "";
  clientHost = "";
  assignment: Uint8Array = EMPTY;
  /** Set while a JoinGroup of this member waits for the rebalance to complete. */
  awaitingJoin: ((result: JoinResult) => void) | undefined;
  /** Set while a SyncGroup of this member waits for the leader's assignments. */
  awaitingSync: ((result: SyncResult) => void) | undefined;
  sessionTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly id: string) {}

  metadataFor(protocolName: string): Uint8Array {
    return this.protocols.find((protocol) => protocol.name === protocolName)?.metadata ?? EMPTY;
  }
}

class Group {
  state: GroupState = "Empty";
  generationId = 0;
  protocolType = "";
  protocolName = "";
  leaderId: string | undefined;
  readonly members = new Map<string, Member>();
  /** Ids handed out with MEMBER_ID_REQUIRED, valid until their session timeout. */
  readonly pendingMemberIds = new Map<string, ReturnType<typeof setTimeout>>();
  rebalanceTimer: ReturnType<typeof setTimeout> | undefined;
  /** Committed offsets: topic, then partition. */
  readonly offsets = new Map<string, Map<number, CommittedOffset>>();

  constructor(readonly id: string) {}
}

function joinError(errorCode: ErrorCode, memberId: string): JoinResult {
  return { errorCode, generationId: -1, protocolName: "", leaderId: "", memberId, members: [] };
}

function syncError(errorCode: ErrorCode): SyncResult {
  return { errorCode, assignment: EMPTY };
}

/** Coordinator of every consumer group of the double. */
export class GroupCoordinator {
  #groups = new Map<string, Group>();
  #closed = false;

  /** Handles a JoinGroup; settles when the member is in a new generation, or at once on error. */
  join(request: JoinRequest): Promise<JoinResult> {
    const { groupId, memberId } = request;
    if (this.#closed) {
      return Promise.resolve(joinError(ErrorCode.COORDINATOR_NOT_AVAILABLE, memberId));
    }
    if (groupId === "") return Promise.resolve(joinError(ErrorCode.INVALID_GROUP_ID, memberId));
    if (request.sessionTimeoutMs < 1 || request.sessionTimeoutMs > MAX_SESSION_TIMEOUT_MS) {
      return Promise.resolve(joinError(ErrorCode.INVALID_SESSION_TIMEOUT, memberId));
    }
    const group = this.#groupOrNew(groupId);
    if (!this.#supportsProtocols(group, request)) {
      return Promise.resolve(joinError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, memberId));
    }
    if (memberId === "") {
      const newMemberId = `${request.clientId}-${crypto.randomUUID()}`;
      group.pendingMemberIds.set(
        newMemberId,
        setTimeout(() => group.pendingMemberIds.delete(newMemberId), request.sessionTimeoutMs),
      );
      return Promise.resolve(joinError(ErrorCode.MEMBER_ID_REQUIRED, newMemberId));
    }
    let member = group.members.get(memberId);
    if (member === undefined) {
      const pendingTimer = group.pendingMemberIds.get(memberId);
      if (pendingTimer === undefined) {
        return Promise.resolve(joinError(ErrorCode.UNKNOWN_MEMBER_ID, memberId));
      }
      clearTimeout(pendingTimer);
      group.pendingMemberIds.delete(memberId);
      member = new Member(memberId);
      group.members.set(memberId, member);
    }
    if (group.members.size === 1) group.protocolType = request.protocolType;
    member.awaitingJoin?.(joinError(ErrorCode.REBALANCE_IN_PROGRESS, memberId));
    member.sessionTimeoutMs = request.sessionTimeoutMs;
    member.rebalanceTimeoutMs = request.rebalanceTimeoutMs;
    member.protocols = request.protocols;
    member.clientId = request.clientId;
    member.clientHost = request.clientHost;
    const joined = new Promise<JoinResult>((resolve) => (member.awaitingJoin = resolve));
    this.#keepAlive(group, member);
    if (group.state === "PreparingRebalance") this.#completeJoinIfAllJoined(group);
    else this.#prepareRebalance(group);
    return joined;
  }

  /** Handles a SyncGroup; a follower's settles once the leader has sent the assignments. */
  sync(
    groupId: string,
    generationId: number,
    memberId: string,
    assignments: ReadonlyMap<string, Uint8Array>,
  ): Promise<SyncResult> {
    const group = this.#groups.get(groupId);
    const member = group?.members.get(memberId);
    if (group === undefined || member === undefined) {
      return Promise.resolve(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    }
    if (generationId !== group.generationId) {
      return Promise.resolve(syncError(ErrorCode.ILLEGAL_GENERATION));
    }
    if (group.state === "PreparingRebalance") {
      return Promise.resolve(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
    }
    this.#keepAlive(group, member);
    if (group.state === "Stable") {
      return Promise.resolve({ errorCode: ErrorCode.NONE, assignment: member.assignment });
    }
    member.awaitingSync?.(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
    const synced = new Promise<SyncResult>((resolve) => (member.awaitingSync = resolve));
    if (memberId === group.leaderId) {
      group.state = "Stable";
      for (const each of group.members.values()) {
        each.assignment = assignments.get(each.id) ?? EMPTY;
        each.awaitingSync?.({ errorCode: ErrorCode.NONE, assignment: each.assignment });
        each.awaitingSync = undefined;
      }
    }
    return synced;
  }

  /** Handles a Heartbeat: keeps the member alive and tells it when to rejoin. */
  heartbeat(groupId: string, generationId: number, memberId: string): ErrorCode {
    const group = this.#groups.get(groupId);
    const member = group?.members.get(memberId);
    if (group === undefined || member === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    this.#keepAlive(group, member);
    return group.state === "PreparingRebalance" ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE;
  }

  /** Handles one member of a LeaveGroup: removes it at once, which starts a rebalance. */
  leave(groupId: string, memberId: string): ErrorCode {
    const group = this.#groups.get(groupId);
    const member = group?.members.get(memberId);
    if (group === undefined || member === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    this.#removeMember(group, member);
    return ErrorCode.NONE;
  }

  /**
   * Checks whether a member may commit offsets (and keeps it alive). A commit
   * with a negative generation is a commit from outside the group, accepted while
   * the group has no members.
   */
  checkCommit(groupId: string, generationId: number, memberId: string): ErrorCode {
    if (groupId === "") return ErrorCode.INVALID_GROUP_ID;
    const group = this.#groups.get(groupId);
    if (group === undefined) {
      return generationId < 0 ? ErrorCode.NONE : ErrorCode.ILLEGAL_GENERATION;
    }
    if (generationId < 0 && group.state === "Empty") return ErrorCode.NONE;
    if (group.state === "CompletingRebalance") return ErrorCode.REBALANCE_IN_PROGRESS;
    const member = group.members.get(memberId);
    if (member === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    this.#keepAlive(group, member);
    return ErrorCode.NONE;
  }

  /** Stores a committed offset (after {@linkcode checkCommit} accepted the commit). */
  commit(groupId: string, topic: string, partition: number, committed: CommittedOffset): void {
    const offsets = this.#groupOrNew(groupId).offsets;
    const topicOffsets = offsets.get(topic) ?? new Map<number, CommittedOffset>();
    offsets.set(topic, topicOffsets);
    topicOffsets.set(partition, committed);
  }

  /** The committed offset of a partition, if any. */
  committedOffset(groupId: string, topic: string, partition: number): CommittedOffset | undefined {
    return this.#groups.get(groupId)?.offsets.get(topic)?.get(partition);
  }

  /** Every committed offset of a group: topic, then partition. */
  committedOffsets(groupId: string): ReadonlyMap<string, ReadonlyMap<number, CommittedOffset>> {
    return this.#groups.get(groupId)?.offsets ?? new Map();
  }

  /** Drops the committed offsets of a deleted topic from every group, as Kafka does. */
  forgetTopic(topic: string): void {
    for (const group of this.#groups.values()) group.offsets.delete(topic);
  }

  /** A group as DescribeGroups reports it (metadata and assignments only when Stable). */
  describe(groupId: string): GroupDescription {
    const group = this.#groups.get(groupId);
    if (group === undefined) {
      return { state: "Dead", protocolType: "", protocolName: "", members: [] };
    }
    const stable = group.state === "Stable";
    return {
      state: group.state,
      protocolType: group.protocolType,
      protocolName: stable ? group.protocolName : "",
      members: [...group.members.values()].map((member) => ({
        memberId: member.id,
        clientId: member.clientId,
        clientHost: member.clientHost,
        metadata: stable ? member.metadataFor(group.protocolName) : EMPTY,
        assignment: stable ? member.assignment : EMPTY,
      })),
    };
  }

  /**
   * Stops every timer and answers waiting requests with COORDINATOR_NOT_AVAILABLE;
   * later joins get the same answer.
   */
  close(): void {
    this.#closed = true;
    for (const group of this.#groups.values()) {
      clearTimeout(group.rebalanceTimer);
      for (const timer of group.pendingMemberIds.values()) clearTimeout(timer);
      group.pendingMemberIds.clear();
      for (const member of group.members.values()) {
        clearTimeout(member.sessionTimer);
        member.awaitingJoin?.(joinError(ErrorCode.COORDINATOR_NOT_AVAILABLE, member.id));
        member.awaitingSync?.(syncError(ErrorCode.COORDINATOR_NOT_AVAILABLE));
      }
    }
    this.#groups.clear();
  }

  #groupOrNew(groupId: string): Group {
    let group = this.#groups.get(groupId);
    if (group === undefined) {
      group = new Group(groupId);
      this.#groups.set(groupId, group);
    }
    return group;
  }

  /** Kafka's rule: the type matches and one protocol is supported by every other member. */
  #supportsProtocols(group: Group, request: JoinRequest): boolean {
    if (request.protocolType === "" || request.protocols.length === 0) return false;
    const others = [...group.members.values()].filter((member) => member.id !== request.memberId);
    if (others.length === 0) return true;
    if (request.protocolType !== group.protocolType) return false;
    return request.protocols.some((protocol) =>
      others.every((member) => member.protocols.some(({ name }) => name === protocol.name))
    );
  }

  /** Restarts the member's session timer; expiry evicts it unless a join or sync is waiting. */
  #keepAlive(group: Group, member: Member): void {
    clearTimeout(member.sessionTimer);
    member.sessionTimer = setTimeout(() => {
      if (member.awaitingJoin !== undefined || member.awaitingSync !== undefined) {
        this.#keepAlive(group, member);
      } else {
        this.#removeMember(group, member);
      }
    }, member.sessionTimeoutMs);
  }

  #removeMember(group: Group, member: Member): void {
    clearTimeout(member.sessionTimer);
    group.members.delete(member.id);
    if (group.leaderId === member.id) group.leaderId = undefined;
    member.awaitingJoin?.(joinError(ErrorCode.UNKNOWN_MEMBER_ID, member.id));
    member.awaitingSync?.(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    member.awaitingJoin = member.awaitingSync = undefined;
    if (group.state === "PreparingRebalance") this.#completeJoinIfAllJoined(group);
    else if (group.state !== "Empty") this.#prepareRebalance(group);
  }

  /** Moves to PreparingRebalance: every member must rejoin within the rebalance timeout. */
  #prepareRebalance(group: Group): void {
    for (const member of group.members.values()) {
      member.awaitingSync?.(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
      member.awaitingSync = undefined;
      member.assignment = EMPTY;
    }
    group.state = "PreparingRebalance";
    const rebalanceTimeoutMs = Math.max(
      0,
      ...[...group.members.values()].map((member) => member.rebalanceTimeoutMs),
    );
    clearTimeout(group.rebalanceTimer);
    group.rebalanceTimer = setTimeout(() => this.#completeJoin(group), rebalanceTimeoutMs);
    this.#completeJoinIfAllJoined(group);
  }

  #completeJoinIfAllJoined(group: Group): void {
    const members = [...group.members.values()];
    if (members.every((member) => member.awaitingJoin !== undefined)) this.#completeJoin(group);
  }

  /** Starts the next generation with the members that rejoined; the others are dropped. */
  #completeJoin(group: Group): void {
    clearTimeout(group.rebalanceTimer);
    group.rebalanceTimer = undefined;
    for (const member of group.members.values()) {
      if (member.awaitingJoin === undefined) {
        clearTimeout(member.sessionTimer);
        group.members.delete(member.id);
        if (group.leaderId === member.id) group.leaderId = undefined;
      }
    }
    group.generationId++;
    const members = [...group.members.values()];
    if (members.length === 0) {
      group.state = "Empty";
      group.protocolName = "";
      return;
    }
    group.state = "CompletingRebalance";
    group.protocolName = selectProtocol(members);
    const leaderId = group.leaderId ?? members[0]!.id;
    group.leaderId = leaderId;
    const everyMember = members.map((member) => ({
      memberId: member.id,
      metadata: member.metadataFor(group.protocolName),
    }));
    for (const member of members) {
      const answer = member.awaitingJoin!;
      member.awaitingJoin = undefined;
      this.#keepAlive(group, member);
      answer({
        errorCode: ErrorCode.NONE,
        generationId: group.generationId,
        protocolName: group.protocolName,
        leaderId,
        memberId: member.id,
        members: member.id === leaderId ? everyMember : [],
      });
    }
  }
}

/** Kafka's choice: among protocols every member supports, the most preferred by vote. */
function selectProtocol(members: readonly Member[]): string {
  const candidates = members[0]!.protocols
    .map(({ name }) => name)
    .filter((name) => members.every((member) => member.protocols.some((p) => p.name === name)));
  const votes = new Map<string, number>(candidates.map((name) => [name, 0]));
  for (const member of members) {
    const choice = member.protocols.find(({ name }) => votes.has(name))!.name;
    votes.set(choice, votes.get(choice)! + 1);
  }
  let chosen = candidates[0]!;
  for (const name of candidates) if (votes.get(name)! > votes.get(chosen)!) chosen = name;
  return chosen;
}
