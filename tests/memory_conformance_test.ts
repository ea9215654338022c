import { runConformance } from "./conformance.ts";

runConformance({
  name: "memory",
  broker: "memory",
  // A hub of its own per test: nothing leaks between tests.
  url: () => `memory://conformance-${crypto.randomUUID()}`,
});
