import { runConformance } from "./conformance.ts";
import { amqpForTests } from "./support/amqp_server.ts";

const rabbit = await amqpForTests();

runConformance({
  name: "amqp",
  broker: "amqp",
  // One RabbitMQ for every test; each test keeps apart on a queue name of its own.
  url: () => rabbit.url,
  ignore: rabbit.ignore,
});
