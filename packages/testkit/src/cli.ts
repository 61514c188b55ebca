/** Runs the fake model server: `node --conditions=source --import tsx packages/testkit/src/cli.ts --port 4010 [--latency-ms N]` */
import { parseArgs } from "node:util";
import { startFakeOpenAI } from "./fake-openai.js";

const { values } = parseArgs({
  options: { port: { type: "string", default: "4010" }, "latency-ms": { type: "string", default: "0" } },
});
const fake = await startFakeOpenAI({ port: Number(values.port), latencyMs: Number(values["latency-ms"]) });
console.log(`fake OpenAI-compatible server at ${fake.url}`);
const stop = () => void fake.close().then(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
