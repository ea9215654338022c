import type { Delivery, Reply } from "../mod.ts";
import { BrokerError, ProtocolError } from "../mod.ts";
import { HeldMessage, settleAfterFailure } from "../server/settlement.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { RecordingLogger } from "./support/logger.ts";

/** A delivery that records how it was settled, and can be told to fail doing it. */
class RecordingDelivery implements Delivery {
  readonly kind = "raw";
  readonly body = "{}";
  readonly attempt = 1;
  readonly calls: string[] = [];
  constructor(readonly failWith: "nothing" | "throw" | "reject" = "nothing") {}

  #record(call: string): Promise<void> {
    this.calls.push(call);
    if (this.failWith === "throw") throw new BrokerError("the broker went away");
    if (this.failWith === "reject") return Promise.reject(new BrokerError("no reply"));
    return Promise.resolve();
  }
  complete(reply: Reply): Promise<void> {
    return this.#record(`complete ${reply.body}`);
  }
  deadLetter(reason: string, reply?: Reply): Promise<void> {
    return this.#record(`deadLetter ${reason}${reply === undefined ? "" : " with reply"}`);
  }
  release(): Promise<void> {
    return this.#record("release");
  }
}

const reply = (error: ProtocolError): Reply => ({ messageId: "id", body: error.message });

Deno.test("HeldMessage settles its delivery once and refuses every later settle", async () => {
  const delivery = new RecordingDelivery();
  const held = new HeldMessage(delivery);
  assertEquals(held.settling, false);
  await held.complete({ messageId: "id", body: "first" });
  assertEquals(held.settling, true);
  await assertRejects(() => held.deadLetter("again"), Error, "settled already");
  await assertRejects(() => held.release(), Error, "settled already");
  assertEquals(delivery.calls, ["complete first"]);
});

Deno.test("HeldMessage turns a settle call that throws into a rejection", async () => {
  const held = new HeldMessage(new RecordingDelivery("throw"));
  const settled = held.release();
  assert(settled instanceof Promise);
  await assertRejects(() => settled, BrokerError, "went away");
});

Deno.test("settleAfterFailure() answers with an error result when one can be built", async () => {
  const delivery = new RecordingDelivery();
  const logger = new RecordingLogger();
  await settleAfterFailure(new HeldMessage(delivery), new RangeError("out of stack"), {
    errorReply: (_held, error) => reply(error),
    logger,
  });
  assertEquals(delivery.calls, [
    "complete the server could not handle this message: RangeError: out of stack",
  ]);
  assertEquals(logger.at("error").map((line) => line.message), [
    "a message could not be handled; the caller was sent an error result",
  ]);
});

Deno.test("settleAfterFailure() sets the message aside when no result can be built", async () => {
  for (
    const errorReply of [
      () => null,
      () => {
        throw new RangeError("cannot encode");
      },
    ]
  ) {
    const delivery = new RecordingDelivery();
    await settleAfterFailure(new HeldMessage(delivery), new TypeError("bug"), {
      errorReply,
      logger: new RecordingLogger(),
    });
    assertEquals(delivery.calls, [
      "deadLetter the server could not handle this message: TypeError: bug",
    ]);
  }
});

Deno.test("settleAfterFailure() makes one settle call even when the broker fails it, and says the broker keeps the message", async () => {
  for (const failWith of ["throw", "reject"] as const) {
    const delivery = new RecordingDelivery(failWith);
    const logger = new RecordingLogger();
    await settleAfterFailure(new HeldMessage(delivery), new Error("bug"), {
      errorReply: (_held, error) => reply(error),
      logger,
    });
    assertEquals(delivery.calls.length, 1, "exactly one settle call");
    // A broker failure: at error, as the Logger contract has it.
    assertEquals(logger.at("error").map((line) => line.message), [
      "cannot settle a message; the broker keeps it and delivers it again",
    ]);
  }
});

Deno.test("settleAfterFailure() leaves alone a message whose settle call was made, or that was handed back", async () => {
  const settling = new RecordingDelivery("reject");
  const held = new HeldMessage(settling);
  const failed = await held.complete({ messageId: "id", body: "x" }).catch((err) => err);
  const logger = new RecordingLogger();
  await settleAfterFailure(held, failed, { errorReply: (_h, e) => reply(e), logger });
  assertEquals(settling.calls, ["complete x"]);
  assertEquals(logger.at("error").length, 1);

  const handedBack = new RecordingDelivery();
  const back = new HeldMessage(handedBack);
  await back.release();
  back.handedBack = true;
  await settleAfterFailure(back, new Error("late"), {
    errorReply: (_h, e) => reply(e),
    logger: new RecordingLogger(),
  });
  assertEquals(handedBack.calls, ["release"]);
});

Deno.test("settleAfterFailure() keeps a prpc error's own type and settles even when the logger throws", async () => {
  const delivery = new RecordingDelivery();
  const logger = new RecordingLogger();
  logger.error = () => {
    throw new Error("the logger broke");
  };
  let seen: unknown;
  await settleAfterFailure(
    new HeldMessage(delivery),
    new ProtocolError("field x is wrong"),
    {
      errorReply: (_held, error) => {
        seen = error;
        return reply(error);
      },
      logger,
    },
  );
  assert(seen instanceof ProtocolError && seen.message === "field x is wrong");
  assertEquals(delivery.calls, ["complete field x is wrong"]);
});

Deno.test("settleAfterFailure() says so when the failure is a second settle, and settles nothing more", async () => {
  const delivery = new RecordingDelivery();
  const held = new HeldMessage(delivery);
  await held.complete({ messageId: "id", body: "first" });
  const second = await held.release().catch((err) => err);
  const logger = new RecordingLogger();
  await settleAfterFailure(held, second, { errorReply: (_h, e) => reply(e), logger });
  assertEquals(delivery.calls, ["complete first"]);
  assertEquals(logger.at("error").map((line) => line.message), [
    "refused to settle a message a second time; the first settle stands",
  ]);
});
