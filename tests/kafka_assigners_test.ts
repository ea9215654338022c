/** Partition assignment of the servers' group (pure functions behind the kafkajs assigners). */
import {
  type MemberState,
  roundRobinAssignment,
  stickyAssignment,
} from "../brokers/kafka/assigners.ts";
import { assertEquals } from "./support/assert.ts";

const partitions = new Map([
  ["prpc_q", [0, 1, 2, 3]],
  ["prpc_raw_q", [0, 1]],
]);
const topics = ["prpc_q", "prpc_raw_q"];

function member(memberId: string, owned = {}, busy = {}): MemberState {
  return { memberId, topics, owned, busy };
}

Deno.test("stickyAssignment balances every topic over the members that read it", () => {
  const result = stickyAssignment([member("a"), member("b")], partitions);
  assertEquals(result.get("a"), { prpc_q: [0, 1], prpc_raw_q: [0] });
  assertEquals(result.get("b"), { prpc_q: [2, 3], prpc_raw_q: [1] });
});

Deno.test("stickyAssignment keeps partitions in place, busy ones first, when a member joins", () => {
  const owned = { prpc_q: [0, 1, 2, 3], prpc_raw_q: [0, 1] };
  const result = stickyAssignment(
    [member("a", owned, { prpc_q: [3], prpc_raw_q: [1] }), member("b")],
    partitions,
  );
  assertEquals(result.get("a"), { prpc_q: [0, 3], prpc_raw_q: [1] }, "3 and raw 1 stay: busy");
  assertEquals(result.get("b"), { prpc_q: [1, 2], prpc_raw_q: [0] });
});

Deno.test("stickyAssignment gives the partitions of a member that left to the others", () => {
  const result = stickyAssignment(
    [member("b", { prpc_q: [2, 3], prpc_raw_q: [1] })],
    partitions,
  );
  assertEquals(result.get("b"), { prpc_q: [0, 1, 2, 3], prpc_raw_q: [0, 1] });
});

Deno.test("stickyAssignment ignores partitions two members claim and those that do not exist", () => {
  const result = stickyAssignment(
    [member("a", { prpc_q: [0, 9] }), member("b", { prpc_q: [0, 1] })],
    new Map([["prpc_q", [0, 1]]]),
  );
  // b owns more partitions that exist, so it keeps its first; a takes what is left.
  assertEquals(result.get("b"), { prpc_q: [0] });
  assertEquals(result.get("a"), { prpc_q: [1] });
});

Deno.test("both assignments give members only the topics they read (servers of other queues)", () => {
  const members = [
    { memberId: "q1", topics: ["prpc_one"], owned: {}, busy: {} },
    { memberId: "q2", topics: ["prpc_two"], owned: {}, busy: {} },
  ];
  const all = new Map([["prpc_one", [0, 1]], ["prpc_two", [0]]]);
  for (const assign of [stickyAssignment, roundRobinAssignment]) {
    const result = assign(members, all);
    assertEquals(result.get("q1"), { prpc_one: [0, 1] }, assign.name);
    assertEquals(result.get("q2"), { prpc_two: [0] }, assign.name);
  }
});

Deno.test("roundRobinAssignment deals sorted partitions to sorted members in turn", () => {
  const result = roundRobinAssignment([member("b"), member("a")], partitions);
  assertEquals(result.get("a"), { prpc_q: [0, 2], prpc_raw_q: [0] });
  assertEquals(result.get("b"), { prpc_q: [1, 3], prpc_raw_q: [1] });
});
