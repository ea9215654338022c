/** The partition ledger of the Kafka broker: what is committed while requests finish out of order. */
import { MAX_METADATA_CHARS, PartitionLedger } from "../brokers/kafka/ledger.ts";
import { assert, assertEquals } from "./support/assert.ts";

/** A ledger as the next owner of the partition reads it from the commit. */
function reloaded(ledger: PartitionLedger): PartitionLedger {
  return PartitionLedger.fromCommit(ledger.base, ledger.encode(), 0);
}

Deno.test("PartitionLedger never moves the base past an unfinished request", () => {
  const ledger = PartitionLedger.fromCommit(null, null, 10);
  assertEquals(ledger.base, 10);
  for (const offset of [10, 11, 12]) assertEquals(ledger.markDelivered(offset), 1);
  ledger.markDone(11);
  ledger.markDone(12);
  assertEquals(ledger.base, 10, "10 still runs");
  assert(ledger.isDone(11) && ledger.isDone(12) && !ledger.isDone(10));
  ledger.markDone(10);
  assertEquals(ledger.base, 13);
  assert(ledger.isDone(5), "everything below the base is done");
});

Deno.test("PartitionLedger metadata carries delivery counts and done requests to the next owner", () => {
  const ledger = PartitionLedger.fromCommit(100, null, 0);
  ledger.markDelivered(100);
  ledger.markDelivered(101);
  ledger.markDelivered(102);
  ledger.markDone(101);
  ledger.markReleased(102);
  assertEquals(ledger.base, 100);
  assertEquals(JSON.parse(ledger.encode()), { v: 1, d: [[0, 1], [2, 1]], c: [[1, 1]] });

  const next = reloaded(ledger);
  assertEquals(next.base, 100);
  assert(next.isDone(101), "done by the earlier owner: skipped");
  assert(!next.isDone(100) && !next.isDone(102));
  assertEquals(next.markDelivered(100), 2, "the second delivery of 100");
  assertEquals(next.markDelivered(102), 2);
  assertEquals(next.markDelivered(103), 1, "a request the earlier owner never took");
  next.markDone(100);
  assertEquals(next.base, 102, "101 was done already");
});

Deno.test("PartitionLedger takes back a delivery whose commit failed", () => {
  const ledger = PartitionLedger.fromCommit(0, JSON.stringify({ v: 1, d: [[0, 2]], c: [] }), 0);
  assertEquals(ledger.markDelivered(0), 3);
  ledger.unmarkDelivered(0);
  assertEquals(ledger.markDelivered(0), 3, "counted once");
  assertEquals(ledger.markDelivered(1), 1);
  ledger.unmarkDelivered(1);
  assertEquals(JSON.parse(ledger.encode()).d, [[0, 3]], "1 is forgotten");
});

Deno.test("PartitionLedger keeps requests running here when the partition comes back", () => {
  const ledger = PartitionLedger.fromCommit(5, JSON.stringify({ v: 1, d: [[0, 1]], c: [] }), 0);
  ledger.adoptRunning(5, 1);
  ledger.adoptRunning(6, 2); // not in the metadata (it was cut), still running here
  ledger.markDelivered(7);
  ledger.markDone(7);
  ledger.markDone(5);
  assertEquals(ledger.base, 6, "6 still runs");
  assertEquals(JSON.parse(ledger.encode()), { v: 1, d: [[0, 2]], c: [[1, 1]] });
});

Deno.test("PartitionLedger.skipTo forgets offsets the log no longer has", () => {
  const ledger = PartitionLedger.fromCommit(
    3,
    JSON.stringify({ v: 1, d: [[0, 1], [1, 1]], c: [] }),
    0,
  );
  ledger.skipTo(8);
  assertEquals(ledger.base, 8);
  assertEquals(ledger.markDelivered(8), 1);
});

Deno.test("PartitionLedger metadata stays within Kafka's limit, dropping the highest offsets", () => {
  const ledger = PartitionLedger.fromCommit(1_000_000, null, 0);
  for (let i = 0; i < 2_000; i++) ledger.markDelivered(1_000_000 + i * 2);
  for (let i = 1; i < 2_000; i++) ledger.markDone(1_000_000 + i * 2);
  const text = ledger.encode();
  assert(text.length <= MAX_METADATA_CHARS, `${text.length} characters`);
  const data = JSON.parse(text);
  assertEquals(data.d[0], [0, 1], "the request that holds the base is kept");
  assert(data.c.length > 100, "and as many done ones as fit");
});

Deno.test("PartitionLedger ignores metadata that is not its own", () => {
  for (
    const metadata of ["", "not json", "{}", '{"v":2,"d":[[0,5]]}', '{"v":1,"d":[[-1,1],["x",1]]}']
  ) {
    const ledger = PartitionLedger.fromCommit(7, metadata, 0);
    assertEquals(ledger.base, 7);
    assertEquals(ledger.markDelivered(7), 1, metadata);
  }
});

Deno.test("PartitionLedger: a request adopted before skipTo keeps the base below it", () => {
  // The partition came back while offset 5 still runs here; the log now starts at 8.
  const ledger = PartitionLedger.fromCommit(3, null, 0);
  ledger.adoptRunning(5, 1);
  ledger.skipTo(8);
  assert(!ledger.isDone(5), "5 still runs");
  assert(ledger.base <= 5, `base ${ledger.base}`);
  ledger.markDone(5);
  assertEquals(ledger.base, 6);
});

Deno.test("PartitionLedger.encode stays within the limit it is given", () => {
  const ledger = PartitionLedger.fromCommit(0, null, 0);
  for (let i = 0; i < 500; i++) ledger.markDelivered(i * 2);
  for (let i = 1; i < 500; i++) ledger.markDone(i * 2);
  for (const limit of [3_000, 1_500, 200]) {
    const text = ledger.encode(limit);
    assert(text.length <= limit, `${text.length} > ${limit}`);
    assertEquals(JSON.parse(text).d[0], [0, 1]);
  }
});
